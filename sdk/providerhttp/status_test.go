package providerhttp

import (
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vigilml/vigil/sdk"
)

// TestClassForStatus pins the table of docs/plugins.md ("Writing a
// plugin in Go"), which the openai and anthropic plugins start from.
func TestClassForStatus(t *testing.T) {
	want := map[int]sdk.Class{
		400: sdk.InvalidRequest, 413: sdk.InvalidRequest, 422: sdk.InvalidRequest,
		401: sdk.Auth, 403: sdk.Auth,
		402: sdk.QuotaExhausted,
		404: sdk.NotFound,
		408: sdk.Timeout, 504: sdk.Timeout,
		429: sdk.RateLimited,
		503: sdk.Overloaded, 529: sdk.Overloaded,
		409: sdk.Unavailable, 500: sdk.Unavailable, 502: sdk.Unavailable, 599: sdk.Unavailable,
		405: sdk.InvalidRequest, 410: sdk.InvalidRequest, 418: sdk.InvalidRequest, 451: sdk.InvalidRequest, 302: sdk.InvalidRequest,
	}
	for status, class := range want {
		if got := ClassForStatus(status); got != class {
			t.Errorf("ClassForStatus(%d) = %s, want %s", status, got, class)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name    string
		headers map[string]string
		want    time.Duration
	}{
		{"none", nil, 0},
		{"seconds", map[string]string{"Retry-After": "2"}, 2 * time.Second},
		{"fractional seconds", map[string]string{"Retry-After": "1.5"}, 1500 * time.Millisecond},
		{"milliseconds first", map[string]string{"Retry-After-Ms": "250", "Retry-After": "2"}, 250 * time.Millisecond},
		{"unusable milliseconds fall back", map[string]string{"Retry-After-Ms": "soon", "Retry-After": "3"}, 3 * time.Second},
		{"absurd milliseconds fall back", map[string]string{"Retry-After-Ms": "1e9", "Retry-After": "3"}, 3 * time.Second},
		{"date", map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, 90 * time.Second},
		{"past date", map[string]string{"Retry-After": now.Add(-time.Minute).Format(http.TimeFormat)}, 0},
		{"zero", map[string]string{"Retry-After": "0"}, 0},
		{"negative", map[string]string{"Retry-After": "-5"}, 0},
		{"absurd seconds", map[string]string{"Retry-After": "1e6"}, 0},
		{"garbage", map[string]string{"Retry-After": "later"}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range c.headers {
				h.Set(k, v)
			}
			if got := RetryAfter(h, now); got != c.want {
				t.Errorf("RetryAfter(%v) = %s, want %s", h, got, c.want)
			}
		})
	}
}

// TestStatusError: the class is the status's, and only the classes the
// gateway waits out carry the upstream's Retry-After.
func TestStatusError(t *testing.T) {
	h := http.Header{}
	h.Set("Retry-After", "7")
	for _, c := range []struct {
		status int
		class  sdk.Class
		after  time.Duration
	}{
		{429, sdk.RateLimited, 7 * time.Second},
		{503, sdk.Overloaded, 7 * time.Second},
		{500, sdk.Unavailable, 0},
		{401, sdk.Auth, 0},
		{400, sdk.InvalidRequest, 0},
	} {
		e := StatusError(c.status, h, "upstream said no")
		if e.Class != c.class || e.RetryAfter != c.after || e.Message != "upstream said no" {
			t.Errorf("StatusError(%d) = %+v, want class %s, retry after %s", c.status, e, c.class, c.after)
		}
	}
}

// TestDefaultClassifyCutsWholeCharacters: a long error body is cut to 512
// bytes without splitting a character, so the message stays valid UTF-8.
func TestDefaultClassifyCutsWholeCharacters(t *testing.T) {
	body := "x" + strings.Repeat("é", 600)
	err := DefaultClassify(http.StatusTooManyRequests, http.Header{}, []byte(body))
	se, ok := err.(*sdk.Error)
	if !ok || se.Class != sdk.RateLimited {
		t.Fatalf("DefaultClassify = %v", err)
	}
	if !utf8.ValidString(se.Message) || !strings.HasSuffix(se.Message, "é...") || len(se.Message) > len("upstream HTTP 429: ")+512+3 {
		t.Errorf("message %q (%d bytes) is not the body cut at a character", se.Message[len(se.Message)-10:], len(se.Message))
	}
}
