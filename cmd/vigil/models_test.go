package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestModelsTable: sub-0.1 ms percentiles are printed with two significant
// digits instead of as 0.0, and an unknown -format is refused rather than
// silently printing the table.
func TestModelsTable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"models":[{"model":"m","versions":[{"version":"v1","observations":3,
			"stats":{"requests":3,"latency_p50_ms":0.0055,"latency_p95_ms":0.0095,"latency_p99_ms":12.34}}]}]}`))
	}))
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"models", "-http-addr", strings.TrimPrefix(srv.URL, "http://")}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], " 0.0055 ") || !strings.Contains(lines[1], " 0.0095 ") || !strings.Contains(lines[1], " 12.3 ") {
		t.Errorf("table:\n%s", stdout.String())
	}
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"models", "-format", "yaml", "-http-addr", strings.TrimPrefix(srv.URL, "http://")}, &stdout, &stderr); code != 2 || stdout.Len() != 0 || !strings.Contains(stderr.String(), "-format") {
		t.Errorf("-format yaml: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}
