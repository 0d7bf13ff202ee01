package test

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestPluginsCheckCLI runs `vigil plugins check` on a conforming plugin and
// on a broken one (the test plugin built to answer NaN): text and JSON
// output, and the exit status.
func TestPluginsCheckCLI(t *testing.T) {
	dir := t.TempDir()
	good := buildTestPlugin(t, "detector", dir, "good")
	cmd := exec.Command("go", "build", "-ldflags", "-X main.kind=detector -X main.fault=nan", "-o", dir+"/nan", "./plugins/testplugin")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}

	out, err := vigil(t, "plugins", "check", "-kind", "detector", good)
	if err != nil {
		t.Fatalf("check of a conforming plugin: %v\n%s", err, out)
	}
	for _, want := range []string{"PASS  detector/large-sample", "PASS  shutdown", "0 failed", "conforms to contract v1"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	out, err = vigil(t, "plugins", "check", "-format", "json", dir+"/nan")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("check of a broken plugin: exit %v, want 1\n%s", err, out)
	}
	var rep struct {
		OK      bool `json:"ok"`
		Results []struct {
			Name, Status, Reason string
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("json output: %v\n%s", err, out)
	}
	found := false
	for _, r := range rep.Results {
		if r.Name == "detector/identical/mean/numeric" {
			found = r.Status == "FAIL" && strings.Contains(r.Reason, "NaN")
		}
	}
	if rep.OK || !found {
		t.Fatalf("want ok false and a FAIL for the NaN statistic, got %s", out)
	}

	out, err = vigil(t, "plugins", "check", "-kind", "gpu", good)
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(out, `-kind: "gpu"`) {
		t.Fatalf("bad -kind: %v\n%s", err, out)
	}
}

// TestPluginsCheckEnv: -env gives the plugin process environment variables
// (as plugins.env does in the agent), for a plugin that reads a setting
// there, such as providerconf's api_key_env. The test plugin reads its
// fault from TESTPLUGIN_FAULT; with needs-key and no configuration its
// calls fail class auth, which the report then blames on the missing
// settings, and -config with an api_key makes it conform.
func TestPluginsCheckEnv(t *testing.T) {
	dir := t.TempDir()
	bin := buildTestPlugin(t, "provider", dir, "prov")
	out, err := vigil(t, "plugins", "check", "-env", "TESTPLUGIN_FAULT=needs-key", bin)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("check with -env TESTPLUGIN_FAULT=needs-key: exit %v, want 1\n%s", err, out)
	}
	if !strings.Contains(out, "auth: upstream HTTP 401: no API key configured; no configuration was given") {
		t.Fatalf("output does not show the auth failure and the hint:\n%s", out)
	}
	cfg := dir + "/cfg.json"
	if err := os.WriteFile(cfg, []byte(`{"api_key": "k"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := vigil(t, "plugins", "check", "-env", "TESTPLUGIN_FAULT=needs-key", "-config", cfg, bin); err != nil {
		t.Fatalf("check with the key configured: %v\n%s", err, out)
	}
	for _, bad := range []string{"NOEQUALS", "PLUGIN_PROTOCOL_VERSIONS=9"} {
		out, err := vigil(t, "plugins", "check", "-env", bad, bin)
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(out, "-env") {
			t.Errorf("-env %s: exit %v, want 2 naming -env\n%s", bad, err, out)
		}
	}
}
