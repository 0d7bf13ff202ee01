package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vigilml/vigil/agent/fleet"
)

// TestFleetStatsIncomplete: vigil fleet stats exited 0 when an alive node
// did not answer in time and said nothing of failed or left members. It
// still prints the answers that came, names the nodes that did not answer
// and those not asked, and exits 1; a complete answer exits 0.
func TestFleetStatsIncomplete(t *testing.T) {
	p50 := 12.5
	complete := fleet.FleetStats{Model: "llama", RelativeAccuracy: 0.02, Asked: 2, Nodes: 2, Requests: 100, P50Ms: &p50,
		Answered: []string{"n0", "n1"}, NotServing: []string{}, Missing: []string{}}
	partial := complete
	partial.Asked, partial.Nodes, partial.Answered = 3, 1, []string{"n0"}
	partial.Missing = []string{"n2"}
	partial.NotAsked = map[string]string{"n3": "failed", "n4": "left"}
	var answer fleet.FleetStats
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/fleet/models/llama/stats" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(answer)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, tc := range []struct {
		name     string
		st       fleet.FleetStats
		format   string
		code     int
		stdout   []string
		stderr   string
		noStdout []string
	}{
		{name: "complete", st: complete, format: "text", code: 0, stdout: []string{"Nodes:", "2 serving (n0, n1)", "12.5 ms"}, noStdout: []string{"Not asked", "No answer"}},
		{name: "incomplete", st: partial, format: "text", code: 1,
			stdout: []string{"1 serving (n0)", "12.5 ms", "No answer in time:", "n2", "Not asked:", "n3 (failed), n4 (left)"},
			stderr: "vigil fleet stats llama: incomplete: 1 of 3 alive nodes did not answer in time (n2)"},
		{name: "incomplete json", st: partial, format: "json", code: 1,
			stdout: []string{`"missing": [`, `"n3": "failed"`, `"asked": 3`},
			stderr: "vigil fleet stats llama: incomplete: 1 of 3 alive nodes did not answer in time (n2)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answer = tc.st
			var stdout, stderr bytes.Buffer
			code := run([]string{"fleet", "stats", "llama", "-http-addr", addr, "-format", tc.format}, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tc.code, stderr.String())
			}
			for _, w := range tc.stdout {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout.String())
				}
			}
			for _, w := range tc.noStdout {
				if strings.Contains(stdout.String(), w) {
					t.Errorf("stdout has %q:\n%s", w, stdout.String())
				}
			}
			if tc.stderr == "" && stderr.Len() != 0 || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr = %q, want %q", stderr.String(), tc.stderr)
			}
		})
	}
}
