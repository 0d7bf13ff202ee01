package drift

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilml/vigil/agent/observe"
	"github.com/vigilml/vigil/agent/store"
	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

type vkey struct{ model, version string }

// Options are what Open needs besides the configuration.
type Options struct {
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Source reads stored observations (reference from a time range, the
	// automatic reference); it may be nil, and then only uploaded
	// references are possible.
	Source Source
	// Detectors runs the detector plugins.
	Detectors Detectors
	// Seed seeds the reservoir sampling (0: random).
	Seed uint64
}

// Engine evaluates drift per model version. It is safe for concurrent use.
type Engine struct {
	// cfg is the configuration at Open; its enabled, path and window
	// settings stay for the engine's life. tun holds what Reload may
	// change: everything else, and the models section.
	cfg Config
	tun atomic.Pointer[tuning]
	// reloaded tells Run that the interval may have changed.
	reloaded chan struct{}
	kv       *store.KV
	log      *slog.Logger
	now      func() time.Time
	src      Source
	det      Detectors

	mu       sync.Mutex
	versions map[vkey]*versionState
	latest   map[vkey]*Evaluation
	rng      *rand.Rand // guarded by mu; seeds each version's windows
	degraded string     // why the last pass was degraded; "" when fine

	evalMu sync.Mutex // one evaluation pass at a time

	m engineMetrics
}

// versionState is what the engine holds for one (model, version).
type versionState struct {
	key vkey

	mu      sync.Mutex
	cur     map[string]window
	seed    uint64 // of the time windows' reservoir sampling
	windows uint64 // time windows made, the second half of their seed
	ref     *reference
	// autoFrom: the automatic reference is taken from observations at or
	// after this time (zero: from the first); set by a DELETE.
	autoFrom time.Time
	// extendTried is when late features were last looked for in the
	// stored observations (extendAutoReference).
	extendTried time.Time
	// mixedWarned holds the features already logged as categorical
	// though mostly numbers, so that the warning is logged once, not
	// every evaluation.
	mixedWarned map[string]bool
}

// Open opens (creating if needed) the drift file at cfg.Path and loads the
// pinned references.
func Open(cfg Config, models Models, opts Options) (*Engine, error) {
	cfg = cfg.withDefaults()
	if cfg.Path == "" {
		return nil, errors.New("drift: path is empty")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Seed == 0 {
		opts.Seed = rand.Uint64()
	}
	kv, err := store.OpenKV(cfg.Path, opts.Logger)
	if err != nil {
		return nil, fmt.Errorf("drift: %w", err)
	}
	e := &Engine{
		cfg: cfg, reloaded: make(chan struct{}, 1), kv: kv, log: opts.Logger, now: opts.Now,
		src: opts.Source, det: opts.Detectors,
		versions: map[vkey]*versionState{},
		latest:   map[vkey]*Evaluation{},
		rng:      rand.New(rand.NewPCG(opts.Seed, 0x5eed)),
		m:        newEngineMetrics(),
	}
	e.tun.Store(&tuning{cfg: cfg, models: models})
	if err := e.loadReferences(); err != nil {
		kv.Close()
		return nil, fmt.Errorf("drift: load references from %s: %w", cfg.Path, err)
	}
	if err := e.loadLatest(); err != nil {
		kv.Close()
		return nil, fmt.Errorf("drift: load history from %s: %w", cfg.Path, err)
	}
	return e, nil
}

// Close closes the drift file.
func (e *Engine) Close() error { return e.kv.Close() }

// tuning is the part of the configuration Reload may change.
type tuning struct {
	cfg    Config
	models Models
}

// tuned returns the configuration in force now.
func (e *Engine) tuned() *tuning { return e.tun.Load() }

// Config returns the effective configuration (defaults applied).
func (e *Engine) Config() Config { return e.tuned().cfg }

// Reload applies a new drift and models configuration to the running
// engine: interval, min_samples, correction, concurrency, timeout,
// reference sizes and history bounds, and every models.<m> setting
// (detector, method, threshold, params, disabled per feature) from the next
// evaluation. enabled, path, current_window and current_window_time stay
// as they were at start (they shape state already held); the caller logs
// them as needing a restart.
func (e *Engine) Reload(cfg Config, models Models) {
	cfg = cfg.withDefaults()
	cfg.Enabled, cfg.Path, cfg.CurrentWindow, cfg.CurrentWindowTime = e.cfg.Enabled, e.cfg.Path, e.cfg.CurrentWindow, e.cfg.CurrentWindowTime
	e.tun.Store(&tuning{cfg: cfg, models: models})
	select {
	case e.reloaded <- struct{}{}:
	default:
	}
}

func (e *Engine) state(k vkey) *versionState {
	e.mu.Lock()
	defer e.mu.Unlock()
	vs := e.versions[k]
	if vs == nil {
		vs = &versionState{key: k, cur: map[string]window{}, seed: e.rng.Uint64()}
		e.versions[k] = vs
	}
	return vs
}

// newWindow makes a current window; vs.mu is held (and not e.mu: the lock
// order is e.mu, then a version's mu).
func (e *Engine) newWindow(vs *versionState) window {
	if e.cfg.CurrentWindowTime > 0 {
		vs.windows++
		return newTimeWindow(e.cfg.CurrentWindowTime.Milliseconds(), e.cfg.CurrentWindow, rand.New(rand.NewPCG(vs.seed, vs.windows)))
	}
	return newRing(e.cfg.CurrentWindow)
}

// Add folds a durable batch of observations into the current windows. It
// is observe.Service.Subscribe's callback: quick, and it keeps nothing of
// the slice but copies of the values (strings are immutable and observe's
// parser interns them, so windows share them).
func (e *Engine) Add(obs []observe.Observation) {
	nowMs := e.now().UnixMilli()
	var vs *versionState
	for i := range obs {
		o := &obs[i]
		if vs == nil || vs.key.model != o.Model || vs.key.version != o.Version {
			if vs != nil {
				vs.mu.Unlock()
			}
			vs = e.state(vkey{o.Model, o.Version})
			vs.mu.Lock()
		}
		t := min(o.UnixMs, nowMs)
		predShadowed := false
		for _, f := range o.Features {
			if f.Value.IsNone() {
				continue
			}
			if f.Name == PredictionFeature {
				predShadowed = true
			}
			vs.addValue(e, f.Name, t, f.Value)
		}
		if !predShadowed && !o.Prediction.IsNone() {
			vs.addValue(e, PredictionFeature, t, o.Prediction)
		}
	}
	if vs != nil {
		vs.mu.Unlock()
	}
}

// addValue adds to a feature's current window; vs.mu is held.
func (vs *versionState) addValue(e *Engine, name string, tMs int64, v observe.Value) {
	w := vs.cur[name]
	if w == nil {
		if len(vs.cur) >= maxFeaturesPerVersion {
			return
		}
		w = e.newWindow(vs)
		vs.cur[name] = w
	}
	w.add(tMs, v)
}

// maxFeaturesPerVersion bounds the current windows of one version, well
// above observe's default max_features.
const maxFeaturesPerVersion = 10_000

// Run evaluates every model version each drift.interval until ctx ends.
func (e *Engine) Run(ctx context.Context) {
	if !*e.cfg.Enabled {
		return
	}
	interval := e.Config().Interval
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.reloaded:
			if iv := e.Config().Interval; iv != interval {
				interval = iv
				t.Reset(interval)
			}
		case <-t.C:
			if _, err := e.Evaluate(ctx, "", ""); err != nil && ctx.Err() == nil {
				e.log.Warn("drift evaluation failed", "err", err)
			}
		}
	}
}

