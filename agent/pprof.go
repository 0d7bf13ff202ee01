package agent

import (
	"net/http/pprof"

	"github.com/vigilml/vigil/agent/api"
)

// pprofRoutes serves Go's runtime profiles (CPU, heap, allocations,
// goroutines, mutex and block contention, execution traces) when
// api.enable_pprof is set, as Consul's enable_debug and etcd's
// --enable-pprof do. They need the write scope: a profile names the
// agent's code paths, and a CPU profile or trace costs CPU while it runs.
func (a *Agent) pprofRoutes() {
	if !a.cfg.API.EnablePprof {
		return
	}
	a.api.HandleFunc("GET /debug/pprof/", api.Write, pprof.Index)
	a.api.HandleFunc("GET /debug/pprof/cmdline", api.Write, pprof.Cmdline)
	a.api.HandleFunc("GET /debug/pprof/profile", api.Write, pprof.Profile)
	a.api.HandleFunc("GET /debug/pprof/symbol", api.Write, pprof.Symbol)
	a.api.HandleFunc("POST /debug/pprof/symbol", api.Write, pprof.Symbol)
	a.api.HandleFunc("GET /debug/pprof/trace", api.Write, pprof.Trace)
	a.logger.Warn("api.enable_pprof is on: runtime profiles are served under /debug/pprof/ (write scope)")
}
