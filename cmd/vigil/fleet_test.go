package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vigilml/vigil/agent/fleet"
)

// TestFleetStatsIncomplete: vigil fleet stats exited 0 when an alive node
// did not answer in time and said nothing of failed or left members. It
// still prints the answers that came, names the nodes that did not answer
// and those not asked, and exits 1; a complete answer exits 0.
func TestFleetStatsIncomplete(t *testing.T) {
	p50 := 12.5
	complete := fleet.FleetStats{Model: "llama", RelativeAccuracy: 0.02, Asked: 2, Nodes: 2, Requests: 100, P50Ms: &p50,
		Answered: []string{"n0", "n1"}, NotServing: []string{}, Missing: []string{}}
	partial := complete
	partial.Asked, partial.Nodes, partial.Answered = 3, 1, []string{"n0"}
	partial.Missing = []string{"n2"}
	partial.NotAsked = map[string]string{"n3": "failed", "n4": "left"}
	var answer fleet.FleetStats
	addr := jsonAgent(t, "/v1/fleet/models/llama/stats", func() any { return answer })
	for _, tc := range []struct {
		name     string
		st       fleet.FleetStats
		format   string
		code     int
		stdout   []string
		stderr   string
		noStdout []string
	}{
		{name: "complete", st: complete, format: "text", code: 0, stdout: []string{"Nodes:", "2 serving (n0, n1)", "12.5 ms"}, noStdout: []string{"Not asked", "No answer"}},
		{name: "incomplete", st: partial, format: "text", code: 1,
			stdout: []string{"1 serving (n0)", "12.5 ms", "No answer in time:", "n2", "Not asked:", "n3 (failed), n4 (left)"},
			stderr: "vigil fleet stats llama: incomplete: 1 of 3 alive nodes did not answer in time (n2)"},
		{name: "incomplete json", st: partial, format: "json", code: 1,
			stdout: []string{`"missing": [`, `"n3": "failed"`, `"asked": 3`},
			stderr: "vigil fleet stats llama: incomplete: 1 of 3 alive nodes did not answer in time (n2)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answer = tc.st
			var stdout, stderr bytes.Buffer
			code := run([]string{"fleet", "stats", "llama", "-http-addr", addr, "-format", tc.format}, &stdout, &stderr)
			wantRun(t, code, tc.code, stdout.String(), stderr.String(), tc.stdout, tc.noStdout)
			if tc.stderr == "" && stderr.Len() != 0 || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr = %q, want %q", stderr.String(), tc.stderr)
			}
		})
	}
}

