// Command stub serves test/openaistub (OpenAI's wire format, deterministic
// answers) for bench/gateway.sh. It prints its address on stdout.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"

	"github.com/vigilml/vigil/test/openaistub"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	models := flag.String("models", "bench-model", "comma-separated model ids")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ln.Addr().String())
	log.Fatal(http.Serve(ln, openaistub.New(strings.Split(*models, ",")...)))
}
