// Command proxy is the baseline of bench/gateway.sh: the smallest useful
// reverse proxy (net/http/httputil.ReverseProxy) in front of an upstream.
// It prints its address on stdout.
//
// A second proxy in front of the first (proxy2 in the benchmarks) is the
// reference for a path through two processes, as vigil's is (agent and
// plugin). That one runs with -read-body: Go's HTTP/1 server closes a
// request's body once the handler starts its answer, and a ReverseProxy
// whose upstream answers before the transport's last read of the body
// (another proxy streaming its answer does) then has its connection torn
// down mid-answer (golang/go#40747); about 1 % of requests failed so.
// Reading the body whole first, as vigil does, avoids it.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	upstream := flag.String("upstream", "", "upstream base URL, such as http://127.0.0.1:8000")
	readBody := flag.Bool("read-body", false, "read each request body whole (up to 8 MiB) before forwarding it; for a proxy in front of another")
	flag.Parse()
	u, err := url.Parse(*upstream)
	if err != nil || u.Host == "" {
		log.Fatalf("-upstream %q is not a URL", *upstream)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 256}
	rp.FlushInterval = -1 // pass streams through as they come
	var h http.Handler = rp
	if *readBody {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 8<<20))
			if err != nil {
				http.Error(w, "reading the request body: "+err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
			r.ContentLength = int64(len(b))
			rp.ServeHTTP(w, r)
		})
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ln.Addr().String())
	log.Fatal(http.Serve(ln, h))
}
