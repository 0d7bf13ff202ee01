package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vigilml/vigil/agent"
)

// TestStatusAPILine checks that the API line says plainly whether TLS is on
// and, when no token is needed, whether the API is reachable from other
// hosts (api.insecure_allow_remote) instead of always claiming loopback;
// and that it gives the addresses in the form -http-addr takes.
func TestStatusAPILine(t *testing.T) {
	for _, tc := range []struct {
		api  agent.APIStatus
		want string
	}{
		{agent.APIStatus{Addresses: []string{"tcp://127.0.0.1:7070"}}, "API:       http://127.0.0.1:7070 (plain HTTP, no auth: loopback only)"},
		{agent.APIStatus{Addresses: []string{"unix:///run/vigil/api.sock"}}, "(plain HTTP, no auth: loopback only)"},
		{agent.APIStatus{Addresses: []string{"tcp://[::]:7070"}}, "(plain HTTP, NO AUTH, reachable from other hosts)"},
		// The addresses as -http-addr takes them: https:// with TLS (the
		// unix socket stays plain).
		{agent.APIStatus{Addresses: []string{"tcp://10.0.0.17:7070", "unix:///run/vigil/api.sock"}, TLS: true, Auth: true}, "API:       https://10.0.0.17:7070, unix:///run/vigil/api.sock (TLS, bearer tokens)"},
	} {
		var b bytes.Buffer
		printStatus(&b, agent.Status{API: tc.api}, "ok", nil)
		if !strings.Contains(b.String(), tc.want) {
			t.Errorf("%v: output lacks %q:\n%s", tc.api, tc.want, b.String())
		}
	}
}