// TestKeyringIncomplete: a keyring answer that did not reach every alive
// node (502 keyring_incomplete, the partial result in the body) printed
// only the error. It prints what the nodes that answered said, as a
// complete answer does, then the nodes' errors, how many did not answer
// and the members not asked, says why on stderr, and exits 2.
func TestKeyringIncomplete(t *testing.T) {
	const key = "l0a64WDoinJF67RzrHqy4BObFGPXeZ6Iar1plcaAOKA="
	listPartial := fleet.KeyringResult{Keys: map[string]int{key: 2}, PrimaryKeys: map[string]int{key: 2}, Nodes: 3, Responses: 2,
		NotAsked: map[string]string{"n3": "failed"}}
	const listMsg = "keyring list: incomplete: 1 of 3 alive nodes did not answer in time (serf does not say which; vigil members lists the alive ones); run it again once every alive node answers"
	installPartial := fleet.KeyringResult{Keys: map[string]int{}, PrimaryKeys: map[string]int{}, Nodes: 4, Responses: 3, Errors: 1,
		Messages: map[string]string{"n2": "boom"}}
	const installMsg = "keyring install: incomplete: 1 of 4 nodes reported errors (n2: boom); 1 of 4 alive nodes did not answer in time (serf does not say which; vigil members lists the alive ones); run it again once every alive node answers"
	// The agent's 502 answer.
	incomplete := func(msg string, res fleet.KeyringResult) any {
		return map[string]any{"error": map[string]string{"code": "keyring_incomplete", "message": msg}, "result": res}
	}
	var status int
	var answer any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/fleet/keyring" {
			http.NotFound(w, r)
			return
		}
		if s, ok := answer.(string); ok {
			w.WriteHeader(status)
			w.Write([]byte(s))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(answer)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, tc := range []struct {
		name     string
		args     []string
		status   int
		answer   any
		code     int
		stdout   []string
		noStdout []string
		stderr   string
	}{
		{name: "list complete", args: []string{"list"}, status: 200,
			answer: fleet.KeyringResult{Keys: map[string]int{key: 3}, PrimaryKeys: map[string]int{key: 3}, Nodes: 3, Responses: 3},
			code:   0, stdout: []string{"KEY", "PRIMARY ON", key + "  3/3    3"}, noStdout: []string{"no answer", "errors", "not asked"}},
		{name: "list incomplete", args: []string{"list"}, status: http.StatusBadGateway, answer: incomplete(listMsg, listPartial),
			code: 2, stdout: []string{"KEY", "PRIMARY ON", key + "  2/3    2",
				"\nno answer in time: 1 of 3 alive nodes (serf does not say which; vigil members lists the alive ones)\n",
				"\nnot asked: n3 (failed): these nodes keep their old keys"},
			noStdout: []string{"errors"},
			stderr:   "vigil " + listMsg + "\n"},
		{name: "install incomplete", args: []string{"install", key}, status: http.StatusBadGateway, answer: incomplete(installMsg, installPartial),
			code: 2, stdout: []string{"install: done on 2 of 4 nodes\nerrors: 1 of 4 nodes (n2: boom)\nno answer in time: 1 of 4 alive nodes"},
			stderr: "vigil " + installMsg + "\n"},
		{name: "list incomplete json", args: []string{"list", "-format", "json"}, status: http.StatusBadGateway, answer: incomplete(listMsg, listPartial),
			code: 2, stdout: []string{`"responses": 2`, `"nodes": 3`, `"n3": "failed"`}, noStdout: []string{"keyring_incomplete"},
			stderr: "vigil " + listMsg + "\n"},
		{name: "no node asked", args: []string{"list"}, status: http.StatusBadGateway,
			answer: incomplete("keyring list: boom", fleet.KeyringResult{}),
			code:   2, noStdout: []string{"KEY", "done"},
			stderr: "vigil keyring list: agent answered 502 keyring_incomplete: keyring list: boom\n"},
		{name: "not the agent", args: []string{"list"}, status: http.StatusBadGateway, answer: "bad gateway",
			code: 2, noStdout: []string{"KEY"}, stderr: "vigil keyring list: agent answered 502 unknown: bad gateway (not a Vigil API error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, answer = tc.status, tc.answer
			var stdout, stderr bytes.Buffer
			code := run(append(append([]string{"keyring"}, tc.args...), "-http-addr", addr), &stdout, &stderr)
			wantRun(t, code, tc.code, stdout.String(), stderr.String(), tc.stdout, tc.noStdout)
			if tc.stderr == "" && stderr.Len() != 0 || !strings.HasPrefix(stderr.String(), tc.stderr) {
				t.Errorf("stderr = %q, want %q", stderr.String(), tc.stderr)
			}
		})
	}
}

// wantRun checks a command's exit status and that its standard output
// holds every string of has and none of hasNot.
func wantRun(t *testing.T, code, wantCode int, stdout, stderr string, has, hasNot []string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("exit %d, want %d; stderr %q", code, wantCode, stderr)
	}
	for _, w := range has {
		if !strings.Contains(stdout, w) {
			t.Errorf("stdout lacks %q:\n%s", w, stdout)
		}
	}
	for _, w := range hasNot {
		if strings.Contains(stdout, w) {
			t.Errorf("stdout has %q:\n%s", w, stdout)
		}
	}
}
