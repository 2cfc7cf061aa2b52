// The benchmark origin: HTTP on one port (/1k, /64m), the same over TLS on a third (a certificate for 127.0.0.1
// made at start, self-signed: the proxies that intercept are told not to verify it), and a raw TCP port for tunnels. The raw port reads
// 8 bytes: "SEND" and a big-endian uint32 count of MiB streams that many MiB and closes (bulk row); "RECV" and a
// count reads that many MiB, answers the big-endian uint64 byte count it got, and closes (bulk upload); anything
// else is echoed, and so is everything after it, until the client half-closes (setup row). Idle tunnels
// send nothing and are simply held.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"fmt"
	"math/big"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

var kib = make([]byte, 1024)
var mib = make([]byte, 1<<20)

func main() {
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	rawLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d %d %d\n", httpLn.Addr().(*net.TCPAddr).Port, rawLn.Addr().(*net.TCPAddr).Port, tlsLn.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	go serveRaw(rawLn)
	mux := http.NewServeMux()
	mux.HandleFunc("/1k", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1024")
		w.Write(kib)
	})
	mux.HandleFunc("/64m", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(64<<20))
		for i := 0; i < 64; i++ {
			if _, err := w.Write(mib); err != nil {
				return
			}
		}
	})
	// 64 MiB without a Content-Length, so Go's server frames it chunked: one chunk per write of ?chunk= bytes (1 MiB).
	mux.HandleFunc("/64m-chunked", func(w http.ResponseWriter, r *http.Request) {
		size, err := strconv.Atoi(r.URL.Query().Get("chunk"))
		if err != nil || size <= 0 || size > len(mib) {
			size = len(mib)
		}
		for sent := 0; sent < 64<<20; sent += size {
			if _, err := w.Write(mib[:size]); err != nil {
				return
			}
		}
	})
	// Reads a request body to its end and answers with its length: the upload row.
	mux.HandleFunc("/sink", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			return
		}
		w.Write([]byte(strconv.FormatInt(n, 10)))
	})
	// HTTP/1.1 only over TLS too, like the plain port: the rows compare HTTP/1.1 interception.
	tlsServer := &http.Server{Handler: mux, TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}}
	go tlsServer.Serve(tls.NewListener(tlsLn, &tls.Config{Certificates: []tls.Certificate{selfSigned()}}))
	http.Serve(httpLn, mux)
}

func selfSigned() tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func serveRaw(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go func(c net.Conn) {
			defer c.Close()
			head := make([]byte, 8)
			n, err := io.ReadFull(c, head)
			if err == nil && string(head[:4]) == "SEND" {
				count := binary.BigEndian.Uint32(head[4:])
				for i := uint32(0); i < count; i++ {
					if _, err := c.Write(mib); err != nil {
						return
					}
				}
				return
			}
			if err == nil && string(head[:4]) == "RECV" {
				want := int64(binary.BigEndian.Uint32(head[4:])) << 20
				got, _ := io.CopyN(io.Discard, c, want)
				var ack [8]byte
				binary.BigEndian.PutUint64(ack[:], uint64(got))
				c.Write(ack[:])
				return
			}
			if n > 0 {
				c.Write(head[:n])
			}
			if err != nil {
				return
			}
			io.Copy(c, c)
		}(conn)
	}
}
