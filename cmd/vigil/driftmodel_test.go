package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigilml/vigil/agent/drift"
)

// TestDriftModelShowsWarnings: a feature's warning (numbers compared as
// categories) is printed under the table, naming the feature.
func TestDriftModelShowsWarnings(t *testing.T) {
	const warning = `compared as categories because of strings such as "missing", though 39 of its 40 values are numbers`
	now := time.Now().UTC()
	answer := map[string]any{"model": "fraud", "versions": []drift.Evaluation{{
		Model: "fraud", Version: "v1", EvaluatedAt: now, Verdict: "ok", Correction: "bonferroni",
		Features: []drift.FeatureResult{
			{Feature: "amount", Detector: "chisquare", Method: "chisquare", Categorical: true, Severity: "ok", ReferenceN: 20, CurrentN: 20, EvaluatedAt: now, Warning: warning},
			{Feature: "country", Detector: "chisquare", Method: "chisquare", Categorical: true, Severity: "ok", ReferenceN: 20, CurrentN: 20, EvaluatedAt: now},
		},
	}}}
	addr := jsonAgent(t, "/v1/models/fraud/drift", func() any { return answer })
	var stdout, stderr bytes.Buffer
	if code := run([]string{"drift", "fraud", "-http-addr", addr}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	if !strings.Contains(out, "  warning: amount: "+warning) || strings.Count(out, "warning:") != 1 {
		t.Errorf("output does not give amount's warning once:\n%s", out)
	}
}

// jsonAgent is a stand-in for an agent's API that answers GET path with
// the JSON of answer() and 404 elsewhere; it returns its host:port.
func jsonAgent(t *testing.T, path string, answer func() any) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(answer())
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}
