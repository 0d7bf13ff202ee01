// Package providerhttp is the HTTP plumbing of an LLM provider plugin
// whose upstream is a JSON API over HTTP: what Vigil's own openai and
// anthropic plugins use, public so that a third party's provider gets the
// same behaviour without writing it again.
//
// A provider keeps one Endpoint per configuration (base URL, the headers
// every request carries, and how a failed answer maps to the contract's
// classes) and makes every upstream request a Call:
//
//	ep := providerhttp.NewEndpoint(h.BaseURL, h.MaxConcurrency, h.Timeout, header, nil)
//	var out chatCompletion
//	err := ep.Call(http.MethodPost, "/chat/completions", body, true).Do(ctx, func(resp *http.Response) error {
//		return providerhttp.DecodeJSON(resp.Body, 64<<20, &out)
//	})
//
// What a Call guarantees:
//
//   - at most max_concurrency slotted calls are in flight to the upstream
//     (Slots); a call that finds none free before its ctx ends fails with
//     class timeout, and sends nothing;
//   - the plugin's timeout bounds the upstream's silence (until its
//     response headers, then between two streamed chunks: Watchdog), not
//     the whole call, so a long stream that keeps talking is not cut;
//     the call's own deadline is the agent's, in ctx;
//   - every error it returns is an *sdk.Error with a class, as the agent
//     needs to route, retry or fall back (docs/gateway.md, "Routing,
//     retries and fallback"): a non-2xx answer gets the class the
//     Endpoint's Classify gives it (ClassForStatus by default), a failed
//     exchange the class TransportError gives it, and an answer that does
//     not parse class unavailable (DecodeJSON). The only exception is a
//     streamed read's own errors (Call.Stream), which include the agent's
//     send errors and are returned as they are;
//   - an error body that quotes the credentials the Endpoint sends (a
//     server or proxy echoing a rejected API key) has them replaced
//     (RedactCredentials) before Classify sees it, so the key does not
//     reach the gateway's clients in an error message.
//
// ClassForStatus, RetryAfter and StatusError are usable on their own by a
// provider that makes its requests itself. The package depends on the
// standard library and the sdk package only.
package providerhttp

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

// NewHTTPClient returns a client for one upstream: it keeps up to
// maxConcurrency idle connections to it (http.DefaultTransport keeps 2
// per host, too few for a plugin with many calls in flight) and waits at
// most timeout for the response headers of each request. The deadline of
// a whole call comes from the caller's context, not from the client.
//
// It follows at most 10 redirects, as Go's client does, but one to
// another host (host and port) goes without the request's credential
// headers (those RedactCredentials knows, X-Api-Key and a custom
// X-Acme-Token as well as Authorization): Go's client drops only
// Authorization and Cookie, so the key of an upstream that
// authenticates with a header of its own would otherwise be sent
// wherever that upstream, or a proxy in front of it, redirects.
func NewHTTPClient(maxConcurrency int, timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = maxConcurrency
	tr.ResponseHeaderTimeout = timeout
	return &http.Client{Transport: tr, CheckRedirect: keepCredentialsHome}
}

// keepCredentialsHome is NewHTTPClient's CheckRedirect.
func keepCredentialsHome(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.URL.Host != via[0].URL.Host {
		for name := range req.Header {
			if isCredentialHeader(name) {
				req.Header.Del(name)
			}
		}
	}
	return nil
}

// Slots bounds the calls in flight to one upstream: the max_concurrency
// setting of a gateway.providers entry. Make one with NewSlots; its zero
// value (nil), like NewSlots(0), bounds nothing.
type Slots chan struct{}

// NewSlots returns n slots; n <= 0 means no bound (a max_concurrency the
// plugin's defaults and its settings left at zero).
func NewSlots(n int) Slots { return make(Slots, max(n, 0)) }

// Acquire takes a slot, waiting for one until ctx ends; then it fails with
// an *sdk.Error of class timeout, saying whether the deadline passed or
// the call was cancelled. On success the caller calls release when
// its upstream call is over. Slots with no capacity bound nothing: Acquire
// returns at once.
func (s Slots) Acquire(ctx context.Context) (release func(), err error) {
	if cap(s) == 0 {
		return func() {}, nil
	}
	select {
	case s <- struct{}{}:
		return func() { <-s }, nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.Canceled) {
			// The agent gave up on the call (its client went away).
			return nil, sdk.Errorf(sdk.Timeout, "call cancelled while waiting for one of %d upstream slots (max_concurrency)", cap(s))
		}
		return nil, sdk.Errorf(sdk.Timeout, "all %d upstream slots (max_concurrency) stayed busy until the deadline", cap(s))
	}
}

