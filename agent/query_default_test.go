package agent

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vigilml/vigil/agent/store"
)

// TestQueryDefaultAggregation: GET /v1/query with a step and no agg takes
// the last value of each step for a counter (a _total series) and for a
// histogram's or summary's cumulative _count, _sum and _bucket series, whose
// average over a step answers nothing, and the average for a gauge; an
// explicit agg is kept.
func TestQueryDefaultAggregation(t *testing.T) {
	a, _, _ := newTestAgent(t)
	ts := httptest.NewServer(a.API())
	defer ts.Close()
	start := time.Now().Add(-10 * time.Minute).Truncate(time.Minute)
	var samples []store.Sample
	for i, v := range []float64{10, 20, 30, 40} { // one step of 1m, 4 samples
		at := start.Add(time.Duration(i) * 10 * time.Second)
		for _, name := range []string{"test_requests_total", "test_queue_depth", "test_latency_seconds_count", "test_latency_seconds_sum", "test_latency_seconds_bucket"} {
			samples = append(samples, store.Sample{Name: name, Time: at, Value: v})
		}
	}
	if err := a.store.Append(context.Background(), samples); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ series, agg, wantAgg, want string }{
		{"test_requests_total", "", "last", "40"},
		{"test_latency_seconds_count", "", "last", "40"},
		{"test_latency_seconds_sum", "", "last", "40"},
		{"test_latency_seconds_bucket", "", "last", "40"},
		{"test_queue_depth", "", "avg", "25"},
		{"test_requests_total", "avg", "avg", "25"},
		{"test_queue_depth", "last", "last", "40"},
	} {
		q := url.Values{"series": {tc.series}, "start": {start.Format(time.RFC3339)}, "end": {start.Add(time.Minute).Format(time.RFC3339)}, "step": {"1m"}}
		if tc.agg != "" {
			q.Set("agg", tc.agg)
		}
		resp, err := http.Get(ts.URL + "/v1/query?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		var res QueryResult
		err = json.NewDecoder(resp.Body).Decode(&res)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s agg %q: %d %v", tc.series, tc.agg, resp.StatusCode, err)
		}
		if res.Agg != tc.wantAgg || len(res.Series) != 1 || len(res.Series[0].Points) != 1 || res.Series[0].Points[0][1] != tc.want {
			t.Errorf("%s agg %q: agg %q series %+v, want agg %s and one point %s", tc.series, tc.agg, res.Agg, res.Series, tc.wantAgg, tc.want)
		}
	}
}

// TestQueryUnknownParameter: GET /v1/query refuses a parameter it does not
// know, naming it, instead of ignoring it: "match=gpu=0" (for match[]) or a
// misspelt "stpe" answered every series, or raw points, as if all was well.
func TestQueryUnknownParameter(t *testing.T) {
	a, _, _ := newTestAgent(t)
	ts := httptest.NewServer(a.API())
	defer ts.Close()
	for _, tc := range []struct{ query, want string }{
		{"series=vigil_host_load1&match=gpu%3D0", "match[]"},
		{"series=vigil_host_load1&stpe=1m", "parameter stpe is not known"},
	} {
		resp, err := http.Get(ts.URL + "/v1/query?" + tc.query)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusBadRequest || body.Error.Code != "invalid_request" || !strings.Contains(body.Error.Message, tc.want) {
			t.Errorf("%s: %d %+v (%v); want 400 invalid_request naming %q", tc.query, resp.StatusCode, body, err, tc.want)
		}
	}
}

// Values are written as Prometheus's HTTP API writes them: no exponent,
// so a byte count reads as one.
func TestFormatValueAsPrometheus(t *testing.T) {
	for v, want := range map[float64]string{
		208767766528:    "208767766528",
		0.5:             "0.5",
		1.5e-7:          "0.00000015",
		math.NaN():      "NaN",
		math.Inf(1):     "+Inf",
		math.Inf(-1):    "-Inf",
		-3:              "-3",
		1099511627776.5: "1099511627776.5",
	} {
		if got := formatValue(v); got != want {
			t.Errorf("formatValue(%v) = %q, want %q", v, got, want)
		}
	}
}