// knownVersions lists the versions to evaluate: those observe tracks,
// those with a pinned reference, and those seen since start. model and
// version filter it when not empty.
func (e *Engine) knownVersions(model, version string) []vkey {
	set := map[vkey]bool{}
	if e.src != nil {
		for _, m := range e.src.Models(0) {
			for _, v := range m.Versions {
				set[vkey{m.Model, v.Version}] = true
			}
		}
	}
	e.mu.Lock()
	for k := range e.versions {
		set[k] = true
	}
	e.mu.Unlock()
	var out []vkey
	for k := range set {
		if (model == "" || k.model == model) && (version == "" || k.version == version) {
			out = append(out, k)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].model != out[j].model {
			return out[i].model < out[j].model
		}
		return out[i].version < out[j].version
	})
	return out
}

// Evaluate evaluates model's versions now (every model when model is
// empty; every version when version is empty), stores and returns the
// evaluations.
func (e *Engine) Evaluate(ctx context.Context, model, version string) ([]Evaluation, error) {
	e.evalMu.Lock()
	defer e.evalMu.Unlock()
	var out []Evaluation
	var problems []string
	descs := newDescriptions(e.det)
	for _, k := range e.knownVersions(model, version) {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		vs := e.state(k)
		if err := e.ensureAutoReference(ctx, vs); err != nil {
			problems = append(problems, fmt.Sprintf("%s/%s: automatic reference: %v", k.model, k.version, err))
		}
		if err := e.extendAutoReference(ctx, vs); err != nil {
			problems = append(problems, fmt.Sprintf("%s/%s: late features of the automatic reference: %v", k.model, k.version, err))
		}
		if err := e.joinLabels(ctx, vs); err != nil {
			problems = append(problems, fmt.Sprintf("%s/%s: join labels to the reference: %v", k.model, k.version, err))
		}
		ev := e.evaluateVersion(ctx, vs, descs)
		for _, f := range ev.Features {
			if f.Error != "" {
				problems = append(problems, fmt.Sprintf("%s/%s feature %s: %s", k.model, k.version, f.Feature, f.Error))
			}
		}
		if err := e.storeEvaluation(ctx, ev); err != nil {
			problems = append(problems, fmt.Sprintf("%s/%s: store evaluation: %v", k.model, k.version, err))
		}
		e.mu.Lock()
		e.latest[k] = ev
		e.mu.Unlock()
		out = append(out, *ev)
	}
	if err := e.forgetIdle(ctx); err != nil {
		problems = append(problems, fmt.Sprintf("forget idle versions: %v", err))
	}
	e.mu.Lock()
	prev := e.degraded
	if model == "" && version == "" || len(problems) > 0 {
		e.degraded = ""
		if len(problems) > 0 {
			e.degraded = problems[0]
			if len(problems) > 1 {
				e.degraded += fmt.Sprintf(" (and %d more problems)", len(problems)-1)
			}
		}
	}
	now := e.degraded
	e.mu.Unlock()
	// One log line when the state changes, not one per pass.
	switch {
	case now != "" && now != prev:
		e.log.Warn("drift evaluation degraded", "problem", now)
	case now == "" && prev != "":
		e.log.Info("drift evaluation recovered")
	}
	return out, nil
}

