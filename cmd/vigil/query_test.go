package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestQueryStepsOnRoundTimes checks that vigil query -step asks for a start
// on a multiple of the step, so its points are stamped 13:05, 13:10, ...
// rather than at now minus -since (13:04:37, 13:09:37, ...).
func TestQueryStepsOnRoundTimes(t *testing.T) {
	starts := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		starts <- r.URL.Query().Get("start")
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"series": []}`))
	}))
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	before := time.Now()
	code := run([]string{"query", "vigil_host_load1", "-since", "2h", "-step", "5m", "-http-addr", strings.TrimPrefix(srv.URL, "http://")}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	got := <-starts
	start, err := time.Parse(time.RFC3339Nano, got)
	if err != nil {
		t.Fatalf("start %q is not an RFC 3339 time: %v", got, err)
	}
	if start.Unix()%300 != 0 || start.Nanosecond() != 0 {
		t.Errorf("start %s is not on a multiple of the 5m step", got)
	}
	if want := before.Add(-2 * time.Hour); start.After(want) || want.Sub(start) >= 5*time.Minute {
		t.Errorf("start %s, want within one step before %s", got, want.UTC().Format(time.RFC3339))
	}
}

// TestQuerySinceInDays checks that -since 2d, which Go's flag package
// refuses with a bare "parse error", is answered with the form to use.
func TestQuerySinceInDays(t *testing.T) {
	t.Setenv("VIGIL_HTTP_ADDR", "127.0.0.1:1")
	var stdout, stderr bytes.Buffer
	code := run([]string{"query", "vigil_host_load1", "-since", "2d"}, &stdout, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "48h") || !strings.Contains(stderr.String(), "no d unit") {
		t.Errorf("exit %d, stderr %q; want exit 2 and the usage showing 48h and that there is no d unit", code, stderr.String())
	}
}

// TestQueryTextValues: the text table rounds float noise to 12
// significant digits (3.5919999999999983 reads 3.592) and keeps whole
// numbers exact; -format json passes the agent's exact values on.
func TestQueryTextValues(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"series": [{"name": "x", "labels": {}, "points": [[1795723260, "3.5919999999999983"], [1795723320, "1099511627776"], [1795723380, "NaN"], [1795723440, "8e+10"], [1795723500, "1.5000000000000002e-07"], [1795723560, "-0.30000000000000004"]]}]}`))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"query", "x", "-http-addr", addr}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var got []string
	for l := range strings.Lines(stdout.String()) {
		if f := strings.Fields(l); len(f) == 3 {
			got = append(got, f[2])
		}
	}
	want := []string{"3.592", "1099511627776", "NaN", "80000000000", "1.5e-07", "-0.3"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("text values %q, want %q:\n%s", got, want, stdout.String())
	}
	stdout.Reset()
	if code := run([]string{"query", "x", "-format", "json", "-http-addr", addr}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), `"3.5919999999999983"`) {
		t.Errorf("json: exit %d:\n%s", code, stdout.String())
	}
}
