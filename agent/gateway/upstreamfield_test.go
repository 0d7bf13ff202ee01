package gateway

import (
	"testing"

	"github.com/vigilml/vigil/sdk"
)

// TestUpstreamFieldErrorNamesField: a provider's field error whose message
// does not name the field (hashembed's "must be from 1 to 8192, got
// 100000" for dimensions) is a 400 whose message names it, not only its
// param; a message that names the field already is not prefixed twice.
func TestUpstreamFieldErrorNamesField(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{sdk.FieldErrorf("dimensions", "must be from 1 to 8192, got 100000"), "upstream pa/solo rejected the request: dimensions: must be from 1 to 8192, got 100000"},
		{sdk.FieldErrorf("temperature", "temperature 3 is above 2"), "upstream pa/solo rejected the request: temperature 3 is above 2"},
		{sdk.Errorf(sdk.InvalidRequest, "the upstream said no"), "upstream pa/solo rejected the request: the upstream said no"},
	} {
		h := newHarness(t, testCfg())
		h.a.fail("solo", tc.err)
		w := h.do(t, "/chat", chatBody("single", ""))
		if e := errBody(t, w); w.Code != 400 || e.Code != "invalid_request" || e.Message != tc.want {
			t.Errorf("%v: %d %q, want 400 %q", tc.err, w.Code, e.Message, tc.want)
		}
	}
}
