package drift

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/vigilml/vigil/agent/observe"
	"github.com/vigilml/vigil/agent/store"
)

const (
	bucketReferences = "references"
	bucketHistory    = "history"
)

// Reference sources.
const (
	SourceAuto   = "auto"
	SourceRange  = "range"
	SourceUpload = "upload"
)

// reference is a pinned reference window; immutable once built.
type reference struct {
	model, version    string
	source            string
	from, to          *time.Time
	pinnedAt          time.Time
	observations      int
	features          map[string][]observe.Value
	labelled, correct int // inline labels (and an upload's label list)

	// Labels attached later (POST /v1/labels) are joined by request ID:
	// pendingIDs are the reference observations' request IDs that had a
	// prediction but no inline label (persisted); the fields below are
	// guarded by the version state's mutex and rebuilt after a restart by
	// scanning the stored labels again.
	pendingIDs                    []string
	pending                       map[string]bool
	joinedLabelled, joinedCorrect int
	labelCursor                   []byte
}

// info describes r; the version state's mutex must be held.
func (r *reference) info() ReferenceInfo {
	lab, cor := r.labelled+r.joinedLabelled, r.correct+r.joinedCorrect
	in := ReferenceInfo{Model: r.model, Version: r.version, Source: r.source, From: r.from, To: r.to, PinnedAt: r.pinnedAt,
		Observations: r.observations, Features: map[string]int{}, Labelled: lab, Correct: cor}
	for f, v := range r.features {
		in.Features[f] = len(v)
	}
	if lab > 0 {
		a := float64(cor) / float64(lab)
		in.ReferenceAccuracy = &a
	}
	return in
}

func (r *reference) initPending() {
	r.pending = make(map[string]bool, len(r.pendingIDs))
	for _, id := range r.pendingIDs {
		r.pending[id] = true
	}
}

// refBuilder collects a reference from observations.
type refBuilder struct {
	max               int
	features          map[string][]observe.Value
	n                 int
	labelled, correct int
	pending           []string
}

func newRefBuilder(max int) *refBuilder {
	return &refBuilder{max: max, features: map[string][]observe.Value{}}
}

func (b *refBuilder) add(o *observe.Observation) {
	b.n++
	shadowed := false
	for _, f := range o.Features {
		if f.Value.IsNone() {
			continue
		}
		if f.Name == PredictionFeature {
			shadowed = true
		}
		b.put(f.Name, f.Value)
	}
	if !shadowed && !o.Prediction.IsNone() {
		b.put(PredictionFeature, o.Prediction)
	}
	switch {
	case !o.Label.IsNone() && !o.Prediction.IsNone():
		b.labelled++
		if o.Prediction.Equal(o.Label) {
			b.correct++
		}
	case !o.Prediction.IsNone() && o.RequestID != "" && len(b.pending) < b.max:
		b.pending = append(b.pending, o.RequestID)
	}
}

func (b *refBuilder) build(model, version, source string, pinnedAt time.Time) *reference {
	r := &reference{model: model, version: version, source: source, pinnedAt: pinnedAt,
		observations: b.n, features: b.features, labelled: b.labelled, correct: b.correct, pendingIDs: b.pending}
	r.initPending()
	return r
}

func (b *refBuilder) put(name string, v observe.Value) {
	vs := b.features[name]
	if len(vs) >= b.max || (vs == nil && len(b.features) >= maxFeaturesPerVersion) {
		return
	}
	b.features[name] = append(vs, v)
}

// storedRef is a reference as kept in the drift file (JSON).
type storedRef struct {
	Source       string           `json:"source"`
	From         *time.Time       `json:"from,omitempty"`
	To           *time.Time       `json:"to,omitempty"`
	PinnedAt     time.Time        `json:"pinned_at"`
	Observations int              `json:"observations"`
	Labelled     int              `json:"labelled"`
	Correct      int              `json:"correct"`
	Features     map[string][]any `json:"features,omitempty"`
	PendingIDs   []string         `json:"pending_request_ids,omitempty"`
	// AutoFrom, on a record without features, says the reference was
	// deleted: the automatic one is taken from observations after it.
	AutoFrom *time.Time `json:"auto_from,omitempty"`
}

func refKey(k vkey) []byte { return []byte(k.model + "\x00" + k.version) }

