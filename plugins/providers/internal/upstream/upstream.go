// Package upstream holds the HTTP plumbing Vigil's provider plugins share:
// a client sized to the concurrency limit, the concurrency slots
// themselves, a watchdog that cancels a call gone quiet, one Call that
// strings them together with typed transport errors, an Endpoint that
// builds and sends the JSON requests of one configured upstream, and the
// prompt instructions for JSON answers. Their options are read with the
// public sdk/providerconf, as a third party's provider reads its own.
package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
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

// Period is the silence after which the watchdog fires.
func (w *Watchdog) Period() time.Duration { return w.d }

// TransportError types an error from the HTTP exchange itself (or from
// reading its body): an *sdk.Error passes as it is; the watchdog firing,
// the deadline passing, a cancellation and a network timeout are class
// timeout; anything else (refused, reset) is unavailable.
func TransportError(err error, w *Watchdog) error {
	var se *sdk.Error
	switch {
	case errors.As(err, &se):
		return se
	case w.Fired():
		return sdk.Errorf(sdk.Timeout, "upstream did not answer within timeout %s", w.Period())
	case errors.Is(err, context.DeadlineExceeded):
		return sdk.Errorf(sdk.Timeout, "deadline passed waiting for the upstream: %v", err)
	case errors.Is(err, context.Canceled):
		return sdk.Errorf(sdk.Timeout, "call cancelled: %v", err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return sdk.Errorf(sdk.Timeout, "upstream timed out: %v", err)
	}
	return sdk.Errorf(sdk.Unavailable, "upstream connection failed: %v", err)
}

// Call is one upstream call's plumbing, the same for every method of a
// provider: Slots bounds the calls in flight (nil: the call takes no
// slot, as listing models does not), Timeout is the watchdog's period,
// and Send makes the request with the context it is given (which the
// watchdog cancels) and returns the response only when it is a 2xx.
type Call struct {
	Slots   Slots
	Timeout time.Duration
	Send    func(ctx context.Context) (*http.Response, error)
}

// Do runs c for a whole (non-streamed) answer: it takes a slot, starts
// the watchdog, sends, and hands the response to read, closing its body
// afterwards. Errors from sending and from read are typed with
// TransportError, so read may return a body's read or decode error as it
// is.
func (c Call) Do(ctx context.Context, read func(*http.Response) error) error {
	return c.run(ctx, func(resp *http.Response, w *Watchdog) error {
		if err := read(resp); err != nil {
			return TransportError(err, w)
		}
		return nil
	})
}

// Stream runs c for a streamed answer: as Do, but read gets the watchdog
// (to Kick on every chunk) and its errors are returned as they are, since
// they include the caller's own (a client that went away); read types
// transport errors itself with TransportError.
func (c Call) Stream(ctx context.Context, read func(*http.Response, *Watchdog) error) error {
	return c.run(ctx, read)
}

func (c Call) run(ctx context.Context, read func(*http.Response, *Watchdog) error) error {
	if c.Slots != nil {
		release, err := c.Slots.Acquire(ctx)
		if err != nil {
			return err
		}
		defer release()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := NewWatchdog(c.Timeout, cancel)
	defer w.Stop()
	resp, err := c.Send(ctx)
	if err != nil {
		return TransportError(err, w)
	}
	defer resp.Body.Close()
	return read(resp, w)
}

// DecodeJSON reads one JSON body of at most max bytes into v; a body that
// is too large or does not parse is the upstream's fault (class
// unavailable), so the agent may retry elsewhere.
func DecodeJSON(r io.Reader, max int64, v any) error {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return err
	}
	if int64(len(b)) > max {
		return sdk.Errorf(sdk.Unavailable, "upstream response is larger than %d bytes", max)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return sdk.Errorf(sdk.Unavailable, "upstream sent malformed JSON: %v", err)
	}
	return nil
}
