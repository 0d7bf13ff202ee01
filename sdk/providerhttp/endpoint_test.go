package providerhttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigilml/vigil/sdk"
)

// TestEndpointDo: every request carries the endpoint's headers (and
// Content-Type only with a body), the body is the JSON encoding, and a
// non-2xx answer goes to Classify with its status and body.
func TestEndpointDo(t *testing.T) {
	type seen struct {
		path, ctype, auth, body string
	}
	got := make(chan seen, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("Authorization"), string(b)}
		if r.URL.Path == "/fail" {
			http.Error(w, `{"error":"nope"}`, http.StatusTeapot)
			return
		}
		w.Write([]byte("{}"))
	}))
	t.Cleanup(srv.Close)
	h := http.Header{}
	h.Set("Authorization", "Bearer k")
	errClassified := sdk.Errorf(sdk.InvalidRequest, "classified")
	var status int
	var body string
	e := NewEndpoint(srv.URL, 2, time.Second, h, func(s int, _ http.Header, b []byte) error {
		status, body = s, string(b)
		return errClassified
	})
	ctx := context.Background()
	resp, err := e.Do(ctx, http.MethodPost, "/post", map[string]int{"a": 1})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s := <-got; s != (seen{"/post", "application/json", "Bearer k", `{"a":1}`}) {
		t.Errorf("POST sent %+v", s)
	}
	resp, err = e.Do(ctx, http.MethodGet, "/get", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s := <-got; s != (seen{"/get", "", "Bearer k", ""}) {
		t.Errorf("GET sent %+v (a body's Content-Type must not stick to the endpoint's headers)", s)
	}
	if _, err := e.Do(ctx, http.MethodGet, "/fail", nil); !errors.Is(err, errClassified) || status != http.StatusTeapot || body != "{\"error\":\"nope\"}\n" {
		t.Errorf("failure: err %v, classified %d %q", err, status, body)
	}
	<-got
}

// TestEndpointRedactsKeyInErrors: an upstream that quotes the rejected
// API key in its error body does not get it to Classify, whose message
// the gateway answers its clients with.
func TestEndpointRedactsKeyInErrors(t *testing.T) {
	const key = "sk-proj-0123456789abcdef"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var echoed []string
		for _, vs := range r.Header {
			echoed = append(echoed, vs...)
		}
		http.Error(w, `{"error":{"message":"Incorrect API key provided: `+strings.Join(echoed, " ")+`"}}`, http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	for _, tc := range []struct{ header, value string }{
		{"Authorization", "Bearer " + key},
		{"x-api-key", key},
		{"api-key", key},
		// A third party's upstream authenticates with a header of its own.
		{"X-Acme-Token", key},
		{"x-goog-api-key", key},
		{"Ocp-Apim-Subscription-Key", key},
		{"Proxy-Authorization", "Basic " + key},
	} {
		t.Run(tc.header, func(t *testing.T) {
			h := http.Header{}
			h.Set(tc.header, tc.value)
			var body string
			e := NewEndpoint(srv.URL, 1, time.Second, h, func(_ int, _ http.Header, b []byte) error {
				body = string(b)
				return errors.New("classified")
			})
			if _, err := e.Do(context.Background(), http.MethodGet, "/", nil); err == nil {
				t.Fatal("no error for a 401")
			}
			if strings.Contains(body, key) || !strings.Contains(body, "[redacted]") {
				t.Errorf("body classified: %s", body)
			}
		})
	}
}

func TestRedactCredentials(t *testing.T) {
	for _, c := range []struct {
		name, header, value, body, want string
	}{
		{"bearer key", "Authorization", "Bearer sk-0123456789", "bad key sk-0123456789.", "bad key [redacted]."},
		{"x-api-key, every copy", "X-Api-Key", "sk-ant-abcdefgh", "sk-ant-abcdefgh != sk-ant-abcdefgh", "[redacted] != [redacted]"},
		{"short value left alone", "Api-Key", "abc", "abc is not a key", "abc is not a key"},
		{"other headers left alone", "X-Team", "machine-learning", "team machine-learning", "team machine-learning"},
		{"version header left alone", "Anthropic-Version", "2023-06-01", "anthropic-version 2023-06-01 is unknown", "anthropic-version 2023-06-01 is unknown"},
		{"custom token header", "X-Acme-Token", "acme-0123456789", "bad token acme-0123456789", "bad token [redacted]"},
		{"auth token header", "X-Auth-Token", "tok-0123456789", "token tok-0123456789 expired", "token [redacted] expired"},
		{"secret header", "X-Client-Secret", "s3cr3t-value", "secret s3cr3t-value", "secret [redacted]"},
		{"proxy authorization after its scheme", "Proxy-Authorization", "Basic dXNlcjpwYXNzd29yZA==", "Basic dXNlcjpwYXNzd29yZA== refused", "Basic [redacted] refused"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			h.Set(c.header, c.value)
			if got := string(RedactCredentials([]byte(c.body), h)); got != c.want {
				t.Errorf("RedactCredentials(%q) with %s: %s = %q, want %q", c.body, c.header, c.value, got, c.want)
			}
		})
	}
}

