package forward

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigilml/vigil/agent/store"
)

// prometheus is a real Prometheus server (Debian's prometheus package)
// with the remote-write receiver on, on a loopback port and a temp data dir.
type promServer struct {
	t       testing.TB
	bin     string
	dir     string // data dir, kept across restarts
	addr    string
	logFile string
	cmd     *exec.Cmd
	exited  chan struct{}
}

func findPrometheus(t testing.TB) string {
	t.Helper()
	for _, p := range []string{os.Getenv("VIGIL_TEST_PROMETHEUS"), "prometheus", "/usr/bin/prometheus"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatal("the prometheus binary is missing: this test needs a real Prometheus. " +
		"Install Debian's package (sudo apt-get install prometheus, or `make test-deps` as root), " +
		"or point VIGIL_TEST_PROMETHEUS at a prometheus binary")
	return ""
}

func freeLoopbackAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func newPrometheus(t testing.TB) *promServer {
	t.Helper()
	dir := t.TempDir()
	p := &promServer{t: t, bin: findPrometheus(t), dir: dir, addr: freeLoopbackAddr(t), logFile: filepath.Join(dir, "prometheus.log")}
	// No scrape targets: everything it stores comes by remote write.
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte("global:\n  scrape_interval: 1h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			b, _ := os.ReadFile(p.logFile)
			t.Logf("prometheus log:\n%s", b)
		}
	})
	p.start()
	return p
}

