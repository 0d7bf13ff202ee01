package drift

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilml/vigil/agent/observe"
	"github.com/vigilml/vigil/agent/pluginhost"
)

var (
	buildOnce sync.Once
	builtDir  string
	buildErr  error
)

// detectorDir builds the real detector plugins once per test binary.
func detectorDir(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vigil-drift-detectors-")
		if err != nil {
			buildErr = err
			return
		}
		args := []string{"build", "-o", dir + string(filepath.Separator)}
		for _, p := range []string{"ks", "psi", "chisquare", "wasserstein", "jensenshannon"} {
			args = append(args, "../../plugins/detectors/"+p)
		}
		if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build detector plugins: %v\n%s", err, out)
			return
		}
		builtDir = dir
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return builtDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

// newHost starts a plugin host that trusts the built detectors (dev mode).
func newHost(tb testing.TB) *pluginhost.Host {
	tb.Helper()
	cfg := pluginhost.DefaultConfig()
	cfg.Dirs = nil
	h, err := pluginhost.New(cfg, pluginhost.Options{CatalogPath: filepath.Join(tb.TempDir(), "plugins.db"), DevDir: detectorDir(tb), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	h.Start()
	tb.Cleanup(func() { h.Close() })
	return h
}

type rig struct {
	obs  *observe.Service
	host *pluginhost.Host
	dir  string
}

func newRig(tb testing.TB) *rig {
	tb.Helper()
	dir := tb.TempDir()
	s, err := observe.Open(observe.Config{Path: filepath.Join(dir, "obs.db")}, observe.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return &rig{obs: s, host: newHost(tb), dir: dir}
}

func (r *rig) open(tb testing.TB, cfg Config, models Models) *Engine {
	return r.openAt(tb, cfg, models, nil)
}

// openAt opens the engine on the rig's observations with the clock now
// (nil: time.Now), subscribed to new observations until the test ends.
func (r *rig) openAt(tb testing.TB, cfg Config, models Models, now func() time.Time) *Engine {
	tb.Helper()
	cfg.Path = filepath.Join(r.dir, "drift.db")
	e, err := Open(cfg, models, Options{Source: r.obs, Detectors: HostDetectors(r.host), Seed: 1, Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	cancel := r.obs.Subscribe(e.Add)
	tb.Cleanup(func() { cancel(); e.Close() })
	return e
}

// grid is the k-th of 100 evenly spread points of (0, 1), visited in a
// scrambled order: every 100 consecutive k give each point once.
func grid(k int) float64 { return (float64(k*37%100) + 0.5) / 100 }

// normQ is the standard normal quantile function.
func normQ(p float64) float64 { return math.Sqrt2 * math.Erfinv(2*p-1) }

// batch makes n observations of fraud/v1 (n a multiple of 100). Unshifted,
// every feature cycles deterministically through the same 100 values
// (normal quantiles for amount), so any two windows of whole batches have
// identical distributions and no detector can flag them. Shifted, amount
// is drawn from N(shift, 1) and country is "DE" half the time more; age,
// channel and the prediction never change.
func batch(r *rand.Rand, n int, shift float64) []observe.Observation {
	out := make([]observe.Observation, n)
	now := time.Now().UnixMilli()
	for i := range out {
		amount := normQ(grid(i))
		country := []string{"DE", "FR", "IT", "ES"}[i%4]
		if shift > 0 {
			amount = r.NormFloat64() + shift
			if r.Float64() < 0.5 {
				country = "DE"
			}
		}
		out[i] = observe.Observation{
			Model: "fraud", Version: "v1", UnixMs: now,
			Features: []observe.Feature{
				{Name: "amount", Value: observe.Num(amount)},
				{Name: "age", Value: observe.Num(20 + 40*grid(i))},
				{Name: "country", Value: observe.Str(country)},
				{Name: "channel", Value: observe.Str([]string{"web", "app"}[i%2])},
			},
			Prediction: observe.Num(float64(i % 2)),
			Label:      observe.Num(float64(i / 2 % 2)),
		}
	}
	return out
}

func severities(ev Evaluation) map[string]string {
	out := map[string]string{}
	for _, f := range ev.Features {
		out[f.Feature] = f.Severity
		if f.Error != "" {
			out[f.Feature] += ": " + f.Error
		}
	}
	return out
}

// TestEngineFindsTheShiftedFeatures: the automatic reference is the first
// 500 observations; after a shift of amount (by one standard deviation)
// and of country's mix, those two go critical (ks, chisquare) and the
// others stay ok. The pinned reference and the latest evaluation survive
// a reopen.
func TestEngineFindsTheShiftedFeatures(t *testing.T) {
	ctx := context.Background()
	rg := newRig(t)
	cfg := Config{ReferenceSize: 500, CurrentWindow: 500, MinSamples: 100}
	e := rg.open(t, cfg, nil)
	r := rand.New(rand.NewPCG(11, 12))

	if err := rg.obs.Ingest(ctx, batch(r, 300, 0)); err != nil {
		t.Fatal(err)
	}
	evs, err := e.Evaluate(ctx, "fraud", "")
	if err != nil || len(evs) != 1 || evs[0].Verdict != VerdictNoReference {
		t.Fatalf("300 of 500 reference observations: %v %+v", err, evs)
	}
	if err := rg.obs.Ingest(ctx, batch(r, 700, 0)); err != nil {
		t.Fatal(err)
	}
	evs, err = e.Evaluate(ctx, "fraud", "v1")
	if err != nil || len(evs) != 1 {
		t.Fatalf("evaluate: %v %+v", err, evs)
	}
	ev := evs[0]
	if ev.Reference == nil || ev.Reference.Source != SourceAuto || ev.Reference.Observations != 500 || ev.ReferenceLabelled != 500 || ev.ReferenceAccuracy == nil {
		t.Fatalf("automatic reference: %+v", ev.Reference)
	}
	for f, s := range severities(ev) {
		if s != SeverityOK {
			t.Errorf("before the shift: %s is %s", f, s)
		}
	}
	if err := rg.obs.Ingest(ctx, batch(r, 500, 1)); err != nil {
		t.Fatal(err)
	}
	evs, _ = e.Evaluate(ctx, "fraud", "v1")
	ev = evs[0]
	want := map[string]string{"amount": "critical", "country": "critical", "age": "ok", "channel": "ok", "prediction": "ok"}
	got := severities(ev)
	for f, s := range want {
		if got[f] != s {
			t.Errorf("after the shift: %s is %q, want %s (all: %v)", f, got[f], s, got)
		}
	}
	if ev.Verdict != SeverityCritical || ev.Correction != "bonferroni" {
		t.Errorf("verdict %s, correction %s", ev.Verdict, ev.Correction)
	}
	for _, f := range ev.Features {
		if f.ReferenceN != 500 || f.CurrentN != 500 {
			t.Errorf("%s: windows %d/%d, want 500/500", f.Feature, f.ReferenceN, f.CurrentN)
		}
		wantMethod := map[bool]string{false: "ks", true: "chisquare"}[f.Categorical]
		if f.Method != wantMethod || f.PValue == nil || f.AdjustedPValue == nil || f.Threshold != 0.05 {
			t.Errorf("%s: method %s p %v adj %v threshold %v", f.Feature, f.Method, f.PValue, f.AdjustedPValue, f.Threshold)
		}
	}
	if e.Drifting() != 2 || e.Degraded() != "" {
		t.Errorf("drifting %d, degraded %q", e.Drifting(), e.Degraded())
	}

	// Reopen: the reference and the latest evaluation come back.
	e.Close()
	e2 := rg.open(t, cfg, nil)
	refs := e2.References("fraud", "v1")
	if len(refs) != 1 || refs[0].Source != SourceAuto || refs[0].Features["amount"] != 500 || !refs[0].PinnedAt.Equal(ev.Reference.PinnedAt) {
		t.Fatalf("after reopen: references %+v", refs)
	}
	if l := e2.Latest(); len(l) != 1 || severities(l[0])["amount"] != "critical" {
		t.Fatalf("after reopen: latest %+v", l)
	}
	if h, err := e2.History("fraud", "v1", "amount", 10); err != nil || len(h) != 2 || len(h[0].Features) != 1 || h[0].Features[0].Severity != "critical" {
		t.Fatalf("history: %v %+v", err, h)
	}
	// Refill puts the last 500 stored observations back in the current
	// windows: the same verdicts without new observations.
	if err := e2.Refill(ctx); err != nil {
		t.Fatal(err)
	}
	evs, _ = e2.Evaluate(ctx, "fraud", "v1")
	got = severities(evs[0])
	for f, s := range want {
		if got[f] != s {
			t.Errorf("after refill: %s is %q, want %s (all: %v)", f, got[f], s, got)
		}
	}
	for _, f := range evs[0].Features {
		if f.CurrentN != 500 {
			t.Errorf("after refill: %s current window %d, want 500", f.Feature, f.CurrentN)
		}
	}
}

// TestEngineMissingAndCrashingDetectors: a feature configured with a
// detector that is not installed carries an error, the others are still
// evaluated, and the engine reports degraded.
func TestEngineMissingDetector(t *testing.T) {
	ctx := context.Background()
	rg := newRig(t)
	models := Models{"fraud": {Features: map[string]FeatureConfig{"amount": {Detector: "nosuch"}, "channel": {Disabled: true}}}}
	e := rg.open(t, Config{ReferenceSize: 200, CurrentWindow: 200}, models)
	r := rand.New(rand.NewPCG(3, 4))
	if err := rg.obs.Ingest(ctx, batch(r, 400, 0)); err != nil {
		t.Fatal(err)
	}
	evs, err := e.Evaluate(ctx, "", "")
	if err != nil || len(evs) != 1 {
		t.Fatalf("%v %+v", err, evs)
	}
	got := severities(evs[0])
	if !strings.HasPrefix(got["amount"], "error: ") || !strings.Contains(got["amount"], `no plugin "nosuch"`) {
		t.Errorf("amount: %q", got["amount"])
	}
	if _, ok := got["channel"]; ok {
		t.Errorf("disabled feature evaluated: %v", got)
	}
	if got["age"] != "ok" || got["country"] != "ok" {
		t.Errorf("others: %v", got)
	}
	if d := e.Degraded(); !strings.Contains(d, "amount") {
		t.Errorf("degraded: %q", d)
	}
}

// TestEnginePinAndHistory: an uploaded sample and a stored range are
// pinned; DELETE leaves the version without a reference until the
// automatic one is collected again from new observations; the history is
// pruned to history_max_entries.
func TestEnginePinAndHistory(t *testing.T) {
	ctx := context.Background()
	rg := newRig(t)
	e := rg.open(t, Config{ReferenceSize: 100, CurrentWindow: 300, HistoryMaxEntries: 3}, nil)
	r := rand.New(rand.NewPCG(5, 6))
	start := time.Now().Add(-time.Second)
	if err := rg.obs.Ingest(ctx, batch(r, 300, 0)); err != nil {
		t.Fatal(err)
	}
	info, err := e.PinRange(ctx, "fraud", "v1", start, time.Now().Add(time.Second))
	if err != nil || info.Source != SourceRange || info.Observations != 300 || info.Features["country"] != 300 {
		t.Fatalf("pin range: %v %+v", err, info)
	}
	if _, err := e.PinRange(ctx, "fraud", "v2", start, time.Now()); err == nil || !strings.Contains(err.Error(), "no stored observations") {
		t.Fatalf("empty range: %v", err)
	}
	sample := Sample{Features: map[string][]observe.Value{}, Prediction: []observe.Value{observe.Num(1), observe.Num(0)}, Labels: []observe.Value{observe.Num(1), {}}}
	for range 200 {
		sample.Features["amount"] = append(sample.Features["amount"], observe.Num(r.NormFloat64()+3))
	}
	info, err = e.PinSample(ctx, "fraud", "v1", sample)
	if err != nil || info.Source != SourceUpload || info.Features["amount"] != 200 || info.Labelled != 1 || *info.ReferenceAccuracy != 1 {
		t.Fatalf("pin sample: %v %+v", err, info)
	}
	for range 5 {
		evs, _ := e.Evaluate(ctx, "fraud", "v1")
		if got := severities(evs[0]); len(got) != 2 || got["amount"] != "critical" || got["prediction"] != "insufficient_data" {
			t.Fatalf("uploaded reference: %v", got)
		}
	}
	if h, _ := e.History("fraud", "", "", 0); len(h) != 3 {
		t.Fatalf("history kept %d entries, want 3", len(h))
	}
	had, err := e.Unpin(ctx, "fraud", "v1")
	if err != nil || !had {
		t.Fatalf("unpin: %v %v", had, err)
	}
	// The 300 stored observations predate the deletion: no automatic
	// reference from them.
	if evs, _ := e.Evaluate(ctx, "fraud", "v1"); evs[0].Verdict != VerdictNoReference {
		t.Fatalf("after delete: %+v", evs[0])
	}
	if err := rg.obs.Ingest(ctx, batch(r, 100, 0)); err != nil {
		t.Fatal(err)
	}
	if evs, _ := e.Evaluate(ctx, "fraud", "v1"); evs[0].Reference == nil || evs[0].Reference.Source != SourceAuto || evs[0].Reference.Observations != 100 {
		t.Fatalf("automatic reference after delete: %+v", evs[0].Reference)
	}
}

// TestEngineJoinsLaterLabels: the reference's observations carry request
// IDs and no inline label; labels posted later (some before the reference
// is pinned, some after, some for observations outside it) count towards
// the reference accuracy, and again after a reopen.
func TestEngineJoinsLaterLabels(t *testing.T) {
	ctx := context.Background()
	rg := newRig(t)
	cfg := Config{ReferenceSize: 100, CurrentWindow: 100}
	e := rg.open(t, cfg, nil)
	obs := unlabelled(batch(rand.New(rand.NewPCG(9, 9)), 200, 0))
	if err := rg.obs.Ingest(ctx, obs); err != nil {
		t.Fatal(err)
	}
	label := func(from, to int, value float64) {
		t.Helper()
		var ls []observe.Label
		for i := from; i < to; i++ {
			ls = append(ls, observe.Label{RequestID: fmt.Sprintf("req-%d", i), Value: observe.Num(value)})
		}
		if _, err := rg.obs.AddLabels(ctx, ls); err != nil {
			t.Fatal(err)
		}
	}
	label(0, 10, 1) // before the reference is pinned: 10 correct
	evs, _ := e.Evaluate(ctx, "fraud", "v1")
	if evs[0].ReferenceLabelled != 10 || *evs[0].ReferenceAccuracy != 1 {
		t.Fatalf("10 labels: %d %v", evs[0].ReferenceLabelled, evs[0].ReferenceAccuracy)
	}
	label(10, 40, 0)   // 30 wrong
	label(150, 200, 1) // outside the reference (first 100)
	evs, _ = e.Evaluate(ctx, "fraud", "v1")
	if evs[0].ReferenceLabelled != 40 || *evs[0].ReferenceAccuracy != 0.25 {
		t.Fatalf("40 labels: %d %v", evs[0].ReferenceLabelled, *evs[0].ReferenceAccuracy)
	}
	e.Close()
	e2 := rg.open(t, cfg, nil)
	evs, _ = e2.Evaluate(ctx, "fraud", "v1")
	if evs[0].ReferenceLabelled != 40 || *evs[0].ReferenceAccuracy != 0.25 {
		t.Fatalf("after reopen: %d %v", evs[0].ReferenceLabelled, *evs[0].ReferenceAccuracy)
	}
}

// unlabelled makes obs observations whose labels come later: no inline
// label, request IDs req-0, req-1, ..., and prediction 1.
func unlabelled(obs []observe.Observation) []observe.Observation {
	for i := range obs {
		obs[i].Label = observe.Value{}
		obs[i].RequestID = fmt.Sprintf("req-%d", i)
		obs[i].Prediction = observe.Num(1)
	}
	return obs
}

// TestPinRangeCountsEarlierLabels: a reference pinned from a time range
// counts the labels posted before the pin in its answer, not only from
// the next evaluation on.
func TestPinRangeCountsEarlierLabels(t *testing.T) {
	ctx := context.Background()
	rg := newRig(t)
	e := rg.open(t, Config{ReferenceSize: 100, CurrentWindow: 100}, nil)
	obs := unlabelled(batch(rand.New(rand.NewPCG(3, 4)), 50, 0))
	if err := rg.obs.Ingest(ctx, obs); err != nil {
		t.Fatal(err)
	}
	var ls []observe.Label
	for i := range 20 {
		ls = append(ls, observe.Label{RequestID: fmt.Sprintf("req-%d", i), Value: observe.Num(float64(i % 2))})
	}
	if _, err := rg.obs.AddLabels(ctx, ls); err != nil {
		t.Fatal(err)
	}
	info, err := e.PinRange(ctx, "fraud", "v1", time.Unix(0, 0), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if info.Observations != 50 || info.Labelled != 20 || info.Correct != 10 {
		t.Fatalf("pinned: %d observations, %d labelled, %d correct; want 50, 20, 10", info.Observations, info.Labelled, info.Correct)
	}
	// The next evaluation does not count them twice.
	evs, _ := e.Evaluate(ctx, "fraud", "v1")
	if evs[0].ReferenceLabelled != 20 || *evs[0].ReferenceAccuracy != 0.5 {
		t.Fatalf("evaluation: %d labelled, accuracy %v", evs[0].ReferenceLabelled, *evs[0].ReferenceAccuracy)
	}
}

// TestEngineForgetsIdleVersions: once observe forgets a version (idle for
// observe.retention), its automatic reference and history go too; a
// reference pinned by upload stays.
func TestEngineForgetsIdleVersions(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	dir := t.TempDir()
	s, err := observe.Open(observe.Config{Path: filepath.Join(dir, "obs.db")}, observe.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rg := &rig{obs: s, host: newHost(t), dir: dir}
	e := rg.open(t, Config{ReferenceSize: 100, CurrentWindow: 100}, nil)
	r := rand.New(rand.NewPCG(1, 1))
	if err := s.Ingest(ctx, batch(r, 150, 0)); err != nil {
		t.Fatal(err)
	}
	up := Sample{Features: map[string][]observe.Value{"x": {observe.Num(1), observe.Num(2)}}}
	if _, err := e.PinSample(ctx, "spam", "v1", up); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Evaluate(ctx, "", ""); err != nil {
		t.Fatal(err)
	}
	if len(e.References("fraud", "")) != 1 || len(e.References("spam", "")) != 1 {
		t.Fatalf("references: %+v %+v", e.References("fraud", ""), e.References("spam", ""))
	}
	if h, _ := e.History("fraud", "v1", "", 0); len(h) != 1 {
		t.Fatalf("history: %d", len(h))
	}
	mu.Lock()
	now = now.Add(25 * time.Hour)
	mu.Unlock()
	if err := s.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Evaluate(ctx, "", ""); err != nil {
		t.Fatal(err)
	}
	if refs := e.References("fraud", ""); len(refs) != 0 {
		t.Errorf("automatic reference of a forgotten version kept: %+v", refs)
	}
	if h, _ := e.History("fraud", "", "", 0); len(h) != 0 {
		t.Errorf("history of a forgotten version kept: %d entries", len(h))
	}
	if len(e.References("spam", "")) != 1 {
		t.Errorf("uploaded reference dropped")
	}
	for _, ev := range e.Latest() {
		if ev.Model == "fraud" {
			t.Errorf("latest of a forgotten version kept: %+v", ev)
		}
	}
	e.Close()
	e2 := rg.open(t, Config{ReferenceSize: 100, CurrentWindow: 100}, nil)
	if len(e2.References("fraud", "")) != 0 || len(e2.References("spam", "")) != 1 {
		t.Errorf("after reopen: %+v %+v", e2.References("fraud", ""), e2.References("spam", ""))
	}
}

// TestEngineTimeWindow: with drift.current_window_time the current window
// is a reservoir sample of at most current_window values; concurrent
// batches and evaluations are race-free.
func TestEngineTimeWindow(t *testing.T) {
	ctx := context.Background()
	rg := newRig(t)
	e := rg.open(t, Config{ReferenceSize: 100, CurrentWindow: 300, CurrentWindowTime: time.Minute}, nil)
	r := rand.New(rand.NewPCG(7, 7))
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rr := rand.New(rand.NewPCG(uint64(w), 1))
			for range 5 {
				if err := rg.obs.Ingest(ctx, batch(rr, 100, 0)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for range 3 {
		if _, err := e.Evaluate(ctx, "", ""); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if err := rg.obs.Ingest(ctx, batch(r, 100, 0)); err != nil {
		t.Fatal(err)
	}
	evs, _ := e.Evaluate(ctx, "fraud", "v1")
	if evs[0].Reference == nil || len(evs[0].Features) != 5 {
		t.Fatalf("%+v", evs[0])
	}
	for _, f := range evs[0].Features {
		// The severities depend on which values the reservoir kept, which
		// depends on the order of the concurrent batches: not checked.
		if f.CurrentN != 300 || f.ReferenceN != 100 || f.Error != "" || f.Severity == SeverityInsufficientData || f.Severity == SeverityError {
			t.Errorf("%s: %+v", f.Feature, f)
		}
	}
}
