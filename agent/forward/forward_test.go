package forward

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/pem"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilml/vigil/agent/store"
)

func TestSendsEverySampleWithProtocolDetails(t *testing.T) {
	st := openStore(t, t.TempDir())
	now := time.Now().Truncate(time.Millisecond)
	samples := []store.Sample{
		// Upper-case label names sort before "__name__".
		{Name: "gpu_temp", Labels: store.Labels{{Name: "Zone", Value: "a"}, {Name: "gpu", Value: "0"}}, Time: now, Value: 71.5},
		// An empty label value is absent in Prometheus: not sent.
		{Name: "gpu_temp", Labels: store.Labels{{Name: "gpu", Value: "1"}, {Name: "mig", Value: ""}}, Time: now, Value: math.Inf(1)},
		{Name: "up", Time: now.Add(time.Millisecond), Value: 1},
		{Name: "gpu_temp", Labels: store.Labels{{Name: "Zone", Value: "a"}, {Name: "gpu", Value: "0"}}, Time: now.Add(2 * time.Millisecond), Value: 72},
		// Names Prometheus refuses are dropped, not sent.
		{Name: "bad-name", Time: now, Value: 1},
		{Name: "ok_name", Labels: store.Labels{{Name: "bad.label", Value: "x"}}, Time: now, Value: 1},
	}
	if err := st.Append(context.Background(), samples); err != nil {
		t.Fatal(err)
	}
	rc := newReceiver(t, false)
	r := startForwarder(t, st, nil, testRemoteWrite(rc.srv.URL+"/api/v1/write"))
	waitFor(t, 5*time.Second, "4 samples at the receiver", func() bool { d, _ := rc.accepted(); return d == 4 })
	waitFor(t, 5*time.Second, "state idle", func() bool { return r.f.Status()[0].State == StateIdle })

	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests, want 1", len(reqs))
	}
	h := reqs[0].header
	for k, want := range map[string]string{
		"Content-Encoding":                  "snappy",
		"Content-Type":                      "application/x-protobuf",
		"X-Prometheus-Remote-Write-Version": "0.1.0",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if ua := h.Get("User-Agent"); !strings.HasPrefix(ua, "vigil/") {
		t.Errorf("User-Agent = %q, want vigil/<version>", ua)
	}
	got := map[string][]rwSample{}
	for _, s := range reqs[0].series {
		if !slices.IsSortedFunc(s.labels, cmpLabel) {
			t.Errorf("labels not sorted: %v", s.labels)
		}
		if s.name() == "" {
			t.Errorf("series without __name__: %v", s.labels)
		}
		got[seriesString(s.labels)] = s.samples
	}
	want := map[string][]rwSample{
		"Zone=a,__name__=gpu_temp,gpu=0": {{now.UnixMilli(), 71.5}, {now.UnixMilli() + 2, 72}},
		"__name__=gpu_temp,gpu=1":        {{now.UnixMilli(), math.Inf(1)}},
		"__name__=up":                    {{now.UnixMilli() + 1, 1}},
	}
	if len(got) != len(want) {
		t.Errorf("series: got %v, want %v", got, want)
	}
	for k, w := range want {
		if !slices.Equal(got[k], w) {
			t.Errorf("series %s: got %v, want %v", k, got[k], w)
		}
	}

	// Cursor saved past everything; metrics and status agree.
	c, ok, err := st.LoadCursor("forward/test")
	if err != nil || !ok {
		t.Fatalf("LoadCursor: %v %v", ok, err)
	}
	if rest, _, _ := st.ReadFrom(c, 10); len(rest) != 0 {
		t.Errorf("cursor not at the end: %d samples after it", len(rest))
	}
	s := r.f.Status()[0]
	if s.SamplesSent != 4 || s.SamplesDropped["invalid"] != 2 || !s.Up || s.LagSeconds != 0 || s.PendingSamples == nil || *s.PendingSamples != 0 {
		t.Errorf("status = %+v (pending %v)", s, s.PendingSamples)
	}
	for _, m := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"vigil_forward_samples_sent_total", []string{"test"}, 4},
		{"vigil_forward_dropped_samples_total", []string{"test", "invalid"}, 2},
		{"vigil_forward_dropped_samples_total", []string{"test", "rejected"}, 0},
		{"vigil_forward_dropped_samples_total", []string{"test", "evicted"}, 0},
		{"vigil_forward_up", []string{"test"}, 1},
		{"vigil_forward_lag_seconds", []string{"test"}, 0},
		{"vigil_forward_retries_total", []string{"test", "http_5xx"}, 0},
		{"vigil_forward_batch_duration_seconds", []string{"test"}, 1},
	} {
		if got := r.metric(t, m.name, m.labels...); got != m.want {
			t.Errorf("%s%v = %v, want %v", m.name, m.labels, got, m.want)
		}
	}
}