// TestEndpointClassifyWithoutClass: a Classify that returns nil or an
// error without a class (errors.New, fmt.Errorf) still gets a non-2xx
// answer the status's class and Retry-After, rather than a nil response
// (a panic in Call) or class unavailable with a message about a failed
// connection.
func TestEndpointClassifyWithoutClass(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "2")
		http.Error(w, `{"fault":"throttled"}`, http.StatusTooManyRequests)
	}))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name     string
		classify func(int, http.Header, []byte) error
		message  string
	}{
		{"nil", func(int, http.Header, []byte) error { return nil }, `upstream HTTP 429: {"fault":"throttled"}`},
		{"plain error", func(s int, _ http.Header, b []byte) error { return fmt.Errorf("acme said %s", b) }, `acme said {"fault":"throttled"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEndpoint(srv.URL, 1, time.Second, nil, tc.classify)
			err := e.Call(http.MethodPost, "/v2/generate", map[string]int{}, true).Do(context.Background(), func(*http.Response) error {
				t.Error("read called for a 429")
				return nil
			})
			var se *sdk.Error
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want an *sdk.Error", err)
			}
			if se.Class != sdk.RateLimited || se.RetryAfter != 2*time.Second || !strings.Contains(se.Message, tc.message) {
				t.Errorf("err = %s %v %q, want rate_limited 2s containing %q", se.Class, se.RetryAfter, se.Message, tc.message)
			}
		})
	}
}

// TestEndpointRedirectKeepsCredentialsHome: an upstream that redirects to
// another host does not get the endpoint's credentials sent there (Go's
// client drops only Authorization and Cookie; a custom X-Acme-Token or
// Anthropic's x-api-key would follow the redirect), while a redirect on
// the same host keeps them.
func TestEndpointRedirectKeepsCredentialsHome(t *testing.T) {
	seen := make(chan http.Header, 4)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		io.WriteString(w, "{}")
	}))
	t.Cleanup(other.Close)
	var home *httptest.Server
	home = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, other.URL+"/v2/generate", http.StatusTemporaryRedirect)
		case "/here":
			http.Redirect(w, r, home.URL+"/v2/generate", http.StatusTemporaryRedirect)
		default:
			seen <- r.Header.Clone()
			io.WriteString(w, "{}")
		}
	}))
	t.Cleanup(home.Close)
	// httptest servers share 127.0.0.1; name the other one differently.
	other.URL = strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
	h := http.Header{}
	h.Set("X-Acme-Token", "acme-0123456789")
	h.Set("X-Api-Key", "sk-ant-0123456789")
	h.Set("X-Team", "ml")
	e := NewEndpoint(home.URL, 1, 5*time.Second, h, nil)
	for _, tc := range []struct {
		path string
		keep bool
	}{{"/away", false}, {"/here", true}} {
		resp, err := e.Do(context.Background(), http.MethodPost, tc.path, map[string]int{"a": 1})
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		resp.Body.Close()
		got := <-seen
		if kept := got.Get("X-Acme-Token") != "" || got.Get("X-Api-Key") != ""; kept != tc.keep {
			t.Errorf("redirect %s: credentials sent on = %v, want %v (headers %v)", tc.path, kept, tc.keep, got)
		}
		if got.Get("X-Team") != "ml" {
			t.Errorf("redirect %s: other headers dropped: %v", tc.path, got)
		}
	}
}

// TestEndpointLiteral: an Endpoint written as a literal, without
// NewEndpoint (no Client, no Slots, no Timeout), calls its upstream with
// Go's default client, no slot bound and no silence bound, rather than
// panicking on a nil client.
func TestEndpointLiteral(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	e := &Endpoint{BaseURL: srv.URL}
	var out struct{ OK bool }
	err := e.Call(http.MethodGet, "/", nil, true).Do(context.Background(), func(resp *http.Response) error {
		return DecodeJSON(resp.Body, 1<<10, &out)
	})
	if err != nil || !out.OK {
		t.Fatalf("Do: %v %+v", err, out)
	}
}
