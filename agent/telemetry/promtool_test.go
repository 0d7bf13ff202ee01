package telemetry

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// promtoolCheck runs `promtool check metrics` on text and returns its
// findings, one per line. promtool comes from Debian's prometheus package;
// its absence is a failure, not a skip, so a CI without it cannot pass
// silently.
func promtoolCheck(t *testing.T, text string) (findings []string, exitCode int) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not on PATH (apt-get install --no-install-recommends prometheus): %v", err)
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		exitCode = ee.ExitCode()
	case err != nil:
		t.Fatalf("promtool: %v", err)
	}
	for _, l := range strings.Split(out.String(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			findings = append(findings, l)
		}
	}
	return findings, exitCode
}

// dcgmCamelCase is the one finding DCGM compatibility cannot avoid:
// dcgm-exporter's own label modelName is camelCase, and dashboards built for
// it select on that label. Nothing else is tolerated.
var dcgmCamelCase = regexp.MustCompile(`^DCGM_FI_DEV_[A-Z_]+ label names should be written in 'snake_case' not 'camelCase'$`)

func TestPromtoolCheckMetrics(t *testing.T) {
	pidFile := t.TempDir() + "/self.pid"
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		dcgm bool
	}{
		{"vigil names only", false},
		{"with DCGM names", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.GPU.DCGMCompatibleNames = tc.dcgm
			cfg.Host.Processes = []ProcessConfig{{Name: "self", PIDFile: pidFile}}
			m := newMockNVML(8, fixedNow)
			tel := newTel(t, cfg, withNVML(m), WithHostname("node-a"))
			tickAll(t, tel)
			tickAll(t, tel) // second host tick: CPU utilisation from deltas
			text := scrape(t, tel)
			for _, want := range []string{"vigil_gpu_info{", "vigil_host_memory_total_bytes ", "vigil_model_server_up{", "vigil_collector_up{"} {
				if !strings.Contains(text, want) {
					t.Fatalf("scrape lacks %q", want)
				}
			}
			if got := strings.Count(text, "\nvigil_gpu_info{"); got != 8 {
				t.Fatalf("vigil_gpu_info series = %d, want 8", got)
			}
			if tc.dcgm && !strings.Contains(text, "\nDCGM_FI_DEV_FB_USED{") {
				t.Fatal("DCGM names missing")
			}
			findings, code := promtoolCheck(t, text)
			var bad []string
			for _, f := range findings {
				if tc.dcgm && dcgmCamelCase.MatchString(f) {
					continue
				}
				bad = append(bad, f)
			}
			if len(bad) > 0 {
				t.Errorf("promtool check metrics (exit %d) found:\n%s", code, strings.Join(bad, "\n"))
			}
			if !tc.dcgm && code != 0 {
				t.Errorf("promtool exit code %d, want 0", code)
			}
		})
	}
}

// TestPromtoolCatchesProblems shows the check above can fail.
func TestPromtoolCatchesProblems(t *testing.T) {
	bad := "# HELP vigil_bad_counter a counter without _total\n# TYPE vigil_bad_counter counter\nvigil_bad_counter 1\n"
	findings, code := promtoolCheck(t, bad)
	if code == 0 || len(findings) == 0 {
		t.Fatalf("promtool accepted a counter without _total: exit %d %v", code, findings)
	}
}
