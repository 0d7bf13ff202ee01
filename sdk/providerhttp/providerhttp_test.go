package providerhttp

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigilml/vigil/sdk"
)

func TestCall(t *testing.T) {
	slow := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-slow
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()
	defer close(slow)
	client := srv.Client()
	send := func(path string) func(ctx context.Context) (*http.Response, error) {
		return func(ctx context.Context) (*http.Response, error) {
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+path, nil)
			return client.Do(req)
		}
	}
	slots := NewSlots(1)

	var body struct{ OK bool }
	err := Call{Slots: slots, Timeout: time.Minute, Send: send("/")}.Do(context.Background(), func(resp *http.Response) error {
		return DecodeJSON(resp.Body, 1<<10, &body)
	})
	if err != nil || !body.OK {
		t.Fatalf("Do: %v %+v", err, body)
	}
	if len(slots) != 0 {
		t.Fatal("the slot was not released")
	}
	// A body that does not parse is the upstream's fault.
	err = Call{Timeout: time.Minute, Send: send("/")}.Do(context.Background(), func(resp *http.Response) error {
		return DecodeJSON(resp.Body, 3, &body)
	})
	if sdk.ClassOf(err) != sdk.Unavailable || !strings.Contains(err.Error(), "larger than 3 bytes") {
		t.Errorf("oversized body: %v", err)
	}
	// The watchdog cancels a call gone quiet: class timeout.
	err = Call{Slots: slots, Timeout: 20 * time.Millisecond, Send: send("/slow")}.Do(context.Background(), func(*http.Response) error { return nil })
	if sdk.ClassOf(err) != sdk.Timeout || !strings.Contains(err.Error(), "within timeout 20ms") {
		t.Errorf("quiet upstream: %v", err)
	}
	// No free slot until the deadline: class timeout, nothing sent.
	slots <- struct{}{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sent := false
	err = Call{Slots: slots, Timeout: time.Minute, Send: func(context.Context) (*http.Response, error) { sent = true; return nil, errors.New("no") }}.Do(ctx, nil)
	if sdk.ClassOf(err) != sdk.Timeout || sent || !strings.Contains(err.Error(), "cancelled while waiting for one of 1 upstream slots") {
		t.Errorf("busy slots, call cancelled: %v (sent %v)", err, sent)
	}
	ctx, cancel = context.WithDeadline(context.Background(), time.Now())
	defer cancel()
	err = Call{Slots: slots, Timeout: time.Minute, Send: func(context.Context) (*http.Response, error) { sent = true; return nil, errors.New("no") }}.Do(ctx, nil)
	if sdk.ClassOf(err) != sdk.Timeout || sent || !strings.Contains(err.Error(), "all 1 upstream slots (max_concurrency) stayed busy until the deadline") {
		t.Errorf("busy slots, deadline: %v (sent %v)", err, sent)
	}
	<-slots
	// Stream hands read's own errors back untouched.
	mine := errors.New("the client went away")
	err = Call{Timeout: time.Minute, Send: send("/")}.Stream(context.Background(), func(*http.Response, *Watchdog) error { return mine })
	if err != mine {
		t.Errorf("Stream error: %v", err)
	}
	// A refused connection is unavailable.
	err = Call{Timeout: time.Minute, Send: func(ctx context.Context) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://127.0.0.1:1/", nil)
		return client.Do(req)
	}}.Do(context.Background(), nil)
	if sdk.ClassOf(err) != sdk.Unavailable {
		t.Errorf("refused: %v", err)
	}
}

// TestZeroLimits: an endpoint made from settings that leave timeout and
// max_concurrency at zero (a plugin whose defaults forgot them) calls
// its upstream with no silence bound and no slot bound, as Go's own
// zero timeouts mean, rather than failing every call at once (a
// watchdog of period 0) or after waiting out the deadline (zero slots).
func TestZeroLimits(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "{\"piece\":\"a\"}\n{\"done\":true}\n")
	}))
	t.Cleanup(srv.Close)
	e := NewEndpoint(srv.URL, 0, 0, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out struct{ Piece string }
	err := e.Call(http.MethodPost, "/v2/generate", map[string]any{}, true).Do(ctx, func(resp *http.Response) error {
		line, _, _ := strings.Cut(mustRead(t, resp.Body), "\n")
		return DecodeJSON(strings.NewReader(line), 1<<10, &out)
	})
	if err != nil || out.Piece != "a" {
		t.Fatalf("Do with zero timeout and max_concurrency: %v %+v", err, out)
	}
	err = e.Call(http.MethodPost, "/v2/generate", map[string]any{}, true).Stream(ctx, func(resp *http.Response, w *Watchdog) error {
		w.Kick()
		mustRead(t, resp.Body)
		w.Kick()
		return nil
	})
	if err != nil {
		t.Fatalf("Stream with zero timeout and max_concurrency: %v", err)
	}
	w := NewWatchdog(0, func() { t.Error("a watchdog of period 0 fired") })
	w.Kick()
	w.Stop()
	if w.Fired() {
		t.Error("a watchdog of period 0 says it fired")
	}
}

func mustRead(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestWatchdogHold: time spent handing a chunk on to the agent (a slow
// client behind it) is not upstream silence: a stream whose every send
// blocks for several watchdog periods completes, while an upstream that
// goes quiet between chunks is still cut after one period.
func TestWatchdogHold(t *testing.T) {
	quiet := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range 3 {
			if i == 2 && r.URL.Path == "/quiet" {
				<-quiet
			}
			io.WriteString(w, "chunk\n")
			w.(http.Flusher).Flush()
		}
	}))
	defer srv.Close()
	defer close(quiet)
	call := func(path string) Call {
		return Call{Timeout: 50 * time.Millisecond, Send: func(ctx context.Context) (*http.Response, error) {
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+path, nil)
			return srv.Client().Do(req)
		}}
	}
	read := func(got *int) func(*http.Response, *Watchdog) error {
		return func(resp *http.Response, w *Watchdog) error {
			send := Paused(w, func(string) error {
				time.Sleep(200 * time.Millisecond) // four periods: the agent is slow to take it
				*got++
				return nil
			})
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				w.Kick()
				if err := send(sc.Text()); err != nil {
					return err
				}
			}
			if err := sc.Err(); err != nil {
				return TransportError(err, w)
			}
			return nil
		}
	}
	var got int
	if err := call("/").Stream(context.Background(), read(&got)); err != nil || got != 3 {
		t.Fatalf("slow agent: %v after %d chunks, want all 3 and no error", err, got)
	}
	got = 0
	err := call("/quiet").Stream(context.Background(), read(&got))
	if sdk.ClassOf(err) != sdk.Timeout || !strings.Contains(err.Error(), "within timeout 50ms") || got != 2 {
		t.Fatalf("quiet upstream: %v after %d chunks, want a timeout after 2", err, got)
	}
}
