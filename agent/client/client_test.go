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
