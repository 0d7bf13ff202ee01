package agent

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vigilml/vigil/agent/api"
)

// TestReadBatchContentEncoding: an observation or label batch sent
// compressed is refused with 415 naming the coding (not "invalid JSON at
// byte 0"); identity is read as is.
func TestReadBatchContentEncoding(t *testing.T) {
	for _, tc := range []struct {
		encoding string
		status   int
	}{{"", 0}, {"identity", 0}, {"gzip", 415}, {"deflate", 415}} {
		r := httptest.NewRequest("POST", "/v1/observations", strings.NewReader(`[{"model": "m"}]`))
		r.Header.Set("Content-Type", "application/json")
		if tc.encoding != "" {
			r.Header.Set("Content-Encoding", tc.encoding)
		}
		body, _, release, err := readBatch(r)
		var e *api.Error
		switch {
		case tc.status == 0 && (err != nil || string(body) != `[{"model": "m"}]`):
			t.Errorf("%q: %q %v, want the body", tc.encoding, body, err)
		case tc.status != 0 && (!errors.As(err, &e) || e.Status != tc.status || !strings.Contains(e.Message, tc.encoding)):
			t.Errorf("%q: %v, want %d naming the coding", tc.encoding, err, tc.status)
		}
		if release != nil {
			release()
		}
	}
}

// TestTooLargeCountedAsRejected: a batch over api.max_body_bytes counts in
// vigil_observe_rejected_requests_total{reason="invalid"} whether its
// Content-Length gave it away before the body was read or the body was
// found too large while it was read (no Content-Length).
func TestTooLargeCountedAsRejected(t *testing.T) {
	a, cfg, _ := newTestAgent(t)
	limit := int64(cfg.Config.API.MaxBodyBytes)
	rejected := func() float64 {
		mfs, err := a.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "vigil_observe_rejected_requests_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "reason" && l.GetValue() == "invalid" {
						return m.GetCounter().GetValue()
					}
				}
			}
		}
		return 0
	}
	for i, tc := range []struct {
		path     string
		declared bool
	}{{"/v1/observations", true}, {"/v1/labels", true}, {"/v1/observations", false}} {
		body := strings.Repeat(" ", int(limit)+1)
		r := httptest.NewRequest("POST", tc.path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if !tc.declared {
			r.ContentLength = -1
		}
		w := httptest.NewRecorder()
		a.API().ServeHTTP(w, r)
		if w.Code != 413 || !strings.Contains(w.Body.String(), "payload_too_large") {
			t.Fatalf("%s (Content-Length sent: %v): %d %s, want 413", tc.path, tc.declared, w.Code, w.Body)
		}
		if got := rejected(); got != float64(i+1) {
			t.Errorf("%s (Content-Length sent: %v): rejected{reason=invalid} = %v, want %d", tc.path, tc.declared, got, i+1)
		}
	}
}