func TestBatchLimits(t *testing.T) {
	t.Run("samples", func(t *testing.T) {
		st := openStore(t, t.TempDir())
		start := time.Now().Add(-time.Minute)
		appendSeries(t, st, "0", start, 2500)
		appendSeries(t, st, "1", start, 2500)
		rc := newReceiver(t, false)
		rw := testRemoteWrite(rc.srv.URL)
		rw.BatchMaxSamples = 700
		startForwarder(t, st, nil, rw)
		waitFor(t, 10*time.Second, "5000 samples", func() bool { d, _ := rc.accepted(); return d == 5000 })
		for i, r := range rc.requests() {
			if r.samples > 700 {
				t.Errorf("request %d: %d samples, limit 700", i, r.samples)
			}
		}
		if _, total := rc.accepted(); total != 5000 {
			t.Errorf("%d samples accepted in all, want 5000 (each once)", total)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		st := openStore(t, t.TempDir())
		now := time.Now()
		long := strings.Repeat("x", 1000)
		var ss []store.Sample
		for i := range 600 { // ~1 KiB of labels per series: ~600 KiB in all
			ss = append(ss, store.Sample{Name: "m", Labels: store.Labels{{Name: "id", Value: long + string(rune('a'+i%26))}, {Name: "n", Value: strings.Repeat("y", i)}}, Time: now, Value: float64(i)})
		}
		if err := st.Append(context.Background(), ss); err != nil {
			t.Fatal(err)
		}
		rc := newReceiver(t, false)
		rw := testRemoteWrite(rc.srv.URL)
		rw.BatchMaxBytes = 64 << 10
		startForwarder(t, st, nil, rw)
		waitFor(t, 10*time.Second, "600 samples", func() bool { d, _ := rc.accepted(); return d == 600 })
		reqs := rc.requests()
		if len(reqs) < 10 {
			t.Errorf("%d requests for ~1MiB with a 64KiB limit", len(reqs))
		}
		for i, r := range reqs {
			if r.rawSize > 64<<10 {
				t.Errorf("request %d: %d bytes uncompressed, limit %d", i, r.rawSize, 64<<10)
			}
		}
		if _, total := rc.accepted(); total != 600 {
			t.Errorf("%d samples accepted in all, want 600 (each once)", total)
		}
	})
}

func TestRetryOn5xxAnd429HonouringRetryAfter(t *testing.T) {
	st := openStore(t, t.TempDir())
	appendSeries(t, st, "0", time.Now().Add(-time.Minute), 50)
	rc := newReceiver(t, false)
	var times []time.Time
	rc.answer = func(n int, r *request, w http.ResponseWriter) bool {
		times = append(times, time.Now()) // serialized: the forwarder sends one request at a time
		switch n {
		case 0, 1:
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		case 2:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		default:
			w.WriteHeader(http.StatusOK)
			return true
		}
		// While the upstream fails the cursor must not move.
		if c, ok, _ := st.LoadCursor("forward/test"); ok && c != (store.Cursor{}) {
			t.Errorf("cursor moved to %+v after a failed request %d", c, n)
		}
		return false
	}
	logs := &logBuf{}
	r := startForwarder(t, st, newLogger(logs), testRemoteWrite(rc.srv.URL))
	waitFor(t, 10*time.Second, "the batch accepted", func() bool { d, _ := rc.accepted(); return d == 50 })
	waitFor(t, 5*time.Second, "cursor saved", func() bool {
		c, ok, _ := st.LoadCursor("forward/test")
		return ok && c != (store.Cursor{})
	})

	reqs := rc.requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want 4", len(reqs))
	}
	for i := 1; i < 4; i++ {
		if string(reqs[i].body) != string(reqs[0].body) {
			t.Errorf("request %d is not the same batch as request 0", i)
		}
	}
	if d := times[3].Sub(times[2]); d < 950*time.Millisecond {
		t.Errorf("retried %s after Retry-After: 1", d)
	}
	if d := times[2].Sub(times[1]); d > 900*time.Millisecond {
		t.Errorf("5xx backoff of %s with max_backoff 5ms", d)
	}
	for reason, want := range map[string]float64{"http_5xx": 2, "http_429": 1, "network": 0} {
		if got := r.metric(t, "vigil_forward_retries_total", "test", reason); got != want {
			t.Errorf("retries{%s} = %v, want %v", reason, got, want)
		}
		if got := r.metric(t, "vigil_forward_failures_total", "test", reason); got != want {
			t.Errorf("failures{%s} = %v, want %v", reason, got, want)
		}
	}
	if n := strings.Count(logs.String(), "sending failed"); n != 1 {
		t.Errorf("retry episode logged %d times, want once:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "accepts samples again") {
		t.Errorf("recovery not logged:\n%s", logs)
	}
}

func TestRejected4xxIsDroppedAndCursorAdvances(t *testing.T) {
	st := openStore(t, t.TempDir())
	start := time.Now().Add(-time.Minute)
	appendSeries(t, st, "0", start, 300)
	rc := newReceiver(t, false)
	rc.answer = func(n int, r *request, w http.ResponseWriter) bool {
		if n < 2 {
			// Not "out of bounds": a batch refused as too old is searched
			// for a newer part the receiver takes (see the Prometheus test).
			http.Error(w, "out of order sample", http.StatusBadRequest)
			return false
		}
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	logs := &logBuf{}
	rw := testRemoteWrite(rc.srv.URL)
	rw.BatchMaxSamples = 100
	r := startForwarder(t, st, newLogger(logs), rw)
	waitFor(t, 5*time.Second, "third batch accepted", func() bool { d, _ := rc.accepted(); return d == 100 })
	waitFor(t, 5*time.Second, "idle", func() bool { return r.f.Status()[0].State == StateIdle })
	if len(rc.requests()) != 3 {
		t.Errorf("%d requests, want 3 (no retry of a 400)", len(rc.requests()))
	}
	// The accepted batch is the last one: samples 200..299.
	if !rc.has("__name__=gpu_util,gpu=0,host=h1", start.Add(299*time.Millisecond).UnixMilli()) || rc.has("__name__=gpu_util,gpu=0,host=h1", start.UnixMilli()) {
		t.Error("wrong batch accepted")
	}
	if got := r.metric(t, "vigil_forward_dropped_samples_total", "test", "rejected"); got != 200 {
		t.Errorf("dropped{rejected} = %v, want 200", got)
	}
	if got := r.metric(t, "vigil_forward_failures_total", "test", "http_4xx"); got != 2 {
		t.Errorf("failures{http_4xx} = %v, want 2", got)
	}
	c, _, _ := st.LoadCursor("forward/test")
	if rest, _, _ := st.ReadFrom(c, 1); len(rest) != 0 {
		t.Error("cursor did not advance past the rejected batches")
	}
	if n := strings.Count(logs.String(), "rejected a batch"); n != 1 {
		t.Errorf("rejection episode logged %d times, want once:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "out of order sample") {
		t.Errorf("receiver's message not logged:\n%s", logs)
	}
}

// TestResumeFromPersistedCursor restarts the forwarder and the store: a
// batch that was never accepted is sent after the restart; an accepted one
// is not sent again.
func TestResumeFromPersistedCursor(t *testing.T) {
	dir := t.TempDir()
	start := time.Now().Add(-time.Minute)
	rc := newReceiver(t, false)
	var failing atomic.Bool
	rc.answer = func(n int, r *request, w http.ResponseWriter) bool {
		if failing.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return false
		}
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	rw := testRemoteWrite(rc.srv.URL)

	// Round 1: 100 samples accepted.
	st := openStore(t, dir)
	appendSeries(t, st, "0", start, 100)
	r := startForwarder(t, st, nil, rw)
	waitFor(t, 5*time.Second, "100 samples", func() bool { d, _ := rc.accepted(); return d == 100 })
	waitFor(t, 5*time.Second, "idle", func() bool { return r.f.Status()[0].State == StateIdle })
	// Round 2: the upstream fails; 100 more samples are never accepted.
	failing.Store(true)
	appendSeries(t, st, "0", start.Add(100*time.Millisecond), 100)
	waitFor(t, 5*time.Second, "retries", func() bool { return r.f.Status()[0].State == StateRetrying })
	r.stop(t)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart everything: the unaccepted 100 arrive, the first 100 are not
	// sent again.
	failing.Store(false)
	st = openStore(t, dir)
	appendSeries(t, st, "0", start.Add(200*time.Millisecond), 100)
	startForwarder(t, st, nil, rw)
	waitFor(t, 5*time.Second, "300 samples", func() bool { d, _ := rc.accepted(); return d == 300 })
	if _, total := rc.accepted(); total != 300 {
		t.Errorf("%d samples accepted in all, want 300: an accepted batch was sent again", total)
	}
}

func TestAuthFromFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("bearer", func(t *testing.T) {
		st := openStore(t, t.TempDir())
		tokenFile := write("token", "first-token\n")
		rc := newReceiver(t, false)
		rw := testRemoteWrite(rc.srv.URL)
		rw.BearerTokenFile = tokenFile
		rw.Headers = map[string]string{"X-Scope-OrgID": "tenant-1"}
		startForwarder(t, st, nil, rw)
		appendSeries(t, st, "0", time.Now(), 1)
		waitFor(t, 5*time.Second, "first request", func() bool { return len(rc.requests()) == 1 })
		// Rotation takes effect on the next request, without a restart.
		write("token", "second-token")
		appendSeries(t, st, "1", time.Now(), 1)
		waitFor(t, 5*time.Second, "second request", func() bool { return len(rc.requests()) == 2 })
		reqs := rc.requests()
		if got := reqs[0].header.Get("Authorization"); got != "Bearer first-token" {
			t.Errorf("first Authorization = %q", got)
		}
		if got := reqs[1].header.Get("Authorization"); got != "Bearer second-token" {
			t.Errorf("Authorization after rotation = %q", got)
		}
		if got := reqs[0].header.Get("X-Scope-OrgID"); got != "tenant-1" {
			t.Errorf("extra header = %q", got)
		}
	})
	t.Run("basic", func(t *testing.T) {
		st := openStore(t, t.TempDir())
		rc := newReceiver(t, false)
		rw := testRemoteWrite(rc.srv.URL)
		rw.BasicAuth = BasicAuth{Username: "vigil", PasswordFile: write("pw", "  s3cret \n")}
		startForwarder(t, st, nil, rw)
		appendSeries(t, st, "0", time.Now(), 1)
		waitFor(t, 5*time.Second, "a request", func() bool { return len(rc.requests()) == 1 })
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte("vigil:s3cret"))
		if got := rc.requests()[0].header.Get("Authorization"); got != want {
			t.Errorf("Authorization = %q, want %q", got, want)
		}
	})
	t.Run("missing file fails New", func(t *testing.T) {
		st := openStore(t, t.TempDir())
		rw := testRemoteWrite("http://127.0.0.1:1/")
		rw.BearerTokenFile = filepath.Join(dir, "nope")
		_, err := New(Config{RemoteWrite: []RemoteWrite{rw}}, st, nil, nil)
		if err == nil || !strings.Contains(err.Error(), "bearer_token_file") {
			t.Errorf("New with a missing token file: %v", err)
		}
	})
}

func TestTLSWithTestCA(t *testing.T) {
	st := openStore(t, t.TempDir())
	rc := newReceiver(t, true)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rc.srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}

	// Without the CA the server's certificate is not trusted: a network
	// failure, retried, nothing accepted.
	untrusted := testRemoteWrite(rc.srv.URL)
	untrusted.Name = "untrusted"
	trusted := testRemoteWrite(rc.srv.URL)
	trusted.Name = "trusted"
	trusted.TLS.CAFile = caFile
	appendSeries(t, st, "0", time.Now(), 10)
	r := startForwarder(t, st, nil, untrusted, trusted)
	waitFor(t, 5*time.Second, "trusted upstream delivers", func() bool { return r.f.Status()[1].SamplesSent == 10 })
	waitFor(t, 5*time.Second, "untrusted upstream retries", func() bool { return r.metric(t, "vigil_forward_retries_total", "untrusted", "network") >= 2 })
	s := r.f.Status()[0]
	if s.SamplesSent != 0 || s.Up || !strings.Contains(s.LastError, "certificate") {
		t.Errorf("untrusted status = %+v", s)
	}
	if reqs := rc.requests(); len(reqs) != 1 {
		t.Errorf("%d requests reached the server, want 1", len(reqs))
	}
	if v := rc.srv.TLS; v != nil && v.MinVersion != 0 && v.MinVersion < tls.VersionTLS12 {
		t.Errorf("test server allows %x", v.MinVersion)
	}
}

