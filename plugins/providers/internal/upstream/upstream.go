// Package upstream holds the HTTP plumbing Vigil's provider plugins share:
// a client sized to the concurrency limit, the concurrency slots
// themselves, and a watchdog that cancels a call gone quiet.
package upstream

import (
	"context"
	"net/http"
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
