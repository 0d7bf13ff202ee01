package gateway

import (
	"testing"

	"github.com/vigilml/vigil/sdk"
)

// TestExhaustedNoRetryHint: when every target refused for a reason a
// retry does not change (auth, quota_exhausted, not_found), the 502
// carries x-should-retry: false, since the OpenAI SDKs otherwise retry
// every 5xx (twice by default) against an upstream that will refuse
// again; when some target failed for a passing reason, or the last class
// is itself passing, the SDK may retry.
func TestExhaustedNoRetryHint(t *testing.T) {
	for _, tc := range []struct {
		name    string
		alias   string
		a, b    []error // scripted failures for pa's and pb's model
		code    string
		noRetry bool
	}{
		{"auth", "single", []error{sdk.Errorf(sdk.Auth, "bad key")}, nil, "auth", true},
		{"quota", "single", []error{sdk.Errorf(sdk.QuotaExhausted, "spent")}, nil, "quota_exhausted", true},
		{"not found", "single", []error{sdk.Errorf(sdk.NotFound, "no model")}, nil, "not_found", true},
		{"both refuse", "chain", []error{sdk.Errorf(sdk.Auth, "bad key")}, []error{sdk.Errorf(sdk.NotFound, "no model")}, "not_found", true},
		{"internal", "single", []error{sdk.Errorf(sdk.Internal, "bug"), sdk.Errorf(sdk.Internal, "bug"), sdk.Errorf(sdk.Internal, "bug")}, nil, "internal", false},
		{"first overloaded", "chain", []error{overloaded(), overloaded(), overloaded()}, []error{sdk.Errorf(sdk.Auth, "bad key")}, "auth", false},
	} {
		h := newHarness(t, testCfg())
		ma, mb := "solo", ""
		if tc.alias == "chain" {
			ma, mb = "m1", "m2"
		}
		h.a.fail(ma, tc.a...)
		if mb != "" {
			h.b.fail(mb, tc.b...)
		}
		w := h.do(t, "/chat", chatBody(tc.alias, ""))
		e := errBody(t, w)
		got := w.Header().Get("x-should-retry") == "false"
		if w.Code != 502 || e.Code != tc.code || got != tc.noRetry {
			t.Errorf("%s: %d %s x-should-retry %q, want 502 %s no-retry %v", tc.name, w.Code, e.Code, w.Header().Get("x-should-retry"), tc.code, tc.noRetry)
		}
	}
}