// forgetIdle drops the state of versions that observe no longer tracks
// (idle for observe.retention): those without a reference, and those
// whose reference is automatic, which also lose their stored reference
// and history. A reference pinned by the API stays until DELETE. So the
// engine's memory and file follow observe's bounds.
func (e *Engine) forgetIdle(ctx context.Context) error {
	if e.src == nil {
		return nil
	}
	live := map[vkey]bool{}
	for _, m := range e.src.Models(0) {
		for _, v := range m.Versions {
			live[vkey{m.Model, v.Version}] = true
		}
	}
	var drop []vkey
	e.mu.Lock()
	for k, vs := range e.versions {
		if live[k] {
			continue
		}
		vs.mu.Lock()
		idle := vs.ref == nil || vs.ref.source == SourceAuto
		vs.mu.Unlock()
		if idle {
			// Its stored reference, or the record of a DELETE, goes too.
			delete(e.versions, k)
			delete(e.latest, k)
			drop = append(drop, k)
		}
	}
	for k := range e.latest {
		if e.versions[k] == nil && !live[k] {
			delete(e.latest, k)
		}
	}
	e.mu.Unlock()
	var errs []error
	for _, k := range drop {
		if err := e.deleteVersion(ctx, k); err != nil {
			errs = append(errs, err)
		} else {
			e.log.Info("drift state of an idle version deleted", "model", k.model, "version", k.version)
		}
	}
	return errors.Join(errs...)
}

// featurePlan is how one feature is to be evaluated.
type featurePlan struct {
	name     string
	ref, cur []observe.Value
	conf     FeatureConfig
}