func encodeRef(r *reference) ([]byte, error) {
	s := storedRef{Source: r.source, From: r.from, To: r.to, PinnedAt: r.pinnedAt, Observations: r.observations,
		Labelled: r.labelled, Correct: r.correct, Features: map[string][]any{}, PendingIDs: r.pendingIDs}
	for f, vs := range r.features {
		out := make([]any, len(vs))
		for i, v := range vs {
			out[i] = v.Any()
		}
		s.Features[f] = out
	}
	return json.Marshal(s)
}

func decodeRef(k vkey, b []byte) (*reference, *time.Time, error) {
	var s storedRef
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, nil, err
	}
	if s.Features == nil {
		return nil, s.AutoFrom, nil
	}
	r := &reference{model: k.model, version: k.version, source: s.Source, from: s.From, to: s.To, pinnedAt: s.PinnedAt,
		observations: s.Observations, labelled: s.Labelled, correct: s.Correct, features: map[string][]observe.Value{}, pendingIDs: s.PendingIDs}
	r.initPending()
	for f, vs := range s.Features {
		out := make([]observe.Value, 0, len(vs))
		for _, v := range vs {
			switch x := v.(type) {
			case float64:
				out = append(out, observe.Num(x))
			case string:
				out = append(out, observe.Str(x))
			}
		}
		r.features[f] = out
	}
	return r, nil, nil
}

func (e *Engine) loadReferences() error {
	return e.kv.ForEach(bucketReferences, func(k, v []byte) error {
		model, version, ok := bytes.Cut(k, []byte{0})
		if !ok {
			return nil
		}
		key := vkey{string(model), string(version)}
		r, autoFrom, err := decodeRef(key, v)
		if err != nil {
			e.log.Warn("skipping a damaged drift reference", "model", key.model, "version", key.version, "err", err)
			return nil
		}
		vs := e.state(key)
		vs.ref = r
		if autoFrom != nil {
			vs.autoFrom = *autoFrom
		}
		return nil
	})
}

// pin stores r durably, then makes it the version's reference.
func (e *Engine) pin(ctx context.Context, r *reference) (ReferenceInfo, error) {
	b, err := encodeRef(r)
	if err != nil {
		return ReferenceInfo{}, err
	}
	k := vkey{r.model, r.version}
	if err := e.kv.Put(ctx, bucketReferences, refKey(k), b); err != nil {
		return ReferenceInfo{}, fmt.Errorf("store reference: %w", err)
	}
	vs := e.state(k)
	vs.mu.Lock()
	vs.ref = r
	vs.mu.Unlock()
	// Labels posted before the pin count at once, not from the next
	// evaluation on, so the answer's labelled is what the reference holds.
	if err := e.joinLabels(ctx, vs); err != nil {
		e.log.Warn("joining stored labels to a new reference failed; the next evaluation tries again", "model", r.model, "version", r.version, "err", err)
	}
	vs.mu.Lock()
	info := r.info()
	vs.mu.Unlock()
	e.log.Info("drift reference pinned", "model", r.model, "version", r.version, "source", r.source, "observations", r.observations, "features", len(r.features))
	return info, nil
}

// ErrNoObservations is returned when a time range holds no observations of
// the version.
var ErrNoObservations = errors.New("no stored observations")

