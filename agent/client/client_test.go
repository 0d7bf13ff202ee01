package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestUnauthorizedWithoutTokenSaysHowToGiveOne checks that a 401 answered
// to a request sent without a token tells the CLI user how to give one.
func TestUnauthorizedWithoutTokenSaysHowToGiveOne(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":{"code":"unauthorized","message":"this API needs a token"}}`))
	}))
	defer srv.Close()

	for _, tc := range []struct {
		token    string
		wantHint bool
	}{{"", true}, {"0123456789abcdef-wrong", false}} {
		c, err := New(Config{Addr: srv.URL, Token: tc.token})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Get(context.Background(), "/v1/status", nil)
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized {
			t.Fatalf("token %q: error = %v; want a 401 APIError", tc.token, err)
		}
		hint := strings.Contains(err.Error(), EnvToken) && strings.Contains(err.Error(), EnvTokenFile)
		if hint != tc.wantHint {
			t.Errorf("token %q: error = %q; hint shown %v, want %v", tc.token, err, hint, tc.wantHint)
		}
	}
}

// TestTLSMistakesSayWhatToDo checks the hints for the two usual TLS
// mistakes: an agent certificate the CLI does not trust, and plain http to
// an agent that serves https.
func TestTLSMistakesSayWhatToDo(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()

	c, err := New(Config{Addr: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(context.Background(), "/v1/status", nil)
	if err == nil || !strings.Contains(err.Error(), "-ca-file") || !strings.Contains(err.Error(), EnvCAFile) {
		t.Errorf("untrusted certificate: error = %v; want a hint at -ca-file and %s", err, EnvCAFile)
	}
	if err != nil && strings.Contains(err.Error(), "is it running?") {
		t.Errorf("untrusted certificate: error = %v; the agent is running", err)
	}

	c, err = New(Config{Addr: strings.TrimPrefix(srv.URL, "https://")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(context.Background(), "/v1/status", nil)
	if err == nil || !strings.Contains(err.Error(), "https://") {
		t.Errorf("http to an https agent: error = %v; want a hint to use https://", err)
	}
}
