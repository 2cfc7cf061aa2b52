// The tunnel load generator: CONNECT through a proxy to the origin's raw port and measure
//   bulk:  one or more tunnels each pulling N MiB             → MiB/s
//   up:    one or more tunnels each pushing N MiB (the origin acks the count) → MiB/s
//   setup: open, 200, eight bytes each way, close, C at a time → tunnels/s, p50/p99 ms
//   idle:  hold N open tunnels until stdin closes             → prints "ready N" once all are open
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func open(proxy, target string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", proxy, 10*time.Second)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	r := bufio.NewReader(c)
	status, err := r.ReadString('\n')
	if err != nil || !strings.Contains(status, " 200") {
		c.Close()
		return nil, fmt.Errorf("CONNECT failed: %q %v", status, err)
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			c.Close()
			return nil, err
		}
		if line == "\r\n" {
			break
		}
	}
	if r.Buffered() > 0 {
		c.Close()
		return nil, fmt.Errorf("unexpected bytes after 200")
	}
	return c, nil
}

// transfer opens `conc` tunnels, sends each the origin's 8-byte command (verb and MiB count), runs `move` on it,
// and prints the bytes moved in all and the rate.
func transfer(proxy, target string, conc int, verb string, mib int, move func(net.Conn) (int64, error)) {
	start := time.Now()
	var wg sync.WaitGroup
	var total int64
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := open(proxy, target)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return
			}
			defer c.Close()
			head := make([]byte, 8)
			copy(head, verb)
			binary.BigEndian.PutUint32(head[4:], uint32(mib))
			c.Write(head)
			n, err := move(c)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
			atomic.AddInt64(&total, n)
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	fmt.Printf("{\"bytes\":%d,\"seconds\":%.4f,\"mibPerSecond\":%.2f}\n", total, secs, float64(total)/(1<<20)/secs)
}

func main() {
	proxy := flag.String("proxy", "", "proxy host:port")
	target := flag.String("target", "", "origin raw host:port")
	mode := flag.String("mode", "setup", "bulk | up | setup | idle")
	mib := flag.Int("mib", 256, "MiB per tunnel (bulk)")
	conc := flag.Int("c", 1, "concurrent tunnels")
	dur := flag.Duration("d", 3*time.Second, "duration (setup)")
	count := flag.Int("n", 1000, "tunnels to hold (idle)")
	flag.Parse()

	switch *mode {
	case "bulk":
		// The origin streams `mib` MiB and closes; the bytes that arrived count.
		transfer(*proxy, *target, *conc, "SEND", *mib, func(c net.Conn) (int64, error) {
			return io.Copy(io.Discard, c)
		})
	case "up":
		// We stream `mib` MiB; the origin acknowledges how many bytes it received, and that counts.
		chunk := make([]byte, 1<<20)
		transfer(*proxy, *target, *conc, "RECV", *mib, func(c net.Conn) (int64, error) {
			for j := 0; j < *mib; j++ {
				if _, err := c.Write(chunk); err != nil {
					return 0, err
				}
			}
			var ack [8]byte
			if _, err := io.ReadFull(c, ack[:]); err != nil {
				return 0, fmt.Errorf("no upload ack: %w", err)
			}
			return int64(binary.BigEndian.Uint64(ack[:])), nil
		})
	case "setup":
		deadline := time.Now().Add(*dur)
		var mu sync.Mutex
		var latencies []float64
		var failures int64
		var wg sync.WaitGroup
		start := time.Now()
		for i := 0; i < *conc; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 8)
				for time.Now().Before(deadline) {
					t0 := time.Now()
					c, err := open(*proxy, *target)
					if err != nil {
						atomic.AddInt64(&failures, 1)
						continue
					}
					c.SetDeadline(time.Now().Add(10 * time.Second))
					c.Write([]byte("ECHOECHO"))
					if _, err := io.ReadFull(c, buf); err != nil {
						atomic.AddInt64(&failures, 1)
					}
					c.Close()
					ms := float64(time.Since(t0).Microseconds()) / 1000
					mu.Lock()
					latencies = append(latencies, ms)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		secs := time.Since(start).Seconds()
		sort.Float64s(latencies)
		p := func(q float64) float64 {
			if len(latencies) == 0 {
				return 0
			}
			return latencies[int(q*float64(len(latencies)-1))]
		}
		fmt.Printf("{\"tunnels\":%d,\"failures\":%d,\"perSecond\":%.1f,\"p50ms\":%.3f,\"p99ms\":%.3f}\n", len(latencies), failures, float64(len(latencies))/secs, p(0.5), p(0.99))
	case "idle":
		conns := make([]net.Conn, 0, *count)
		failures := 0
		for i := 0; i < *count; i++ {
			c, err := open(*proxy, *target)
			if err != nil {
				failures++
				if failures > 10 {
					fmt.Fprintln(os.Stderr, err)
					break
				}
				continue
			}
			conns = append(conns, c)
		}
		fmt.Printf("ready %d\n", len(conns))
		io.Copy(io.Discard, os.Stdin)
		for _, c := range conns {
			c.Close()
		}
	}
}
