package upstream

import (
	"runtime"
	"testing"
)

// TestLimitProcs: without GOMAXPROCS in the environment a provider plugin
// runs with DefaultProcs; with it, the runtime's reading of it stands.
func TestLimitProcs(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(before) })

	runtime.GOMAXPROCS(3)
	t.Setenv("GOMAXPROCS", "3")
	if got := LimitProcs(); got != 3 || runtime.GOMAXPROCS(0) != 3 {
		t.Errorf("with GOMAXPROCS=3 set: LimitProcs returned %d, GOMAXPROCS is %d; want 3 and 3", got, runtime.GOMAXPROCS(0))
	}

	t.Setenv("GOMAXPROCS", "")
	if got := LimitProcs(); got != DefaultProcs || runtime.GOMAXPROCS(0) != DefaultProcs {
		t.Errorf("without GOMAXPROCS: LimitProcs returned %d, GOMAXPROCS is %d; want %d", got, runtime.GOMAXPROCS(0), DefaultProcs)
	}
}