func (e *Engine) modelConf(model string) (ModelConfig, Correction, int) {
	tun := e.tuned()
	mc := tun.models[model]
	corr, _ := ParseCorrection(tun.cfg.Correction)
	if mc.Correction != "" {
		corr, _ = ParseCorrection(mc.Correction)
	}
	minS := tun.cfg.MinSamples
	if mc.MinSamples > 0 {
		minS = mc.MinSamples
	}
	return mc, corr, minS
}

func (e *Engine) evaluateVersion(ctx context.Context, vs *versionState, descs *descriptions) *Evaluation {
	start := time.Now()
	now := e.now().UTC()
	mc, corr, minSamples := e.modelConf(vs.key.model)
	ev := &Evaluation{Model: vs.key.model, Version: vs.key.version, EvaluatedAt: now, Correction: string(corr), Features: []FeatureResult{}}

	vs.mu.Lock()
	ref := vs.ref
	var plans []featurePlan
	var info ReferenceInfo
	if ref != nil {
		info = ref.info()
		for name, rv := range ref.features {
			fc := mc.Features[name]
			if fc.Disabled {
				continue
			}
			var cur []observe.Value
			if w := vs.cur[name]; w != nil {
				cur = w.sample(now.UnixMilli())
			}
			plans = append(plans, featurePlan{name: name, ref: rv, cur: cur, conf: fc})
		}
	}
	vs.mu.Unlock()
	if ref == nil {
		ev.Verdict = VerdictNoReference
		ev.DurationSeconds = time.Since(start).Seconds()
		return ev
	}
	ev.Reference = &info
	ev.ReferenceAccuracy, ev.ReferenceLabelled = info.ReferenceAccuracy, info.Labelled
	sort.Slice(plans, func(i, j int) bool { return plans[i].name < plans[j].name })

	ev.Features = make([]FeatureResult, len(plans))
	resps := make([]*pb.DetectResponse, len(plans))
	sem := make(chan struct{}, e.Config().Concurrency)
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(ctx, e.Config().Timeout)
	defer cancel()
	for i := range plans {
		p := &plans[i]
		r := &ev.Features[i]
		*r = FeatureResult{Feature: p.name, ReferenceN: len(p.ref), CurrentN: len(p.cur), EvaluatedAt: now}
		req := buildRequest(p)
		r.Categorical = req.DataType == pb.DataType_CATEGORICAL
		if r.Categorical {
			r.Warning = e.mixedWarning(vs, p)
		}
		plugin := p.conf.Detector
		if plugin == "" {
			plugin = AutoMethod(r.Categorical, len(p.ref), len(p.cur))
		}
		req.Method = p.conf.Method
		if req.Method == "" {
			req.Method = plugin
		}
		req.Threshold = p.conf.Threshold
		req.Params = p.conf.Params
		r.Detector, r.Method = plugin, req.Method
		if len(p.ref) < minSamples || len(p.cur) < minSamples {
			r.Severity = SeverityInsufficientData
			continue
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				ev.Features[i].Error = ctx.Err().Error()
				return
			}
			defer func() { <-sem }()
			// A feature of a type the method does not declare is not
			// sent: not every plugin checks, and one that does not would
			// answer about values it cannot compare. When Describe fails,
			// Detect says why (missing, crashed plugin).
			if desc, err := descs.get(ctx, plugin); err == nil {
				if err := checkDataType(desc, vs.key.model, plugin, req); err != nil {
					ev.Features[i].Error = err.Error()
					return
				}
			}
			resp, err := e.det.Detect(ctx, plugin, req)
			if err == nil && (resp == nil || math.IsNaN(resp.GetStatistic()) || (resp.PValue != nil && (math.IsNaN(resp.GetPValue()) || resp.GetPValue() < 0 || resp.GetPValue() > 1))) {
				err = fmt.Errorf("plugin %q answered an invalid result (statistic %v, p-value %v)", plugin, resp.GetStatistic(), resp.PValue)
			}
			if err != nil {
				ev.Features[i].Error = "detector " + plugin + ": " + errString(err)
				return
			}
			resps[i] = resp
		}(i)
	}
	wg.Wait()
	classify(ev, plans, resps, corr)
	ev.DurationSeconds = time.Since(start).Seconds()
	e.m.observe(ev)
	return ev
}