func TestNetworkErrorsRetryUntilTheUpstreamComes(t *testing.T) {
	st := openStore(t, t.TempDir())
	appendSeries(t, st, "0", time.Now(), 20)
	rc := newReceiver(t, false)
	addr := rc.srv.Listener.Addr().String()
	rc.srv.Close() // nothing listens there now
	rw := testRemoteWrite("http://" + addr + "/api/v1/write")
	r := startForwarder(t, st, nil, rw)
	waitFor(t, 5*time.Second, "network retries", func() bool { return r.metric(t, "vigil_forward_retries_total", "test", "network") >= 3 })
	s := r.f.Status()[0]
	if s.State != StateRetrying && s.State != StateSending || s.LastError == "" || s.LagSeconds <= 0 {
		t.Errorf("status while the upstream is down = %+v", s)
	}
	if lag := r.metric(t, "vigil_forward_lag_seconds", "test"); lag <= 0 {
		t.Errorf("lag = %v while nothing was accepted", lag)
	}
	if c, ok, _ := st.LoadCursor("forward/test"); ok && c != (store.Cursor{}) {
		t.Errorf("cursor moved to %+v though nothing was accepted", c)
	}
}

func TestRunStopsCleanly(t *testing.T) {
	st := openStore(t, t.TempDir())
	rc := newReceiver(t, false)
	block := make(chan struct{})
	rc.answer = func(int, *request, http.ResponseWriter) bool { <-block; return false }
	t.Cleanup(func() { close(block) })
	appendSeries(t, st, "0", time.Now(), 5)
	r := startForwarder(t, st, nil, testRemoteWrite(rc.srv.URL))
	waitFor(t, 5*time.Second, "a request in flight", func() bool { return len(rc.requests()) == 1 })
	r.stop(t) // must return although the request never completes
	if s := r.f.Status()[0]; s.State != StateStopped {
		t.Errorf("state after Run returned = %s", s.State)
	}
	// Run can be started again after it returned.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.f.Run(ctx); err != nil {
		t.Errorf("second Run: %v", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"0", 0},
		{"-3", 0},
		{"soon", 0},
		{"99999999", time.Hour},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	} {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestBackoffBounds(t *testing.T) {
	u := &upstream{cfg: RemoteWrite{MinBackoff: 100 * time.Millisecond, MaxBackoff: 2 * time.Second}}
	for attempt := range 60 {
		ceil := min(2*time.Second, 100*time.Millisecond<<min(attempt, 10))
		for range 50 {
			d := u.backoff(attempt)
			if d < 50*time.Millisecond || d > ceil {
				t.Fatalf("backoff(%d) = %s, want within [50ms, %s]", attempt, d, ceil)
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := RemoteWrite{Name: "prom", URL: "https://prom.example:9090/api/v1/write"}
	for _, tc := range []struct {
		name string
		mod  func(*RemoteWrite)
		want []string // substrings, each on its own line of the error
	}{
		{"defaults", func(*RemoteWrite) {}, nil},
		{"bad name", func(r *RemoteWrite) { r.Name = "a b" }, []string{"forward.remote_write[0].name: must be"}},
		{"no url", func(r *RemoteWrite) { r.URL = "" }, []string{"forward.remote_write[0].url: required"}},
		{"ftp", func(r *RemoteWrite) { r.URL = "ftp://x/" }, []string{"forward.remote_write[0].url: scheme"}},
		{"credentials in url", func(r *RemoteWrite) { r.URL = "https://u:p@x/" }, []string{"url: must not carry credentials"}},
		{"both auths", func(r *RemoteWrite) {
			r.BearerTokenFile = "/t"
			r.BasicAuth = BasicAuth{Username: "u", PasswordFile: "/p"}
		}, []string{"not both"}},
		{"basic without file", func(r *RemoteWrite) { r.BasicAuth.Username = "u" }, []string{"basic_auth.password_file: required"}},
		{"cert without key", func(r *RemoteWrite) { r.TLS.CertFile = "/c" }, []string{"tls: cert_file and key_file"}},
		{"tls on http", func(r *RemoteWrite) { r.URL = "http://x/"; r.TLS.CAFile = "/ca" }, []string{"use https"}},
		{"reserved header", func(r *RemoteWrite) { r.Headers = map[string]string{"authorization": "x"} }, []string{"headers: Authorization is set by the forwarder"}},
		{"batch samples", func(r *RemoteWrite) { r.BatchMaxSamples = -1 }, []string{"batch_max_samples"}},
		{"batch bytes", func(r *RemoteWrite) { r.BatchMaxBytes = 1000 }, []string{"batch_max_bytes: must be between 64KiB and 64MiB"}},
		{"backoffs", func(r *RemoteWrite) { r.MinBackoff = 10 * time.Second; r.MaxBackoff = time.Second }, []string{"min_backoff: 10s is more than max_backoff 1s"}},
		{"timeout", func(r *RemoteWrite) { r.Timeout = time.Hour }, []string{"forward.remote_write[0].timeout"}},
		{"several", func(r *RemoteWrite) { r.Name = ""; r.URL = ""; r.Timeout = -1 }, []string{"name:", "url: required", "timeout:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rw := ok
			tc.mod(&rw)
			err := Config{RemoteWrite: []RemoteWrite{rw}}.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Errorf("got %d problems, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	t.Run("duplicate names", func(t *testing.T) {
		err := Config{RemoteWrite: []RemoteWrite{ok, ok}}.Validate()
		if err == nil || !strings.Contains(err.Error(), `forward.remote_write[1].name: "prom" is also the name of forward.remote_write[0]`) {
			t.Errorf("got %v", err)
		}
	})
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig: %v", err)
	}
}

// TestRestartAfterAcceptedButUnsavedBatch: the agent stops after the
// receiver took a batch but before the cursor was saved. The receiver
// behaves like Prometheus: a request holding any sample it already has is
// refused whole with 400. After the restart the old batch must be sent
// exactly as it was (refused, dropped: it was delivered) and the samples
// appended since in their own batch, so none of them is lost.
func TestRestartAfterAcceptedButUnsavedBatch(t *testing.T) {
	dir := t.TempDir()
	start := time.Now().Add(-time.Minute)
	rc := newReceiver(t, false)
	var (
		mu      sync.Mutex
		seen    = map[int64]bool{} // timestamps of the one series, as "committed" by the receiver
		release = make(chan struct{})
		hold    atomic.Bool
	)
	seenN := func() int { mu.Lock(); defer mu.Unlock(); return len(seen) }
	hold.Store(true)
	rc.answer = func(n int, r *request, w http.ResponseWriter) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range r.series {
			for _, smp := range s.samples {
				if seen[smp.t] {
					http.Error(w, "out of order sample", http.StatusBadRequest)
					return false
				}
			}
		}
		for _, s := range r.series {
			for _, smp := range s.samples {
				seen[smp.t] = true
			}
		}
		if hold.Load() {
			mu.Unlock()
			<-release // committed, but the answer never reaches the agent
			mu.Lock()
		}
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	rw := testRemoteWrite(rc.srv.URL)

	st := openStore(t, dir)
	appendSeries(t, st, "0", start, 50) // a short batch: fewer than batch_max_samples
	r := startForwarder(t, st, nil, rw)
	waitFor(t, 5*time.Second, "first request", func() bool { return len(rc.requests()) == 1 })
	r.stop(t) // the "crash": the cursor was never saved
	hold.Store(false)
	close(release)
	// The cursor is saved at the start (store.Cursor{}) when the
	// forwarder begins; it must not have moved without a 2xx.
	if c, ok, _ := st.LoadCursor("forward/test"); ok && c != (store.Cursor{}) {
		t.Fatalf("cursor moved to %+v without a 2xx", c)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st = openStore(t, dir)
	appendSeries(t, st, "0", start.Add(50*time.Millisecond), 50)
	r = startForwarder(t, st, nil, rw)
	waitFor(t, 5*time.Second, "all 100 samples at the receiver", func() bool { return seenN() == 100 && r.f.Status()[0].State == StateIdle })
	reqs := rc.requests()
	if len(reqs) != 3 || reqs[1].samples != 50 || reqs[2].samples != 50 {
		t.Errorf("requests after the restart: want the old 50 again, then the new 50; got %d requests", len(reqs))
	}
	if s := r.f.Status()[0]; s.SamplesSent != 50 || s.SamplesDropped["rejected"] != 50 {
		t.Errorf("status = %+v", s)
	}
}

// An upstream that has never accepted a batch has no saved cursor of its
// own. Samples the store evicts during that outage must still count as
// vigil_forward_dropped_samples_total{reason="evicted"}: every appended
// sample is either accepted upstream or counted as dropped.
func TestEvictedBeforeFirstAcceptedBatchAreCounted(t *testing.T) {
	dir := t.TempDir()
	cfg := store.DefaultConfig()
	cfg.Path = filepath.Join(dir, "vigil.db")
	cfg.MaxBytes = 1 << 20
	cfg.Partition = time.Minute
	rc := newReceiver(t, false)
	var down atomic.Bool
	down.Store(true)
	rc.answer = func(n int, r *request, w http.ResponseWriter) bool {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return false
		}
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	rw := testRemoteWrite(rc.srv.URL)

	// The upstream is down from the first request on; a short first batch
	// (fewer samples than batch_max_samples) is in flight.
	st, err := store.Open(cfg, nil)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	start := time.Now().Add(-20 * time.Minute)
	appendSeries(t, st, "0", start, 10)
	r := startForwarder(t, st, nil, rw)
	waitFor(t, 5*time.Second, "retries", func() bool { return r.f.Status()[0].State == StateRetrying })

	// Far more than store.max_bytes over 20 one-minute partitions.
	const perMinute, minutes = 30000, 20
	appended := 10
	for m := range minutes {
		batch := make([]store.Sample, 0, perMinute)
		for i := range perMinute {
			batch = append(batch, store.Sample{
				Name:   "gpu_util",
				Labels: store.Labels{{Name: "gpu", Value: "1"}, {Name: "host", Value: "h1"}},
				Time:   start.Add(time.Duration(m)*time.Minute + time.Duration(i)*time.Millisecond),
				Value:  float64(i) * 1.000123456789, // values that do not compress
			})
		}
		if err := st.Append(context.Background(), batch); err != nil {
			t.Fatalf("append minute %d: %v", m, err)
		}
		appended += len(batch)
	}
	// A commit that passes store.max_bytes evicts the oldest partitions.
	if st.EvictedSamples() == 0 {
		fi, _ := os.Stat(cfg.Path)
		t.Fatalf("the store evicted nothing from a %d-byte file; the test needs a backlog over store.max_bytes", fi.Size())
	}
	down.Store(false)
	waitFor(t, 10*time.Second, "caught up", func() bool {
		s := r.f.Status()[0]
		return s.State == StateIdle
	})
	accepted, _ := rc.accepted()
	evicted := r.metric(t, "vigil_forward_dropped_samples_total", "test", "evicted")
	if accepted+int(evicted) != appended {
		t.Errorf("%d accepted + %v counted as evicted = %d, want the %d appended, each counted once (store evicted %d)",
			accepted, evicted, accepted+int(evicted), appended, st.EvictedSamples())
	}
	if got := r.f.Status()[0].SamplesDropped[reasonEvicted]; got != uint64(evicted) {
		t.Errorf("/v1/forward says %d evicted, the metric %v", got, evicted)
	}
}

// forward.external_labels are added to every series sent, except where
// the series has that label itself, so the agents of a fleet that share a
// receiver do not write into one another's series.
func TestExternalLabels(t *testing.T) {
	st := openStore(t, t.TempDir())
	appendSeries(t, st, "0", time.Now().Add(-time.Minute), 5)
	rc := newReceiver(t, false)
	cfg := Config{RemoteWrite: []RemoteWrite{testRemoteWrite(rc.srv.URL)}, ExternalLabels: map[string]string{"node": "gpu-node-17", "gpu": "not-this"}}
	f, err := New(cfg, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	waitFor(t, 5*time.Second, "5 samples", func() bool { d, _ := rc.accepted(); return d == 5 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := "__name__=gpu_util,gpu=0,host=h1,node=gpu-node-17"
	for _, r := range rc.requests() {
		for _, s := range r.series {
			if got := seriesString(s.labels); got != want {
				t.Errorf("series sent as %s, want %s", got, want)
			}
		}
	}

	for _, bad := range []map[string]string{{"__x": "a"}, {"1x": "a"}, {"node": ""}} {
		cfg.ExternalLabels = bad
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "forward.external_labels") {
			t.Errorf("Validate(%v) = %v, want an error naming forward.external_labels", bad, err)
		}
	}
}