// PinRange pins the stored observations of model/version with timestamps in
// [from, to) as the reference (at most drift.max_reference_values of
// them, the earliest received).
func (e *Engine) PinRange(ctx context.Context, model, version string, from, to time.Time) (ReferenceInfo, error) {
	if e.src == nil {
		return ReferenceInfo{}, errors.New("no observation store to read from")
	}
	maxValues := e.Config().MaxReferenceValues
	b := newRefBuilder(maxValues)
	err := e.src.Scan(ctx, model, version, from, to, func(o *observe.Observation) bool {
		b.add(o)
		return b.n < maxValues
	})
	if err != nil {
		return ReferenceInfo{}, err
	}
	if b.n == 0 {
		return ReferenceInfo{}, fmt.Errorf("%w of model %q version %q with timestamps in [%s, %s) (observe.retention bounds what is kept)", ErrNoObservations, model, version, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	}
	f, t := from.UTC(), to.UTC()
	r := b.build(model, version, SourceRange, e.now().UTC())
	r.from, r.to = &f, &t
	return e.pin(ctx, r)
}

// Sample is an uploaded reference: values per feature, and optionally the
// predictions with their labels (same length) for the reference accuracy.
type Sample struct {
	Features   map[string][]observe.Value
	Prediction []observe.Value
	Labels     []observe.Value
}

// PinSample pins an uploaded sample as the reference of model/version.
// The caller has validated it (finite numbers, lengths).
func (e *Engine) PinSample(ctx context.Context, model, version string, s Sample) (ReferenceInfo, error) {
	r := &reference{model: model, version: version, source: SourceUpload, pinnedAt: e.now().UTC(), features: map[string][]observe.Value{}}
	for f, vs := range s.Features {
		if len(vs) > 0 {
			r.features[f] = vs
		}
		r.observations = max(r.observations, len(vs))
	}
	if len(s.Prediction) > 0 {
		if _, dup := r.features[PredictionFeature]; !dup {
			r.features[PredictionFeature] = s.Prediction
		}
		r.observations = max(r.observations, len(s.Prediction))
		for i, l := range s.Labels {
			if l.IsNone() || s.Prediction[i].IsNone() {
				continue
			}
			r.labelled++
			if s.Prediction[i].Equal(l) {
				r.correct++
			}
		}
	}
	return e.pin(ctx, r)
}

// Unpin deletes the reference of model/version. The automatic reference,
// when on, is then taken from the first reference_size observations with
// timestamps from now. It reports whether a reference was pinned.
func (e *Engine) Unpin(ctx context.Context, model, version string) (bool, error) {
	k := vkey{model, version}
	now := e.now().UTC()
	b, _ := json.Marshal(storedRef{AutoFrom: &now})
	if err := e.kv.Put(ctx, bucketReferences, refKey(k), b); err != nil {
		return false, fmt.Errorf("store reference deletion: %w", err)
	}
	vs := e.state(k)
	vs.mu.Lock()
	had := vs.ref != nil
	vs.ref, vs.autoFrom = nil, now
	vs.mu.Unlock()
	e.mu.Lock()
	delete(e.latest, k)
	e.mu.Unlock()
	return had, nil
}

// References lists the pinned references of model (of version only when
// it is not empty).
func (e *Engine) References(model, version string) []ReferenceInfo {
	e.mu.Lock()
	var states []*versionState
	for k, vs := range e.versions {
		if k.model == model && (version == "" || k.version == version) {
			states = append(states, vs)
		}
	}
	e.mu.Unlock()
	var out []ReferenceInfo
	for _, vs := range states {
		vs.mu.Lock()
		if vs.ref != nil {
			out = append(out, vs.ref.info())
		}
		vs.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out
}

// ensureAutoReference pins the automatic reference of vs when it has none:
// its first reference_size observations (from autoFrom after a DELETE),
// read from the store once that many exist.
func (e *Engine) ensureAutoReference(ctx context.Context, vs *versionState) error {
	tun := e.tuned()
	if !*tun.cfg.AutoReference || e.src == nil {
		return nil
	}
	vs.mu.Lock()
	has, from := vs.ref != nil, vs.autoFrom
	vs.mu.Unlock()
	if has {
		return nil
	}
	n := tun.cfg.ReferenceSize
	if mc := tun.models[vs.key.model]; mc.ReferenceSize > 0 {
		n = mc.ReferenceSize
	}
	if from.IsZero() {
		// Skip the scan until observe holds enough observations.
		total := uint64(0)
		for _, m := range e.src.Models(0) {
			if m.Model != vs.key.model {
				continue
			}
			for _, v := range m.Versions {
				if v.Version == vs.key.version {
					total = v.Observations
				}
			}
		}
		if total < uint64(n) {
			return nil
		}
	}
	b := newRefBuilder(n)
	start := from
	if start.IsZero() {
		start = time.UnixMilli(0)
	}
	err := e.src.Scan(ctx, vs.key.model, vs.key.version, start, e.now().Add(24*time.Hour), func(o *observe.Observation) bool {
		b.add(o)
		return b.n < n
	})
	if err != nil {
		return err
	}
	if b.n < n {
		return nil
	}
	r := b.build(vs.key.model, vs.key.version, SourceAuto, e.now().UTC())
	if !from.IsZero() {
		r.from = &from
	}
	_, err = e.pin(ctx, r)
	return err
}

// extendRetry is how long a version waits before its stored observations
// are scanned again for late features that did not have enough values.
const extendRetry = 10 * time.Minute

// extendAutoReference completes an automatic reference with the features
// a model started to send after it was pinned: each gets, as the others
// did, the first reference_size values the version's stored observations
// hold of it, once they hold that many (and the current window at least
// min_samples), so it is evaluated like the rest. A reference pinned
// through the API is left as the operator chose it. A scan that finds too
// few values is not repeated for extendRetry.
func (e *Engine) extendAutoReference(ctx context.Context, vs *versionState) error {
	if e.src == nil {
		return nil
	}
	n := e.Config().ReferenceSize
	mc, _, minSamples := e.modelConf(vs.key.model)
	if mc.ReferenceSize > 0 {
		n = mc.ReferenceSize
	}
	now := e.now()
	vs.mu.Lock()
	ref := vs.ref
	if ref == nil || ref.source != SourceAuto || now.Sub(vs.extendTried) < extendRetry {
		vs.mu.Unlock()
		return nil
	}
	want := map[string]bool{}
	for name, w := range vs.cur {
		if _, ok := ref.features[name]; ok || mc.Features[name].Disabled || len(ref.features)+len(want) >= maxFeaturesPerVersion {
			continue
		}
		if len(w.sample(now.UnixMilli())) >= minSamples {
			want[name] = true
		}
	}
	from := time.UnixMilli(0)
	if ref.from != nil {
		from = *ref.from
	}
	vs.mu.Unlock()
	if len(want) == 0 {
		return nil
	}
	got := map[string][]observe.Value{}
	full := 0
	err := e.src.Scan(ctx, vs.key.model, vs.key.version, from, now.Add(24*time.Hour), func(o *observe.Observation) bool {
		take := func(name string, v observe.Value) {
			if !want[name] || v.IsNone() || len(got[name]) >= n {
				return
			}
			got[name] = append(got[name], v)
			if len(got[name]) == n {
				full++
			}
		}
		shadowed := false
		for _, f := range o.Features {
			shadowed = shadowed || f.Name == PredictionFeature
			take(f.Name, f.Value)
		}
		if !shadowed {
			take(PredictionFeature, o.Prediction)
		}
		return full < len(want)
	})
	if err != nil {
		return err
	}
	vs.mu.Lock()
	vs.extendTried = now
	if vs.ref != ref { // re-pinned meanwhile
		vs.mu.Unlock()
		return nil
	}
	var added []string
	for name, vals := range got {
		if len(vals) == n {
			ref.features[name] = vals
			added = append(added, name)
		}
	}
	if len(added) == 0 {
		vs.mu.Unlock()
		return nil
	}
	b, err := encodeRef(ref)
	vs.mu.Unlock()
	if err != nil {
		return err
	}
	if err := e.kv.Put(ctx, bucketReferences, refKey(vs.key), b); err != nil {
		return fmt.Errorf("store reference: %w", err)
	}
	sort.Strings(added)
	e.log.Info("automatic drift reference extended with features first seen after it was pinned", "model", vs.key.model, "version", vs.key.version, "features", added)
	return nil
}

// --- history ------------------------------------------------------------

func historyKey(k vkey, t time.Time) []byte {
	b := make([]byte, 0, len(k.model)+len(k.version)+10)
	b = append(b, k.model...)
	b = append(b, 0)
	b = append(b, k.version...)
	b = append(b, 0)
	return binary.BigEndian.AppendUint64(b, uint64(t.UnixNano()))
}

func historyPrefix(k vkey) []byte {
	b := append([]byte(k.model), 0)
	b = append(b, k.version...)
	return append(b, 0)
}

var errStop = errors.New("stop")

// storeEvaluation appends ev to the history and prunes the version's
// entries past history_retention and history_max_entries. Versions without
// a reference are not stored.
func (e *Engine) storeEvaluation(ctx context.Context, ev *Evaluation) error {
	if ev.Verdict == VerdictNoReference {
		return nil
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	k := vkey{ev.Model, ev.Version}
	prefix := historyPrefix(k)
	var keys [][]byte
	err = e.kv.ForEachFrom(bucketHistory, prefix, func(key, _ []byte) error {
		if !bytes.HasPrefix(key, prefix) {
			return errStop
		}
		keys = append(keys, append([]byte(nil), key...))
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	ops := []store.KVOp{{Bucket: bucketHistory, Key: historyKey(k, ev.EvaluatedAt), Value: b}}
	hc := e.Config()
	cutoff := uint64(ev.EvaluatedAt.Add(-hc.HistoryRetention).UnixNano())
	excess := len(keys) + 1 - hc.HistoryMaxEntries
	for i, key := range keys {
		if len(key) != len(prefix)+8 {
			continue
		}
		if i < excess || binary.BigEndian.Uint64(key[len(prefix):]) < cutoff {
			ops = append(ops, store.KVOp{Bucket: bucketHistory, Key: key, Delete: true})
		}
	}
	return e.kv.Apply(ctx, ops...)
}

// deleteVersion deletes the stored reference and history of k.
func (e *Engine) deleteVersion(ctx context.Context, k vkey) error {
	ops := []store.KVOp{{Bucket: bucketReferences, Key: refKey(k), Delete: true}}
	prefix := historyPrefix(k)
	err := e.kv.ForEachFrom(bucketHistory, prefix, func(key, _ []byte) error {
		if !bytes.HasPrefix(key, prefix) {
			return errStop
		}
		ops = append(ops, store.KVOp{Bucket: bucketHistory, Key: append([]byte(nil), key...), Delete: true})
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	return e.kv.Apply(ctx, ops...)
}

// loadLatest restores the latest evaluation of every version from the
// history, so the API answers right after a restart.
func (e *Engine) loadLatest() error {
	last := map[vkey][]byte{}
	err := e.kv.ForEach(bucketHistory, func(key, v []byte) error {
		if len(key) < 10 {
			return nil
		}
		model, rest, ok := bytes.Cut(key[:len(key)-8], []byte{0})
		if !ok {
			return nil
		}
		version := bytes.TrimSuffix(rest, []byte{0})
		last[vkey{string(model), string(version)}] = append([]byte(nil), v...)
		return nil
	})
	if err != nil {
		return err
	}
	for k, v := range last {
		var ev Evaluation
		if json.Unmarshal(v, &ev) == nil {
			e.latest[k] = &ev
		}
	}
	return nil
}

// History returns stored evaluations of model, newest first: of version
// only when it is not empty, with only the named feature when feature is
// not empty (evaluations without it are left out), at most limit.
func (e *Engine) History(model, version, feature string, limit int) ([]Evaluation, error) {
	prefix := append([]byte(model), 0)
	if version != "" {
		prefix = historyPrefix(vkey{model, version})
	}
	var all []Evaluation
	err := e.kv.ForEachFrom(bucketHistory, prefix, func(key, v []byte) error {
		if !bytes.HasPrefix(key, prefix) {
			return errStop
		}
		var ev Evaluation
		if json.Unmarshal(v, &ev) != nil {
			return nil
		}
		if feature != "" {
			var keep []FeatureResult
			for _, f := range ev.Features {
				if f.Feature == feature {
					keep = append(keep, f)
				}
			}
			if len(keep) == 0 {
				return nil
			}
			ev.Features = keep
		}
		all = append(all, ev)
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].EvaluatedAt.After(all[j].EvaluatedAt) })
	if limit > 0 && len(all) > limit {
		all = all[:limit]
	}
	return all, nil
}

// labelScanner is the optional part of Source that joins labels attached
// later (observe.Service has it).
type labelScanner interface {
	ScanLabels(ctx context.Context, model, version string, after []byte, fn func(observe.MatchedLabel) bool) ([]byte, error)
}

// joinLabels counts the labels attached since the last call to the
// reference observations of vs that had none inline.
func (e *Engine) joinLabels(ctx context.Context, vs *versionState) error {
	ls, ok := e.src.(labelScanner)
	if !ok {
		return nil
	}
	vs.mu.Lock()
	r := vs.ref
	if r == nil || len(r.pending) == 0 {
		vs.mu.Unlock()
		return nil
	}
	cursor := r.labelCursor
	vs.mu.Unlock()
	type hit struct {
		id      string
		correct bool
	}
	var hits []hit
	next, err := ls.ScanLabels(ctx, vs.key.model, vs.key.version, cursor, func(l observe.MatchedLabel) bool {
		hits = append(hits, hit{l.RequestID, l.Correct})
		return true
	})
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if vs.ref != r {
		return nil // re-pinned meanwhile
	}
	for _, h := range hits {
		if r.pending[h.id] {
			delete(r.pending, h.id)
			r.joinedLabelled++
			if h.correct {
				r.joinedCorrect++
			}
		}
	}
	r.labelCursor = next
	return err
}
