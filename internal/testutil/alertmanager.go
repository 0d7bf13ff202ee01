// Package testutil holds helpers that tests in several packages share:
// starting real third-party servers from their Debian packages.
package testutil

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Alertmanager is a running Prometheus Alertmanager started by
// StartAlertmanager; it is stopped when the test ends.
type Alertmanager struct {
	// URL is its base URL, http://127.0.0.1:PORT; alerts go to
	// URL + "/api/v2/alerts".
	URL string
	log *SyncBuffer
}

// AMAlert is one alert as Alertmanager's GET /api/v2/alerts lists it
// (the gettableAlert schema, the fields tests read).
type AMAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Fingerprint string            `json:"fingerprint"`
	Status      struct {
		State string `json:"state"` // active, suppressed, unprocessed
	} `json:"status"`
}

// AlertmanagerBinary is the name Debian's prometheus-alertmanager package
// installs the server under.
const AlertmanagerBinary = "prometheus-alertmanager"

// StartAlertmanager starts a real Alertmanager (Debian's
// prometheus-alertmanager) on a free loopback port, with a temporary
// configuration (one route to a receiver that sends nothing) and storage
// directory, clustering off. It waits until /-/ready answers and stops the
// process when the test ends, logging its output if the test failed.
func StartAlertmanager(t testing.TB) *Alertmanager {
	t.Helper()
	bin, err := exec.LookPath(AlertmanagerBinary)
	if err != nil {
		t.Fatalf("%s not found: install Debian's prometheus-alertmanager package (`make test-deps` does it as root)", AlertmanagerBinary)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte(`route:
  receiver: blackhole
  group_wait: 1s
  group_interval: 1s
receivers:
  - name: blackhole
`), 0o600); err != nil {
		t.Fatal(err)
	}
	// Take a free port, then hand it over. Another process could take it
	// in between; Alertmanager then exits and the test fails clearly.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	am := &Alertmanager{URL: "http://" + addr, log: &SyncBuffer{}}
	cmd := exec.Command(bin,
		"--config.file="+cfg,
		"--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--cluster.listen-address=",
		"--log.level=info",
	)
	cmd.Stdout, cmd.Stderr = am.log, am.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("alertmanager output:\n%s", am.log)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("alertmanager exited before it was ready: %v\n%s", err, am.log)
		default:
		}
		if resp, err := http.Get(am.URL + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return am
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("alertmanager not ready within 15s:\n%s", am.log)
	return nil
}

// Alerts returns the alerts Alertmanager holds now: GET /api/v2/alerts,
// which lists active (not yet ended) alerts only.
func (am *Alertmanager) Alerts(t testing.TB) []AMAlert {
	t.Helper()
	resp, err := http.Get(am.URL + "/api/v2/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v2/alerts: %s: %s", resp.Status, body)
	}
	var out []AMAlert
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("GET /api/v2/alerts: %v: %s", err, body)
	}
	return out
}

// WaitAlerts polls Alerts until cond holds, for up to within; it fails the
// test with the last answer otherwise.
func (am *Alertmanager) WaitAlerts(t testing.TB, within time.Duration, what string, cond func([]AMAlert) bool) []AMAlert {
	t.Helper()
	deadline := time.Now().Add(within)
	var last []AMAlert
	for {
		last = am.Alerts(t)
		if cond(last) {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("alertmanager: timed out after %s waiting for %s; it holds %s", within, what, describe(last))
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func describe(as []AMAlert) string {
	if len(as) == 0 {
		return "no alerts"
	}
	var parts []string
	for _, a := range as {
		parts = append(parts, fmt.Sprintf("%v (%s, ends %s)", a.Labels, a.Status.State, a.EndsAt.Format(time.RFC3339)))
	}
	return strings.Join(parts, "; ")
}

// Find returns the alert whose labels include every one of match.
func Find(as []AMAlert, match map[string]string) *AMAlert {
	for i := range as {
		ok := true
		for k, v := range match {
			if as[i].Labels[k] != v {
				ok = false
				break
			}
		}
		if ok {
			return &as[i]
		}
	}
	return nil
}
