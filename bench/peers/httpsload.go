// The load for the interception rows: HTTPS requests through a proxy that intercepts (CONNECT, then TLS to the
// proxy's minted leaf, trusted through -ca), on keep-alive connections, HTTP/1.1 only. Prints one JSON line:
// requests, bytes of body read, seconds, and the rates. -c workers, each on one connection of its own (a new one
// when the proxy closes it), loop for -d, each response's body read to the end. With -post N each request is a POST
// of an N-byte body (Content-Length framed, or chunked with -chunked: Go's client sends one chunk per 32 KiB it
// copies) and the bytes counted are those sent; an http:// -url needs no -ca.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	proxy := flag.String("proxy", "", "proxy host:port (none: straight to the origin)")
	target := flag.String("url", "", "URL to fetch (https through an intercepting proxy, or http)")
	caFile := flag.String("ca", "", "PEM file of the proxy's CA")
	conc := flag.Int("c", 1, "concurrent connections")
	dur := flag.Duration("d", 3*time.Second, "duration")
	post := flag.Int64("post", 0, "POST a body of this many bytes instead of a GET")
	chunked := flag.Bool("chunked", false, "with -post: send the body chunked, with no Content-Length")
	flag.Parse()

	roots := x509.NewCertPool()
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			panic(err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			panic("no certificate in " + *caFile)
		}
	}
	proxyURL, _ := url.Parse("http://" + *proxy)
	var requests, bytes, failures int64
	deadline := time.Now().Add(*dur)
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < *conc; i++ {
		wg.Add(1)
		// One transport and one connection per worker: with a shared pool, a worker whose connection was not yet back
		// in the pool dialled another and then dropped it right after the CONNECT, a new tunnel every other request.
		transport := &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: roots},
			TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
			MaxIdleConnsPerHost: 1,
			MaxConnsPerHost:     1,
			DisableCompression:  true,
		}
		if *proxy != "" {
			transport.Proxy = http.ProxyURL(proxyURL)
		}
		client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
		go func() {
			defer wg.Done()
			defer transport.CloseIdleConnections()
			for time.Now().Before(deadline) {
				var resp *http.Response
				var err error
				if *post > 0 {
					req, _ := http.NewRequest("POST", *target, io.LimitReader(zeros{}, *post))
					req.ContentLength = *post
					if *chunked {
						req.ContentLength = -1
					}
					resp, err = client.Do(req)
				} else {
					resp, err = client.Get(*target)
				}
				if err != nil {
					atomic.AddInt64(&failures, 1)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					atomic.AddInt64(&failures, 1)
					continue
				}
				atomic.AddInt64(&requests, 1)
				if *post > 0 {
					n = *post
				}
				atomic.AddInt64(&bytes, n)
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	out, _ := json.Marshal(map[string]any{
		"requests": requests, "bytes": bytes, "failures": failures, "seconds": secs,
		"perSecond": float64(requests) / secs, "mibPerSecond": float64(bytes) / (1 << 20) / secs,
	})
	fmt.Println(string(out))
}

// zeros reads as endless zero bytes: a body costs the load next to nothing to make (Go 1.19 on Debian has no clear()).
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 0
	}
	return len(p), nil
}
