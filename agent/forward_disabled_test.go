package agent

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestForwardWithoutUpstreams checks that GET /v1/forward on an agent with
// no forward.remote_write upstreams says forwarding is off, as drift and
// gossip do when they are off, rather than that the endpoint does not exist.
func TestForwardWithoutUpstreams(t *testing.T) {
	a, _, _ := newTestAgent(t)
	ts := httptest.NewServer(a.API())
	defer ts.Close()

	resp, err := http.Get(ts.URL + "/v1/forward")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusConflict || body.Error.Code != "forward_disabled" || !strings.Contains(body.Error.Message, "forward.remote_write") {
		t.Errorf("GET /v1/forward = %d %+v; want 409 forward_disabled naming forward.remote_write", resp.StatusCode, body.Error)
	}
}
