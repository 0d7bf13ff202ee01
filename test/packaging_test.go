package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// These tests check what the packages ship without installing anything;
// packaging/test-install.sh (make test-package, as root) installs the .deb.

// TestShippedConfigValidates runs `vigil config validate` on the conffile the
// packages install as /etc/vigil/vigil.yaml: the agent rejects unknown keys,
// so a key documented there but not (yet) in the code would stop the service.
func TestShippedConfigValidates(t *testing.T) {
	out, err := exec.Command(vigilBin, "config", "validate", "../packaging/vigil.yaml").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Configuration is valid") {
		t.Fatalf("packaging/vigil.yaml does not validate: %v\n%s", err, out)
	}
	// The shipped defaults keep the API on loopback.
	b, err := os.ReadFile("../packaging/vigil.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^  addr: 127\.0\.0\.1:`).Match(b) {
		t.Errorf("packaging/vigil.yaml does not set api.addr to loopback")
	}
}

var exposureLine = regexp.MustCompile(`Overall exposure level for vigil\.service: ([0-9.]+)`)

// TestSystemdUnit runs systemd-analyze verify and security on
// systemd/vigil.service (ExecStart pointed at the freshly built binary, since
// verify checks that the command exists) and holds the exposure at 2.0 or
// lower.
func TestSystemdUnit(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze not found: install Debian's systemd package (`make test-deps` does it as root); no running systemd is needed")
	}
	unit, err := os.ReadFile("../systemd/vigil.service")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(unit, []byte("\nExecStart=/usr/bin/vigil agent -config /etc/vigil/vigil.yaml\n")) {
		t.Fatal("unexpected ExecStart in systemd/vigil.service; update this test with it")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "vigil.service")
	writeFile(t, path, strings.Replace(string(unit), "ExecStart=/usr/bin/vigil ", "ExecStart="+vigilBin+" ", 1))

	if out, err := exec.Command(sa, "verify", path).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, _ := exec.Command(sa, "security", "--offline=yes", path).CombinedOutput()
	m := exposureLine.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure figure in systemd-analyze security output:\n%s", out)
	}
	exposure, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("systemd-analyze security --offline=yes: exposure %.1f", exposure)
	if exposure > 2.0 {
		t.Errorf("exposure %.1f > 2.0:\n%s", exposure, out)
	}
	for _, want := range []string{"Type=notify", "WatchdogSec=", "NotifyAccess=main", "ExecReload=/bin/kill -HUP $MAINPID", "User=vigil", "StateDirectory=vigil"} {
		if !bytes.Contains(unit, []byte("\n"+want)) {
			t.Errorf("unit lacks %s", want)
		}
	}
}

// TestDashboardQueries checks that every PromQL expression in the shipped
// Grafana dashboard parses (promtool check rules, with Grafana's variables
// replaced) and reads only metrics the agent exports.
func TestDashboardQueries(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: install Debian's prometheus package (`make test-deps` does it as root)")
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	b, err := os.ReadFile("../packaging/grafana/vigil-agent.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{
		"vigil_build_info": true, "vigil_http_requests_total": true,
		"vigil_http_request_duration_seconds_bucket": true,
		"process_resident_memory_bytes":              true, "go_goroutines": true,
	}
	metricName := regexp.MustCompile(`\b((?:vigil|process|go)_[a-z_]+)\b`)
	var rules strings.Builder
	rules.WriteString("groups:\n- name: dashboard\n  rules:\n")
	n := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			expr := strings.NewReplacer("$__rate_interval", "5m", "$job", ".*", "$instance", ".*").Replace(tg.Expr)
			for _, m := range metricName.FindAllString(expr, -1) {
				if !exported[m] {
					t.Errorf("panel %q reads %s, which the agent does not export", p.Title, m)
				}
			}
			q, _ := json.Marshal(expr)
			fmt.Fprintf(&rules, "  - record: dashboard:q%d\n    expr: %s\n", n, q)
			n++
		}
	}
	if n < 5 {
		t.Fatalf("dashboard has only %d queries", n)
	}
	path := filepath.Join(t.TempDir(), "rules.yaml")
	writeFile(t, path, rules.String())
	if out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules on the dashboard's queries: %v\n%s", err, out)
	}
}

// TestPackageVersionsSort: the package versions `make package` derives
// from git describe sort, by dpkg's rules, in the order the builds were
// made: a build after a tag is newer than the tag (a package manager
// would otherwise call it a downgrade), and older than the next
// pre-release and release. The changelog a package installs starts with
// the .deb's own version.
func TestPackageVersionsSort(t *testing.T) {
	dpkg, err := exec.LookPath("dpkg")
	if err != nil {
		t.Fatal("dpkg not found: this test needs Debian's dpkg")
	}
	describe := []string{
		"0.1.0-dev", // before the first tag
		"v0.2.0",
		"v0.2.0-3-gabc1234",
		"v0.2.0-3-gabc1234-dirty",
		"v0.2.0-12-g0123456",
		"v0.3.0-rc.1",
		"v0.3.0-rc.1-2-gdeadbee",
		"v0.3.0-rc.2",
		"v0.3.0",
	}
	line := regexp.MustCompile(`^PKG_VERSION=(\S+) DEB_VERSION=(\S+)$`)
	var debs []string
	for _, v := range describe {
		out, err := exec.Command("make", "-s", "-C", "..", "pkg-version", "VERSION="+v).CombinedOutput()
		m := line.FindStringSubmatch(strings.TrimSpace(string(out)))
		if err != nil || m == nil {
			t.Fatalf("make pkg-version VERSION=%s: %v\n%s", v, err, out)
		}
		debs = append(debs, m[2])
		// The changelog starts with that version.
		cl, err := exec.Command("sh", "../packaging/changelog.sh", m[2]).Output()
		if err != nil || !strings.HasPrefix(string(cl), "vigil ("+m[2]+") unstable; urgency=medium\n") {
			t.Errorf("changelog for %s starts %q (%v)", m[2], firstLine(cl), err)
		}
	}
	for i := 1; i < len(debs); i++ {
		if err := exec.Command(dpkg, "--compare-versions", debs[i-1], "lt", debs[i]).Run(); err != nil {
			t.Errorf("dpkg does not sort %s (from %s) before %s (from %s)", debs[i-1], describe[i-1], debs[i], describe[i])
		}
	}
	// A build of a changed tree at a tag is newer than the tag.
	out, err := exec.Command("make", "-s", "-C", "..", "pkg-version", "VERSION=v0.2.0-dirty").CombinedOutput()
	if m := line.FindStringSubmatch(strings.TrimSpace(string(out))); err != nil || m == nil ||
		exec.Command(dpkg, "--compare-versions", "0.2.0", "lt", m[2]).Run() != nil {
		t.Errorf("v0.2.0-dirty gives %q (%v); want a version after 0.2.0", out, err)
	}
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return s
}