func errString(err error) string {
	var se *sdk.Error
	if errors.As(err, &se) {
		if se.Field != "" {
			// The field a plugin names (params.bins) says what to fix.
			return fmt.Sprintf("%s (%s): %s", se.Class, se.Field, se.Message)
		}
		return fmt.Sprintf("%s: %s", se.Class, se.Message)
	}
	return err.Error()
}

// mixedWarning says so when a categorical feature has mostly numbers
// among its values: a string such as "missing" sent in a numeric feature
// makes it categorical, and chisquare then pools its many distinct numbers
// into one column and finds no drift however far they moved. The warning
// goes into the feature's result at every evaluation, and into the log
// once per feature of a version.
func (e *Engine) mixedWarning(vs *versionState, p *featurePlan) string {
	var numbers, total int
	first := ""
	for _, side := range [][]observe.Value{p.ref, p.cur} {
		for _, v := range side {
			total++
			switch {
			case v.Kind == observe.KindNumber:
				numbers++
			case first == "":
				first = v.String()
			}
		}
	}
	if 2*numbers <= total {
		return ""
	}
	warning := fmt.Sprintf("compared as categories because of strings such as %q, though %d of its %d values are numbers: the numbers' drift is not measured; leave a missing number out of the observation instead of sending a string", first, numbers, total)
	vs.mu.Lock()
	warned := vs.mixedWarned[p.name]
	if !warned {
		if vs.mixedWarned == nil {
			vs.mixedWarned = map[string]bool{}
		}
		vs.mixedWarned[p.name] = true
	}
	vs.mu.Unlock()
	if warned {
		return warning
	}
	e.log.Warn("drift feature is categorical though most of its values are numbers: a string in a numeric feature makes it categorical, and chisquare then finds no drift in the numbers; leave missing numbers out of the observation",
		"model", vs.key.model, "version", vs.key.version, "feature", p.name, "numbers", numbers, "values", total, "first_string", first)
	return warning
}

// buildRequest turns the two samples into a detect request: categorical
// when any value of either is a string (numbers then compare by their
// canonical text), numeric otherwise.

func buildRequest(p *featurePlan) *sdk.DetectRequest {
	cat := false
	for _, side := range [][]observe.Value{p.ref, p.cur} {
		for _, v := range side {
			if v.Kind == observe.KindString {
				cat = true
				break
			}
		}
	}
	req := &sdk.DetectRequest{Feature: p.name, DataType: pb.DataType_NUMERIC}
	if cat {
		req.DataType = pb.DataType_CATEGORICAL
		req.ReferenceCategorical = make([]string, len(p.ref))
		req.CurrentCategorical = make([]string, len(p.cur))
		for i, v := range p.ref {
			req.ReferenceCategorical[i] = v.String()
		}
		for i, v := range p.cur {
			req.CurrentCategorical[i] = v.String()
		}
		return req
	}
	req.ReferenceNumeric = make([]float64, len(p.ref))
	req.CurrentNumeric = make([]float64, len(p.cur))
	for i, v := range p.ref {
		req.ReferenceNumeric[i] = v.Num
	}
	for i, v := range p.cur {
		req.CurrentNumeric[i] = v.Num
	}
	return req
}

