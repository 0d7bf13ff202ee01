package forward

import (
	"bytes"
	"errors"
	"io"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TestPromtoolCheckMetrics scrapes a forwarder's metrics after some
// traffic and runs `promtool check metrics` (Debian's prometheus package)
// on them. A missing promtool is a failure, not a skip.
func TestPromtoolCheckMetrics(t *testing.T) {
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not on PATH (apt-get install --no-install-recommends prometheus, or make test-deps): %v", err)
	}
	st := openStore(t, t.TempDir())
	rc := newReceiver(t, false)
	appendSeries(t, st, "0", time.Now(), 10)
	other := testRemoteWrite(rc.srv.URL)
	other.Name = "second"
	r := startForwarder(t, st, nil, testRemoteWrite(rc.srv.URL), other)
	waitFor(t, 5*time.Second, "both upstreams to send", func() bool {
		s := r.f.Status()
		return s[0].SamplesSent == 10 && s[1].SamplesSent == 10
	})

	srv := httptest.NewServer(promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	for _, name := range []string{"vigil_forward_samples_sent_total", "vigil_forward_lag_seconds", "vigil_forward_retries_total",
		"vigil_forward_failures_total", "vigil_forward_dropped_samples_total", "vigil_forward_batch_duration_seconds", "vigil_forward_up"} {
		if !strings.Contains(string(text), "# TYPE "+name+" ") {
			t.Errorf("scrape lacks %s", name)
		}
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	} else if err != nil {
		t.Fatal(err)
	}
}
