package forward

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vigilml/vigil/agent/store"
)

// decodedSeries is one TimeSeries of a received WriteRequest.
type decodedSeries struct {
	labels  []label
	samples []rwSample
}

func (s decodedSeries) name() string {
	for _, l := range s.labels {
		if l.name == metricNameLabel {
			return l.value
		}
	}
	return ""
}

// decodeWriteRequest is an independent decoder of the remote_write 1.0
// body (snappy block + protobuf), strict about wire types.
func decodeWriteRequest(body []byte) ([]decodedSeries, int, error) {
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		return nil, 0, fmt.Errorf("snappy: %w", err)
	}
	var out []decodedSeries
	err = eachField(raw, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != 1 || typ != protowire.BytesType {
			return fmt.Errorf("WriteRequest: unexpected field %d type %d", num, typ)
		}
		var ts decodedSeries
		err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
			if typ != protowire.BytesType {
				return fmt.Errorf("TimeSeries: field %d has type %d", num, typ)
			}
			switch num {
			case 1:
				var l label
				err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
					if typ != protowire.BytesType {
						return fmt.Errorf("Label: field %d type %d", num, typ)
					}
					switch num {
					case 1:
						l.name = string(v)
					case 2:
						l.value = string(v)
					}
					return nil
				})
				ts.labels = append(ts.labels, l)
				return err
			case 2:
				var s rwSample
				err := eachField(v, func(num protowire.Number, typ protowire.Type, _ []byte, x uint64) error {
					switch {
					case num == 1 && typ == protowire.Fixed64Type:
						s.v = math.Float64frombits(x)
					case num == 2 && typ == protowire.VarintType:
						s.t = int64(x)
					default:
						return fmt.Errorf("Sample: field %d type %d", num, typ)
					}
					return nil
				})
				ts.samples = append(ts.samples, s)
				return err
			}
			return fmt.Errorf("TimeSeries: unexpected field %d", num)
		})
		out = append(out, ts)
		return err
	})
	return out, len(raw), err
}

func eachField(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		default:
			return fmt.Errorf("unexpected wire type %d", typ)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := fn(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

// request is what the receiver saw of one POST.
type request struct {
	header  http.Header
	series  []decodedSeries
	rawSize int
	samples int
	body    []byte
}

// receiver is an httptest remote_write endpoint. answer decides the
// response to each request (nil: 204).
type receiver struct {
	t      testing.TB
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []request
	answer func(n int, r *request, w http.ResponseWriter) bool // true: accepted
	got    map[string]map[int64]int                            // series -> timestamp -> times accepted
}

func newReceiver(t testing.TB, tlsServer bool) *receiver {
	rc := &receiver{t: t, got: map[string]map[int64]int{}}
	rc.srv = httptest.NewUnstartedServer(http.HandlerFunc(rc.serve))
	rc.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // TLS handshake failures are expected in some tests
	if tlsServer {
		rc.srv.StartTLS()
	} else {
		rc.srv.Start()
	}
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	series, rawSize, err := decodeWriteRequest(body)
	if err != nil {
		rc.t.Errorf("undecodable request: %v", err)
		http.Error(w, err.Error(), 400)
		return
	}
	req := request{header: r.Header.Clone(), series: series, rawSize: rawSize, body: body}
	for _, s := range series {
		req.samples += len(s.samples)
	}
	rc.mu.Lock()
	n := len(rc.reqs)
	rc.reqs = append(rc.reqs, req)
	answer := rc.answer
	rc.mu.Unlock()
	accepted := true
	if answer != nil {
		accepted = answer(n, &req, w)
	} else {
		w.WriteHeader(http.StatusNoContent)
	}
	if accepted {
		rc.mu.Lock()
		for _, s := range series {
			k := seriesString(s.labels)
			if rc.got[k] == nil {
				rc.got[k] = map[int64]int{}
			}
			for _, smp := range s.samples {
				rc.got[k][smp.t]++
			}
		}
		rc.mu.Unlock()
	}
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.reqs)
}

// accepted returns the number of distinct (series, timestamp) pairs and
// the number of accepted samples including duplicates.
func (rc *receiver) accepted() (distinct, total int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, ts := range rc.got {
		distinct += len(ts)
		for _, n := range ts {
			total += n
		}
	}
	return
}

func (rc *receiver) has(series string, t int64) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.got[series][t] > 0
}

func seriesString(ls []label) string {
	var b strings.Builder
	for i, l := range ls {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.name + "=" + l.value)
	}
	return b.String()
}

func openStore(t testing.TB, dir string) *store.Store {
	t.Helper()
	cfg := store.DefaultConfig()
	cfg.Path = filepath.Join(dir, "vigil.db")
	st, err := store.Open(cfg, nil)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// appendSeries appends n samples of series gpu_util{gpu=<gpu>} one ms
// apart ending near now, in batches of 100.
func appendSeries(t testing.TB, st *store.Store, gpu string, start time.Time, n int) {
	t.Helper()
	var batch []store.Sample
	for i := range n {
		batch = append(batch, store.Sample{
			Name:   "gpu_util",
			Labels: store.Labels{{Name: "gpu", Value: gpu}, {Name: "host", Value: "h1"}},
			Time:   start.Add(time.Duration(i) * time.Millisecond),
			Value:  float64(i),
		})
		if len(batch) == 100 || i == n-1 {
			if err := st.Append(context.Background(), batch); err != nil {
				t.Fatalf("append: %v", err)
			}
			batch = batch[:0]
		}
	}
}

func testRemoteWrite(url string) RemoteWrite {
	return RemoteWrite{Name: "test", URL: url, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Timeout: 5 * time.Second}
}

// running is a forwarder whose Run is going in the background.
type running struct {
	f      *Forwarder
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func startForwarder(t testing.TB, st *store.Store, logger *slog.Logger, rws ...RemoteWrite) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	f, err := New(Config{RemoteWrite: rws}, st, logger, reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{f: f, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- f.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t testing.TB) {
	r.once.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return within 10s of cancel")
		}
	})
}

// metric returns the value of the metric name with the given label values
// (upstream first), or NaN when it is not exposed.
func (r *running) metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			lp := m.GetLabel()
			want := map[string]string{}
			keys := []string{"upstream", "reason"}
			for i, v := range labels {
				want[keys[i]] = v
			}
			for _, l := range lp {
				if w, ok := want[l.GetName()]; ok && w != l.GetValue() {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return math.NaN()
}

// waitFor polls cond every 5ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logBuf collects log output.
type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