// classify fills statistic, p-values, thresholds and severities from the
// detector answers, applies the correction across the p-value features and
// sets the verdict.
//
// A p-value method (direction P_VALUE_BELOW) is critical when its
// adjusted p-value is below its threshold, warning when only its raw
// p-value is, ok otherwise. A statistic method (STATISTIC_ABOVE) is
// critical above its threshold, warning above its warning level (default
// half the threshold), ok otherwise. A plugin that states no direction is
// critical when it says drifted.
func classify(ev *Evaluation, plans []featurePlan, resps []*pb.DetectResponse, corr Correction) {
	var pidx []int
	var ps []float64
	for i, resp := range resps {
		r := &ev.Features[i]
		if resp == nil {
			if r.Error != "" {
				r.Severity = SeverityError
			}
			continue
		}
		r.Statistic, r.Threshold = resp.GetStatistic(), resp.GetThreshold()
		if resp.GetMethod() != "" {
			r.Method = resp.GetMethod()
		}
		if resp.PValue != nil {
			p := resp.GetPValue()
			r.PValue = &p
		}
		switch {
		case resp.GetDirection() == pb.Direction_P_VALUE_BELOW && r.PValue != nil:
			pidx = append(pidx, i)
			ps = append(ps, *r.PValue)
		case resp.GetDirection() == pb.Direction_STATISTIC_ABOVE:
			w := r.Threshold / 2
			if c := plans[i].conf.Warning; c != nil {
				w = *c
			}
			r.WarningThreshold = &w
			switch {
			case r.Statistic > r.Threshold:
				r.Severity = SeverityCritical
			case r.Statistic > w:
				r.Severity = SeverityWarning
			default:
				r.Severity = SeverityOK
			}
		default:
			r.Severity = SeverityOK
			if resp.GetDrifted() {
				r.Severity = SeverityCritical
			}
		}
	}
	if len(ps) > 0 {
		adj, _ := Adjust(corr, ps, 0.05)
		for j, i := range pidx {
			r := &ev.Features[i]
			a := adj[j]
			r.AdjustedPValue = &a
			switch {
			case a < r.Threshold:
				r.Severity = SeverityCritical
			case *r.PValue < r.Threshold:
				r.Severity = SeverityWarning
			default:
				r.Severity = SeverityOK
			}
		}
	}
	ev.Verdict = SeverityInsufficientData
	rank := map[string]int{SeverityOK: 1, SeverityWarning: 2, SeverityCritical: 3}
	best := 0
	for _, r := range ev.Features {
		if rank[r.Severity] > best {
			best, ev.Verdict = rank[r.Severity], r.Severity
		}
	}
}

// Latest returns the latest evaluation of every (model, version), sorted
// by model and version.
func (e *Engine) Latest() []Evaluation {
	e.mu.Lock()
	out := make([]Evaluation, 0, len(e.latest))
	for _, ev := range e.latest {
		out = append(out, *ev)
	}
	e.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Model != out[j].Model {
			return out[i].Model < out[j].Model
		}
		return out[i].Version < out[j].Version
	})
	return out
}

// Model returns the latest evaluations of model (of version only when it
// is not empty); ok is false when the engine knows nothing of it.
func (e *Engine) Model(model, version string) (evs []Evaluation, ok bool) {
	for _, ev := range e.Latest() {
		if ev.Model == model && (version == "" || ev.Version == version) {
			evs = append(evs, ev)
		}
	}
	if len(evs) > 0 {
		return evs, true
	}
	return nil, len(e.knownVersions(model, version)) > 0
}

// Known reports whether the engine or the observations know model (and
// version, when not empty).
func (e *Engine) Known(model, version string) bool {
	return len(e.knownVersions(model, version)) > 0
}

// Drifting counts the features whose latest severity is critical, over
// every model version: the fleet health tag.
func (e *Engine) Drifting() int {
	n := 0
	for _, ev := range e.Latest() {
		for _, f := range ev.Features {
			if f.Severity == SeverityCritical {
				n++
			}
		}
	}
	return n
}

// Degraded returns why the last evaluation pass was degraded (a detector
// failed, a store write failed), or "" when it was not.
func (e *Engine) Degraded() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.degraded
}

// RefillLookback is how far back Refill reads stored observations into a
// count window (a time window reads its own span).
const RefillLookback = time.Hour

// Refill fills the current windows from the stored observations of the
// last RefillLookback (count window) or drift.current_window_time (time
// window), so that a restart does not empty them. Call it before
// observations arrive through Add (the agent calls it before its API
// serves), or they would be counted twice.
func (e *Engine) Refill(ctx context.Context) error {
	if e.src == nil {
		return nil
	}
	start := time.Now()
	now := e.now()
	look := RefillLookback
	if e.cfg.CurrentWindowTime > 0 {
		look = e.cfg.CurrentWindowTime
	}
	n := 0
	for _, m := range e.src.Models(0) {
		buf := make([]observe.Observation, 1)
		err := e.src.Scan(ctx, m.Model, "", now.Add(-look), now.Add(24*time.Hour), func(o *observe.Observation) bool {
			buf[0] = *o
			e.Add(buf)
			n++
			return true
		})
		if err != nil {
			return fmt.Errorf("drift: refill the current windows of %q: %w", m.Model, err)
		}
	}
	e.log.Info("drift current windows refilled", "observations", n, "took", time.Since(start).Round(time.Millisecond).String())
	return nil
}
