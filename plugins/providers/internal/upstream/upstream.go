// Package upstream holds the HTTP plumbing Vigil's provider plugins share:
// a client sized to the concurrency limit, the concurrency slots
// themselves, and a watchdog that cancels a call gone quiet.
package upstream

import (
	"context"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vigilml/vigil/sdk"
)

// NewHTTPClient returns a client that keeps up to maxConcurrency idle
// connections to the upstream and waits at most timeout for response
// headers. Whole-call deadlines come from the caller's context.
func NewHTTPClient(maxConcurrency int, timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = maxConcurrency
	tr.ResponseHeaderTimeout = timeout
	return &http.Client{Transport: tr}
}

// Slots bounds the calls in flight to one upstream (max_concurrency).
type Slots chan struct{}

// NewSlots returns n slots.
func NewSlots(n int) Slots { return make(Slots, n) }

// Acquire takes a slot, waiting for one until ctx ends; then it fails with
// class timeout. Call release when the upstream call is over.
func (s Slots) Acquire(ctx context.Context) (release func(), err error) {
	select {
	case s <- struct{}{}:
		return func() { <-s }, nil
	case <-ctx.Done():
		return nil, sdk.Errorf(sdk.Timeout, "all %d upstream slots (max_concurrency) stayed busy until the deadline", cap(s))
	}
}

// Watchdog cancels a call that goes quiet for longer than its period;
// Kick restarts the clock (each streamed chunk does).
type Watchdog struct {
	t     *time.Timer
	fired atomic.Bool
	d     time.Duration
}

// NewWatchdog starts a watchdog that calls cancel after d of silence.
func NewWatchdog(d time.Duration, cancel context.CancelFunc) *Watchdog {
	w := &Watchdog{d: d}
	w.t = time.AfterFunc(d, func() { w.fired.Store(true); cancel() })
	return w
}

// Kick restarts the clock.
func (w *Watchdog) Kick() { w.t.Reset(w.d) }

// Stop stops the watchdog.
func (w *Watchdog) Stop() { w.t.Stop() }

// Fired says whether the watchdog cancelled the call.
func (w *Watchdog) Fired() bool { return w != nil && w.fired.Load() }

// APIKey reads the upstream's key from exactly one of the plugin options
// api_key, api_key_file (a file holding the key) or api_key_env (the name
// of a variable in the plugin's environment). str reads a string option,
// getenv looks a variable up, and bad records a field error. An empty
// result with no error means no key was configured.
func APIKey(str func(key string) (string, bool), getenv func(string) (string, bool), bad func(field, format string, args ...any)) string {
	var key string
	n := 0
	if s, ok := str("api_key"); ok && s != "" {
		key, n = s, n+1
	}
	if s, ok := str("api_key_file"); ok && s != "" {
		n++
		b, err := os.ReadFile(s)
		if err != nil {
			bad("api_key_file", "cannot read the key: %v", err)
		} else if key = strings.TrimSpace(string(b)); key == "" {
			bad("api_key_file", "%s is empty", s)
		}
	}
	if s, ok := str("api_key_env"); ok && s != "" {
		n++
		v, found := getenv(s)
		if key = strings.TrimSpace(v); !found || key == "" {
			bad("api_key_env", "environment variable %s is not set or empty in the plugin's environment", s)
		}
	}
	if n > 1 {
		bad("api_key", "set at most one of api_key, api_key_file and api_key_env")
	}
	return key
}