func (p *promServer) start() {
	p.t.Helper()
	logf, err := os.OpenFile(p.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	defer logf.Close()
	p.cmd = exec.Command(p.bin,
		"--config.file="+filepath.Join(p.dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(p.dir, "data"),
		"--web.listen-address="+p.addr,
		"--web.enable-remote-write-receiver",
		"--log.level=warn",
	)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start prometheus: %v", err)
	}
	p.exited = make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + p.addr + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-p.exited:
			b, _ := os.ReadFile(p.logFile)
			p.t.Fatalf("prometheus exited during start-up:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatal("prometheus not ready after 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for Prometheus to exit (it closes its TSDB
// cleanly); SIGKILL after 30s.
func (p *promServer) stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	p.cmd = nil
}

func (p *promServer) writeURL() string { return "http://" + p.addr + "/api/v1/write" }

// query runs an instant PromQL query and returns each series' labels and
// value.
func (p *promServer) query(q string) (map[string]float64, error) {
	resp, err := http.Get("http://" + p.addr + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("query %s: %v: %s", q, err, body)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", q, r.Error)
	}
	out := map[string]float64{}
	for _, s := range r.Data.Result {
		v, err := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
		if err != nil {
			return nil, err
		}
		out[s.Metric["series"]] = v
	}
	return out, nil
}

// TestForwardToRealPrometheusAcrossOutage forwards from a real store to a
// real Prometheus, stops Prometheus for a while as samples keep coming,
// restarts it on the same data dir and port, and checks that every sample
// arrived (no gaps) by querying Prometheus.
func TestForwardToRealPrometheusAcrossOutage(t *testing.T) {
	prom := newPrometheus(t)
	st := openStore(t, t.TempDir())
	rw := RemoteWrite{Name: "prom", URL: prom.writeURL(), MinBackoff: 20 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, Timeout: 5 * time.Second}
	logs := &logBuf{}
	r := startForwarder(t, st, newLogger(logs), rw)

	// A writer appends one sample for each of 20 series every 10ms, like a
	// collector would, and remembers how many it got acknowledged.
	const nSeries = 20
	var (
		mu    sync.Mutex
		acked int
	)
	ctx, stopWriter := context.WithCancel(context.Background())
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		last := time.Time{}
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			ts := time.Now().Truncate(time.Millisecond)
			if !ts.After(last) {
				ts = last.Add(time.Millisecond)
			}
			last = ts
			batch := make([]store.Sample, nSeries)
			for i := range batch {
				batch[i] = store.Sample{Name: "vigil_e2e_value", Labels: store.Labels{{Name: "series", Value: strconv.Itoa(i)}}, Time: ts, Value: float64(ts.UnixMilli() % 1000)}
			}
			// Not ctx: an Append cut short by ctx may still be stored
			// without being counted (store.Append's contract), which
			// would leave Prometheus with one sample more than acked.
			if err := st.Append(context.Background(), batch); err != nil {
				t.Errorf("append: %v", err)
				return
			}
			mu.Lock()
			acked++
			mu.Unlock()
		}
	}()
	ackedNow := func() int { mu.Lock(); defer mu.Unlock(); return acked }

	// Phase 1: Prometheus up.
	waitFor(t, 10*time.Second, "samples accepted by Prometheus", func() bool { return r.f.Status()[0].SamplesSent >= 20*nSeries })

	// Phase 2: Prometheus down for a while; the writer keeps going.
	prom.stop()
	before := ackedNow()
	waitFor(t, 10*time.Second, "forwarder noticing the outage", func() bool {
		return r.metric(t, "vigil_forward_failures_total", "prom", "network") >= 3
	})
	waitFor(t, 10*time.Second, "2s of samples during the outage", func() bool { return ackedNow()-before >= 150 })
	if s := r.f.Status()[0]; s.Up || s.LagSeconds < 0.5 {
		t.Errorf("status during the outage = %+v", s)
	}

	// Phase 3: restart on the same data dir and port; write a little more.
	prom.start()
	restarted := ackedNow()
	waitFor(t, 10*time.Second, "writer to go on after the restart", func() bool { return ackedNow()-restarted >= 50 })
	stopWriter()
	<-writerDone
	total := ackedNow()

	// Everything forwarded: caught up, nothing pending, nothing dropped.
	waitFor(t, 30*time.Second, "forwarder to catch up", func() bool {
		s := r.f.Status()[0]
		return s.State == StateIdle && s.PendingSamples != nil && *s.PendingSamples == 0
	})
	s := r.f.Status()[0]
	if s.SamplesSent < uint64(total*nSeries) {
		t.Errorf("forwarder sent %d samples, %d were appended", s.SamplesSent, total*nSeries)
	}
	if s.SamplesDropped["rejected"] != 0 {
		t.Logf("rejected batches (a batch Prometheus took before its shutdown and that was sent again): %d samples", s.SamplesDropped["rejected"])
	}
	// Every series has every sample in Prometheus: no gaps.
	var counts map[string]float64
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last counts per series in Prometheus: %v (want %d each)", counts, total)
		}
	})
	waitFor(t, 15*time.Second, "Prometheus to have every sample", func() bool {
		var err error
		counts, err = prom.query("count_over_time(vigil_e2e_value[1h])")
		if err != nil {
			t.Logf("query: %v", err)
			return false
		}
		for i := range nSeries {
			if counts[strconv.Itoa(i)] != float64(total) {
				return false
			}
		}
		return true
	})
	t.Logf("%d samples per series (%d in all) arrived, %d of them appended during the outage; sent %d (duplicates included), retries: %v",
		total, total*nSeries, restarted-before, s.SamplesSent, r.metric(t, "vigil_forward_retries_total", "prom", "network"))
	if got := r.metric(t, "vigil_forward_up", "prom"); got != 1 {
		t.Errorf("vigil_forward_up = %v after recovery", got)
	}

	// What a batch that mixes samples Prometheus already has with new ones
	// gets (documented in the package doc): a 400 for the whole batch.
	b := newBatch()
	b.reset()
	old := store.Sample{Name: "vigil_e2e_value", Labels: store.Labels{{Name: "series", Value: "0"}}, Time: time.Now().Add(-30 * time.Second), Value: 1}
	newer := store.Sample{Name: "vigil_e2e_mixed", Time: time.Now(), Value: 1}
	b.add(old, 1<<20)
	b.add(newer, 1<<20)
	c, err := newClient(rw.withDefaults(), "vigil/test")
	if err != nil {
		t.Fatal(err)
	}
	res, _ := c.post(context.Background(), b.encode(), time.Now())
	mixed, err := prom.query("count_over_time(vigil_e2e_mixed[1h])")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("mixed batch: outcome %d status %d err %v; new sample stored: %v", res.outcome, res.status, res.err, len(mixed) > 0)
	if res.outcome != outcomeDrop || len(mixed) != 0 {
		t.Errorf("Prometheus took a batch mixing old and new samples (status %d, new sample stored %v): update the package doc", res.status, len(mixed) > 0)
	}
}

