package drift

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/vigilml/vigil/agent/observe"
)

// withTenure adds the feature tenure (the same 100 values in a cycle) to
// observations, as a model that starts sending a new input does.
func withTenure(obs []observe.Observation) []observe.Observation {
	for i := range obs {
		obs[i].Features = append(obs[i].Features, observe.Feature{Name: "tenure", Value: observe.Num(grid(i) * 10)})
	}
	return obs
}

func featureResult(ev Evaluation, name string) *FeatureResult {
	for i := range ev.Features {
		if ev.Features[i].Feature == name {
			return &ev.Features[i]
		}
	}
	return nil
}

// TestAutoReferenceTakesLateFeatures: a feature a model starts to send
// after the automatic reference was pinned joins it once the stored
// observations hold reference_size values of it (looked for again at most
// every extendRetry), is then evaluated like the others, and is kept in
// the drift file. A reference pinned through the API is not extended.
func TestAutoReferenceTakesLateFeatures(t *testing.T) {
	ctx := context.Background()
	rg := newRig(t)
	var mu sync.Mutex
	clock := time.Now()
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	cfg := Config{ReferenceSize: 500, CurrentWindow: 500, MinSamples: 100}
	open := func() *Engine {
		e := rg.openAt(t, cfg, nil, now)
		if err := e.Refill(ctx); err != nil {
			t.Fatal(err)
		}
		return e
	}
	e := open()
	r := rand.New(rand.NewPCG(1, 2))
	eval := func(e *Engine) Evaluation {
		t.Helper()
		evs, err := e.Evaluate(ctx, "fraud", "v1")
		if err != nil || len(evs) != 1 {
			t.Fatalf("evaluate: %v %+v", err, evs)
		}
		return evs[0]
	}

	if err := rg.obs.Ingest(ctx, batch(r, 600, 0)); err != nil {
		t.Fatal(err)
	}
	if ev := eval(e); ev.Reference == nil || ev.Reference.Source != SourceAuto || featureResult(ev, "tenure") != nil {
		t.Fatalf("automatic reference: %+v", ev.Reference)
	}
	// tenure appears: 300 stored values, fewer than reference_size.
	if err := rg.obs.Ingest(ctx, withTenure(batch(r, 300, 0))); err != nil {
		t.Fatal(err)
	}
	if ev := eval(e); featureResult(ev, "tenure") != nil {
		t.Fatalf("tenure evaluated with 300 of 500 reference values: %+v", featureResult(ev, "tenure"))
	}
	// 600 stored now, but the last look was less than extendRetry ago.
	if err := rg.obs.Ingest(ctx, withTenure(batch(r, 300, 0))); err != nil {
		t.Fatal(err)
	}
	if ev := eval(e); featureResult(ev, "tenure") != nil {
		t.Fatal("stored observations scanned again before extendRetry")
	}
	advance(extendRetry + time.Second)
	ev := eval(e)
	f := featureResult(ev, "tenure")
	if f == nil || f.ReferenceN != 500 || f.Severity != SeverityOK || ev.Reference.Observations != 500 {
		t.Fatalf("after extendRetry: tenure %+v, reference %+v", f, ev.Reference)
	}
	if got := severities(ev); len(got) != 6 {
		t.Fatalf("features evaluated: %v", got)
	}

	// Kept across a reopen.
	e.Close()
	e = open()
	if f := featureResult(eval(e), "tenure"); f == nil || f.ReferenceN != 500 {
		t.Fatalf("after reopening: tenure %+v", f)
	}

	// An uploaded reference stays as uploaded.
	up := Sample{Features: map[string][]observe.Value{}}
	for _, o := range batch(r, 200, 0) {
		up.Features["amount"] = append(up.Features["amount"], o.Features[0].Value)
	}
	if _, err := e.PinSample(ctx, "fraud", "v1", up); err != nil {
		t.Fatal(err)
	}
	advance(extendRetry + time.Second)
	if got := severities(eval(e)); len(got) != 1 || got["amount"] == "" {
		t.Fatalf("the uploaded reference was extended: %v", got)
	}
}

// TestReloadTunesTheNextEvaluation: a reload's models settings (a feature
// disabled, another's detector and threshold) and min_samples apply from
// the next evaluation; the window settings stay as at start.
func TestReloadTunesTheNextEvaluation(t *testing.T) {
	ctx := context.Background()
	rg := newRig(t)
	e := rg.open(t, Config{ReferenceSize: 500, CurrentWindow: 500, MinSamples: 100}, nil)
	r := rand.New(rand.NewPCG(3, 4))
	if err := rg.obs.Ingest(ctx, batch(r, 1000, 0)); err != nil {
		t.Fatal(err)
	}
	evs, err := e.Evaluate(ctx, "fraud", "v1")
	if err != nil || len(evs) != 1 || featureResult(evs[0], "age") == nil || featureResult(evs[0], "amount").Detector != "ks" {
		t.Fatalf("before: %v %+v", err, evs)
	}
	thr := 0.3
	e.Reload(Config{ReferenceSize: 500, CurrentWindow: 9999, MinSamples: 100}, Models{"fraud": {Features: map[string]FeatureConfig{
		"age":    {Disabled: true},
		"amount": {Detector: "psi", Threshold: &thr},
	}}})
	if e.Config().CurrentWindow != 500 {
		t.Fatalf("current_window changed by a reload: %d", e.Config().CurrentWindow)
	}
	evs, err = e.Evaluate(ctx, "fraud", "v1")
	if err != nil || len(evs) != 1 {
		t.Fatalf("after: %v %+v", err, evs)
	}
	if f := featureResult(evs[0], "age"); f != nil {
		t.Fatalf("age still evaluated after being disabled: %+v", f)
	}
	if f := featureResult(evs[0], "amount"); f == nil || f.Detector != "psi" || f.Threshold != 0.3 {
		t.Fatalf("amount after the reload: %+v", f)
	}
	e.Reload(Config{ReferenceSize: 500, CurrentWindow: 500, MinSamples: 800}, nil)
	evs, _ = e.Evaluate(ctx, "fraud", "v1")
	if f := featureResult(evs[0], "amount"); f == nil || f.Severity != SeverityInsufficientData || f.Detector != "ks" {
		t.Fatalf("min_samples 800 over windows of 500, models cleared: %+v", f)
	}
}
