package upstream

import (
	"os"
	"runtime"
)

// DefaultProcs is the GOMAXPROCS of Vigil's LLM provider plugins (openai,
// anthropic) unless their environment sets GOMAXPROCS. Such a plugin
// mostly waits on its upstream: per gateway request it decodes one call
// from the agent, makes one HTTP request and encodes one answer, a few
// hundred microseconds of CPU. With more than one P, every goroutine
// hand-off on that path (gRPC's reader and writer, the HTTP client's read
// and write loops) also wakes a second thread to look for work: one P cut
// the CPU per request of agent and plugin together by 12-14 % in
// bench/gateway.sh and bench/gateway-ab.sh (bench/README.md). One
// core still serves a few thousand chat requests a second, far above
// what an upstream's rate limits allow from one host; an operator who
// needs more (large embedding batches decoded concurrently) sets
// GOMAXPROCS for the plugin with the agent's plugins.env. node_exporter
// makes the same choice for itself.
const DefaultProcs = 1

// LimitProcs sets GOMAXPROCS to DefaultProcs unless the environment sets
// it, and returns the value in effect. A plugin's main calls it first.
func LimitProcs() int {
	if os.Getenv("GOMAXPROCS") != "" {
		return runtime.GOMAXPROCS(0)
	}
	runtime.GOMAXPROCS(DefaultProcs)
	return DefaultProcs
}