// TestForwardDeliversTheNewerPartOfABatchPrometheusRefusesAsTooOld: after
// a long outage the backlog reaches further back than a real Prometheus
// takes (an hour behind the newest sample it has, written here by
// "another node"), so it refuses, whole, every request holding a sample
// older than that. The batch that straddles that bound must still deliver
// its newer samples, and the long run of batches that are entirely too
// old must not cost more than a request each.
func TestForwardDeliversTheNewerPartOfABatchPrometheusRefusesAsTooOld(t *testing.T) {
	prom := newPrometheus(t)
	now := time.Now().Truncate(time.Second)
	rw := RemoteWrite{Name: "prom", URL: prom.writeURL(), MinBackoff: 20 * time.Millisecond, MaxBackoff: 300 * time.Millisecond,
		Timeout: 5 * time.Second, BatchMaxSamples: 7 * nTooOldSeries}

	// Another node keeps Prometheus' newest sample at now.
	c, err := newClient(rw.withDefaults(), "vigil/test")
	if err != nil {
		t.Fatal(err)
	}
	live := newBatch()
	live.reset()
	live.add(store.Sample{Name: "vigil_e2e_live", Time: now, Value: 1}, 1<<20)
	if res, _ := c.post(context.Background(), live.encode(), time.Now()); res.outcome != outcomeSent {
		t.Fatalf("live sample: status %d: %v", res.status, res.err)
	}

	st := openStore(t, t.TempDir())
	tick := func(ts time.Time) {
		t.Helper()
		b := make([]store.Sample, nTooOldSeries)
		for i := range b {
			b[i] = store.Sample{Name: "vigil_e2e_old", Labels: store.Labels{{Name: "series", Value: strconv.Itoa(i)}}, Time: ts, Value: float64(ts.Unix() % 1000)}
		}
		if err := st.Append(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	// 100 batches of 7 ticks, about two hours old: entirely too old.
	const oldBatches = 100
	for k := range 7 * oldBatches {
		tick(now.Add(-2*time.Hour + time.Duration(k)*time.Second))
	}
	// Then 30 ticks 10s apart from 61m55s ago: the first 12 are older
	// than the bound (now - 1h), the 13th (59m55s ago) is not. The
	// second batch of these holds ticks 7 to 13: 5 too old, 2 not.
	const ticks, firstGood = 30, 12
	for k := range ticks {
		tick(now.Add(-62*time.Minute + 5*time.Second + time.Duration(k)*10*time.Second))
	}

	r := startForwarder(t, st, nil, rw)
	waitFor(t, 30*time.Second, "forwarder to catch up", func() bool {
		s := r.f.Status()[0]
		return s.State == StateIdle && s.PendingSamples != nil && *s.PendingSamples == 0
	})
	s := r.f.Status()[0]
	wantSent := (ticks - firstGood) * nTooOldSeries
	wantRejected := (7*oldBatches + firstGood) * nTooOldSeries
	if s.SamplesSent != uint64(wantSent) || s.SamplesDropped["rejected"] != uint64(wantRejected) {
		t.Errorf("sent %d, rejected %d; want %d and %d", s.SamplesSent, s.SamplesDropped["rejected"], wantSent, wantRejected)
	}
	counts, err := prom.query("count_over_time(vigil_e2e_old[3h])")
	if err != nil {
		t.Fatal(err)
	}
	for i := range nTooOldSeries {
		if got := counts[strconv.Itoa(i)]; got != ticks-firstGood {
			t.Errorf("series %d: %v samples in Prometheus, want %d (every tick newer than the bound); all: %v", i, got, ticks-firstGood, counts)
			break
		}
	}
	// One refused request per batch that is entirely too old and over an
	// hour and a minute old; the two refused batches younger than that
	// are searched (at most 6 more requests each).
	refused := r.metric(t, "vigil_forward_failures_total", "prom", "http_4xx")
	t.Logf("refused requests: %v for %d refused batches", refused, oldBatches+2)
	if refused < oldBatches+2 || refused > oldBatches+2+2*6 {
		t.Errorf("%v refused requests, want %d to %d", refused, oldBatches+2, oldBatches+2+2*6)
	}
}

const nTooOldSeries = 20
