package agent

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestGatewayEmptyIDIs404: a path below the gateway's by-id routes with
// a trailing slash names nothing, and every method on it is a 404 in
// OpenAI's shape saying what was asked, as an unknown route is: not a
// 400 (a missing field) nor a 405 (that would suggest another method
// serves it). It goes through the agent's own route registrations.
func TestGatewayEmptyIDIs404(t *testing.T) {
	a, _, _ := newTestAgent(t)
	ts := httptest.NewServer(a.API())
	defer ts.Close()
	for _, c := range []struct{ method, path, says string }{
		{"GET", "/openai/v1/models/", "GET /openai/v1/models/ names no model"},
		{"GET", "/openai/v1/responses/", "GET /openai/v1/responses/ names no response"},
		{"DELETE", "/openai/v1/responses/", "DELETE /openai/v1/responses/ names no response"},
		{"POST", "/openai/v1/responses/", "POST /openai/v1/responses/ is not served"},
		{"DELETE", "/openai/v1/responses/resp_1/input_items", "DELETE /openai/v1/responses/resp_1/input_items is not served"},
	} {
		req, err := http.NewRequest(c.method, ts.URL+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct {
			Error struct {
				Message string  `json:"message"`
				Type    string  `json:"type"`
				Param   *string `json:"param"`
				Code    string  `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != http.StatusNotFound || e.Error.Code != "not_found" ||
			e.Error.Type != "invalid_request_error" || e.Error.Param != nil || !strings.Contains(e.Error.Message, c.says) {
			t.Errorf("%s %s: %d %s, want 404 not_found in OpenAI's shape saying %q", c.method, c.path, resp.StatusCode, body, c.says)
		}
	}
}
