package agent

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestAlertsEndpoint: GET /v1/alerts answers with the manager's state,
// with every rule active (the drift engine feeds drift and accuracy_drop),
// and rejects an unknown state
// filter with a JSON error.
func TestAlertsEndpoint(t *testing.T) {
	a, _, _ := newTestAgent(t)
	ts := httptest.NewServer(a.API())
	defer ts.Close()
	for _, tc := range []struct {
		query string
		code  int
	}{{"", 200}, {"?state=active", 200}, {"?state=resolved", 200}, {"?state=bogus", 400}} {
		resp, err := http.Get(ts.URL + "/v1/alerts" + tc.query)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Enabled bool `json:"enabled"`
			Alerts  []any
			Status  struct {
				Inactive []string `json:"inactive_rules"`
			}
			Error struct{ Code string }
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != tc.code {
			t.Fatalf("%s: %d %v", tc.query, resp.StatusCode, err)
		}
		if tc.code == 400 {
			if body.Error.Code != "invalid_request" {
				t.Errorf("%s: error %+v", tc.query, body.Error)
			}
			continue
		}
		if !body.Enabled || body.Alerts == nil || len(body.Alerts) != 0 || len(body.Status.Inactive) != 0 {
			t.Errorf("%s: %+v", tc.query, body)
		}
	}
}
