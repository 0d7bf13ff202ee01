package test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// devAgent runs `vigil agent -dev` from a copy of the binary in its own
// directory, with the named provider plugins (built from this tree) in the
// plugins directory beside it, which dev mode trusts.
func devAgent(t *testing.T, plugins ...string) *agentProc {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(filepath.Join(bin, "plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile := func(from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(vigilBin, filepath.Join(bin, "vigil"))
	for _, p := range plugins {
		copyFile(filepath.Join(providerPlugins(t), p), filepath.Join(bin, "plugins", p))
	}
	// plugins.dirs names an empty directory, so that plugins a vigil
	// package installed on this host (/usr/lib/vigil/plugins) are not
	// found: the test's plugins are only those beside its binary.
	none := filepath.Join(dir, "no-system-plugins")
	if err := os.Mkdir(none, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(cfg, []byte("plugins:\n  dirs: ["+none+"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return startAgentBin(t, filepath.Join(bin, "vigil"), nil, "-dev", "-config", cfg, "-data-dir", filepath.Join(dir, "data"), "-http-addr", "127.0.0.1:0")
}

// gatewayState is the gateway subsystem's state and reason in /v1/status.
func gatewayState(t *testing.T, base string) (state, reason string) {
	t.Helper()
	code, raw := get(t, base+"/v1/status", "")
	var body map[string]any
	if err := json.Unmarshal(raw, &body); code != 200 || err != nil {
		t.Fatalf("/v1/status = %d %s", code, raw)
	}
	subs, _ := body["subsystems"].([]any)
	for _, s := range subs {
		m, _ := s.(map[string]any)
		if m["name"] == "gateway" {
			state, _ = m["state"].(string)
			reason, _ = m["reason"].(string)
			return state, reason
		}
	}
	t.Fatalf("no gateway subsystem in /v1/status: %v", body)
	return "", ""
}

// Dev mode serves the hashembed plugin's lexical embeddings as the alias
// "hashembed", so that /openai/v1/embeddings answers out of the box.
func TestDevAgentServesEmbeddings(t *testing.T) {
	a := devAgent(t, "hashembed")
	base := "http://" + a.addr
	waitHealthy(t, base, "")
	if state, reason := gatewayState(t, base); state != "running" || reason != "1 model alias over 1 provider" {
		t.Errorf("gateway = %s (%s), want running", state, reason)
	}
	code, body := postJSON(t, base+"/openai/v1/embeddings", map[string]any{"model": "hashembed", "input": []string{"hello world", "hello there"}})
	if code != 200 {
		t.Fatalf("embeddings = %d %v", code, body)
	}
	data, _ := body["data"].([]any)
	if len(data) != 2 || body["model"] != "hashembed-v1" {
		t.Fatalf("embeddings answer: %v", body)
	}
	for i, d := range data {
		vec, _ := d.(map[string]any)["embedding"].([]any)
		var sum float64
		for _, x := range vec {
			sum += x.(float64) * x.(float64)
		}
		if len(vec) != 256 || math.Abs(sum-1) > 1e-4 {
			t.Errorf("embedding %d: %d dimensions, squared norm %v; want 256, 1", i, len(vec), sum)
		}
	}
}

// Without the hashembed plugin installed the dev agent still starts, and
// its gateway says why the alias cannot be served instead of "running".
func TestDevAgentWithoutHashembed(t *testing.T) {
	a := devAgent(t)
	base := "http://" + a.addr
	waitHealthy(t, base, "")
	var state, reason string
	waitFor(t, func() bool {
		state, reason = gatewayState(t, base)
		return state == "degraded"
	}, "the gateway to report its provider down")
	if !strings.Contains(reason, "dev-hashembed") || !strings.Contains(reason, "not installed") {
		t.Errorf("gateway reason = %q", reason)
	}
	code, body := postJSON(t, base+"/openai/v1/embeddings", map[string]any{"model": "hashembed", "input": "hello"})
	if code < 500 || !strings.Contains(body["error"].(map[string]any)["message"].(string), "not installed") {
		t.Errorf("embeddings without the plugin = %d %v", code, body)
	}
}
