// Command devproxy is the dev control plane's stand-in for the webhook
// Service when several manager replicas run on one host (hack/dev.sh with
// DEV_REPLICAS>1): it listens on one address, the one the webhook
// configurations name, and passes each TCP connection through to the first
// replica that accepts it, starting with a different replica each time.
// TLS is not terminated (every replica serves the same certificate), so the
// API server talks to a replica as it would through a Service. A replica
// that is down refuses connections and is skipped, as a Service skips a pod
// that is not ready; every replica serves webhooks, only the leader
// reconciles.
//
// Usage: devproxy -listen 127.0.0.1:19443 -backend 127.0.0.1:19444 -backend 127.0.0.1:19445
package main

import (
	"flag"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type backends []string

func (b *backends) String() string     { return strings.Join(*b, ",") }
func (b *backends) Set(v string) error { *b = append(*b, v); return nil }

func main() {
	var to backends
	listen := flag.String("listen", "127.0.0.1:19443", "Address to listen on.")
	flag.Var(&to, "backend", "A replica's address; repeat for each replica.")
	flag.Parse()
	if len(to) == 0 {
		log.Fatal("devproxy: at least one -backend is needed")
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("devproxy: %v", err)
	}
	log.Printf("devproxy: %s -> %s", *listen, to.String())
	var next atomic.Uint64
	for {
		c, err := l.Accept()
		if err != nil {
			log.Fatalf("devproxy: accept: %v", err)
		}
		go serve(c, to, int(next.Add(1)))
	}
}

// serve pipes c to the first backend, from start on, that accepts.
func serve(c net.Conn, to backends, start int) {
	defer c.Close()
	for i := range to {
		addr := to[(start+i)%len(to)]
		b, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			continue
		}
		defer b.Close()
		var wg sync.WaitGroup
		wg.Add(2)
		pipe := func(dst, src net.Conn) {
			defer wg.Done()
			_, _ = io.Copy(dst, src)
			// Half-close so the other side sees the end of the stream.
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
		}
		go pipe(b, c)
		go pipe(c, b)
		wg.Wait()
		return
	}
	log.Printf("devproxy: no backend of %s accepts a connection", to.String())
}
