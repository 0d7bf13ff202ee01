package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestModelByID(t *testing.T) {
	h := newHarness(t, testCfg())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /openai/v1/models/{model...}", h.g.HandleModel)
	for _, c := range []struct {
		path   string
		status int
		code   string
		says   string
	}{
		{"/openai/v1/models/chain", http.StatusOK, "", ""},
		{"/openai/v1/models/nope", http.StatusNotFound, "model_not_found", `the model "nope" is not an alias`},
		// A trailing slash names no model: 404 as for an unknown route,
		// not 400 as for a request body without a model.
		{"/openai/v1/models/", http.StatusNotFound, "not_found", "GET /openai/v1/models/ names no model: GET /openai/v1/models lists"},
	} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", c.path, nil))
		if w.Code != c.status {
			t.Errorf("GET %s: %d %s, want %d", c.path, w.Code, w.Body, c.status)
			continue
		}
		if c.status == http.StatusOK {
			var m struct{ ID, Object string }
			if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil || m.ID != "chain" || m.Object != "model" {
				t.Errorf("GET %s: %v %s", c.path, err, w.Body)
			}
			continue
		}
		if e := errBody(t, w); e.Code != c.code || e.Type != "invalid_request_error" || !strings.Contains(e.Message, c.says) {
			t.Errorf("GET %s: %s, want code %s saying %s", c.path, w.Body, c.code, c.says)
		}
	}
}
