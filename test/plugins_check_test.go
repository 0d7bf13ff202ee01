package test

import (
	"encoding/json"
	"errors"
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
