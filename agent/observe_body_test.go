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