// Watchdog cancels a call that goes quiet for longer than its period: it
// is how a plugin's timeout bounds the upstream's silence rather than the
// length of a call. Kick restarts the clock; a streamed read calls it on
// every chunk. A nil *Watchdog has not fired. One of period 0 or less
// never fires: no silence bound, as Go's zero timeouts mean.
type Watchdog struct {
	t     *time.Timer
	fired atomic.Bool
	d     time.Duration
}

// NewWatchdog starts a watchdog that calls cancel after d of silence
// (never when d <= 0). Stop it when the call is over.
func NewWatchdog(d time.Duration, cancel context.CancelFunc) *Watchdog {
	w := &Watchdog{d: d}
	if d > 0 {
		w.t = time.AfterFunc(d, func() { w.fired.Store(true); cancel() })
	}
	return w
}

// Kick restarts the clock: the upstream has just said something.
func (w *Watchdog) Kick() {
	if w != nil && w.t != nil {
		w.t.Reset(w.d)
	}
}

// Hold runs f with the clock stopped and restarts it when f returns.
// Wrap what hands a chunk on to the agent in it: while the agent (a slow
// client behind it) is not taking chunks, the upstream is not silent, it
// is held back, and that time must not count as its silence. A watchdog
// that fired before Hold stays fired; Hold does not run f then.
func (w *Watchdog) Hold(f func() error) error {
	if w == nil || w.t == nil {
		return f()
	}
	if !w.t.Stop() && w.fired.Load() {
		return TransportError(context.Canceled, w)
	}
	defer w.Kick()
	return f()
}

// Paused returns send wrapped in w.Hold: a stream reader calls it for
// every event it passes on, so that only the upstream's silence counts.
//
//	send = providerhttp.Paused(w, send)
func Paused[T any](w *Watchdog, send func(T) error) func(T) error {
	return func(ev T) error { return w.Hold(func() error { return send(ev) }) }
}

// Stop stops the watchdog; it does not fire afterwards.
func (w *Watchdog) Stop() {
	if w != nil && w.t != nil {
		w.t.Stop()
	}
}

// Fired says whether the watchdog cancelled the call.
func (w *Watchdog) Fired() bool { return w != nil && w.fired.Load() }

// Period is the silence after which the watchdog fires.
func (w *Watchdog) Period() time.Duration { return w.d }

// TransportError gives an error from the HTTP exchange itself (sending
// the request, or reading the response body) the class the agent acts
// on. An *sdk.Error (anywhere in err's chain) is returned as it is. The
// watchdog w firing (w may be nil), ctx's deadline passing, ctx being
// cancelled (the agent gave up on the call) and a network timeout are
// class timeout; anything else (a refused or reset connection, a cut
// body) is class unavailable, which the gateway retries or sends to the
// next target.
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
// provider. Endpoint.Call makes one; a provider that builds its requests
// itself fills the fields:
//
//   - Slots bounds the calls in flight; nil: the call takes no slot (as a
//     cheap call such as listing models need not).
//   - Timeout is the watchdog's period: the longest silence of the
//     upstream; zero (the zero Call's): no bound.
//   - Send makes the request with the context it is given (which the
//     watchdog cancels) and returns the response only when it is a 2xx,
//     and otherwise an error with a class (Endpoint.Do does both).
type Call struct {
	Slots   Slots
	Timeout time.Duration
	Send    func(ctx context.Context) (*http.Response, error)
}

// Do runs c for a whole (non-streamed) answer: it takes a slot, starts
// the watchdog, sends, and hands the 2xx response to read, closing its
// body afterwards. Errors from sending and from read are typed with
// TransportError, so read may return a body's read or decode error as it
// is; an *sdk.Error it returns passes unchanged.
func (c Call) Do(ctx context.Context, read func(*http.Response) error) error {
	return c.run(ctx, func(resp *http.Response, w *Watchdog) error {
		if err := read(resp); err != nil {
			return TransportError(err, w)
		}
		return nil
	})
}

// Stream runs c for a streamed answer: as Do, but read also gets the
// watchdog, to Kick on every chunk, and read's errors are returned as
// they are, since they include the caller's own (a send to an agent that
// went away). read types an error of the upstream's body itself, with
// TransportError(err, w).
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

// DecodeJSON reads one JSON body of at most max bytes into v. A body that
// is too large or does not parse is the upstream's fault: class
// unavailable, so the gateway may retry elsewhere. An error reading the
// body is returned as it is, for TransportError (Call.Do applies it).
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
