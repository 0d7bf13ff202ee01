package upstream

import (
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

func TestOptions(t *testing.T) {
	o := NewOptions(map[string]any{
		"name": "x", "count": float64(3), "frac": 2.5, "flag": "yes", "wait": "soon",
		"headers": map[string]any{"X-Ok": "1", "Authorization": "Bearer k", "Bad Name": "v"}, "extra": true,
	})
	o.Known("name", "count", "frac", "flag", "wait", "headers")
	if s, ok := o.Str("name"); !ok || s != "x" {
		t.Errorf("Str: %q %v", s, ok)
	}
	if n, ok := o.Whole("count", 1, 10); !ok || n != 3 {
		t.Errorf("Whole: %d %v", n, ok)
	}
	if _, ok := o.Whole("frac", 1, 10); ok {
		t.Error("2.5 is not whole")
	}
	if _, ok := o.Bool("flag"); ok {
		t.Error(`"yes" is not a bool`)
	}
	if _, ok := o.Duration("wait"); ok {
		t.Error(`"soon" is not a duration`)
	}
	if _, ok := o.Str("missing"); ok {
		t.Error("missing key read as set")
	}
	h, ok := o.Headers("headers", "is set by the plugin", "authorization")
	if !ok || len(h) != 1 || h["X-Ok"] != "1" {
		t.Errorf("Headers: %v %v", h, ok)
	}
	got := map[string]string{}
	for _, e := range o.Errors() {
		got[e.Field] = e.Message
	}
	want := map[string]string{
		"extra":                 "unknown key (known: name, count, frac, flag, wait, headers)",
		"frac":                  "must be a whole number from 1 to 10, got 2.5",
		"flag":                  "must be true or false, got yes",
		"wait":                  `"soon" is not a positive duration such as 60s`,
		"headers.Authorization": "is set by the plugin",
		"headers.Bad Name":      "is not a valid header",
	}
	if len(got) != len(want) {
		t.Errorf("errors %v, want %v", got, want)
	}
	for f, m := range want {
		if got[f] != m {
			t.Errorf("%s: %q, want %q", f, got[f], m)
		}
	}
}

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
	if sdk.ClassOf(err) != sdk.Timeout || sent {
		t.Errorf("busy slots: %v (sent %v)", err, sent)
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
