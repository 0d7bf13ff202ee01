package fleet

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
	"github.com/hashicorp/serf/serf"
)

// StatsQuery is the serf query that gathers one model's statistics.
const StatsQuery = "vigil-stats"

// StatsAccuracy is the relative accuracy of the sketches nodes answer with.
// A node re-bins its own sketch into this coarser mapping so that the answer
// fits serf's 1 KiB query-response limit: at 2 % one bin spans a factor of
// about 1.04, so 160 bins cover a 600x latency range (say 0.5 ms to 300 ms);
// lower latencies than that collapse into the lowest bin, which only
// affects quantiles far below the median. The merged quantiles carry the
// source sketch's error plus this one's.
const StatsAccuracy = 0.02

// statsMaxBins bounds the bins of an answer; halved until it fits.
const statsMaxBins = 160

// maxModelName bounds the query payload (serf's query limit is 1 KiB).
const maxModelName = 256

// ModelStats is one node's statistics for one model.
type ModelStats struct {
	// Latency holds request latencies in milliseconds.
	Latency  *ddsketch.DDSketch
	Requests uint64
	Errors   uint64
}

// StatsSource gives this node's statistics for a model; ok is false when
// the node does not serve it. agent/observe implements it.
type StatsSource interface {
	ModelStats(model string) (s ModelStats, ok bool)
}

// SetStatsSource sets where this node's answers to fleet stats queries come
// from.
func (f *Fleet) SetStatsSource(s StatsSource) {
	f.mu.Lock()
	f.stats = s
	f.mu.Unlock()
}

func statsMapping() mapping.IndexMapping {
	m, err := mapping.NewLogarithmicMapping(StatsAccuracy)
	if err != nil {
		panic(err) // a constant accuracy that is valid
	}
	return m
}

// encodeStats writes an answer: a version byte, a has-data byte, requests
// and errors as uvarints, then the sketch without its index mapping (both
// sides use statsMapping). It re-bins with fewer bins until the answer fits
// within limit bytes.
func encodeStats(s ModelStats, ok bool, limit int) ([]byte, error) {
	head := []byte{1, 0}
	if !ok {
		return head, nil
	}
	head[1] = 1
	head = binary.AppendUvarint(head, s.Requests)
	head = binary.AppendUvarint(head, s.Errors)
	for bins := statsMaxBins; bins >= 8; bins /= 2 {
		sk := ddsketch.NewDDSketch(statsMapping(), store.NewCollapsingLowestDenseStore(bins), store.NewCollapsingLowestDenseStore(bins))
		if s.Latency != nil {
			var addErr error
			s.Latency.ForEach(func(v, c float64) bool {
				addErr = sk.AddWithCount(v, c)
				return addErr != nil
			})
			if addErr != nil {
				return nil, addErr
			}
		}
		b := append([]byte(nil), head...)
		sk.Encode(&b, true)
		if len(b) <= limit {
			return b, nil
		}
	}
	return nil, fmt.Errorf("stats answer does not fit in %d bytes", limit)
}

func decodeStats(b []byte) (ModelStats, bool, error) {
	if len(b) < 2 || b[0] != 1 {
		return ModelStats{}, false, errors.New("unknown stats answer format")
	}
	if b[1] == 0 {
		return ModelStats{}, false, nil
	}
	b = b[2:]
	req, n := binary.Uvarint(b)
	if n <= 0 {
		return ModelStats{}, false, errors.New("bad request count")
	}
	b = b[n:]
	errs, n := binary.Uvarint(b)
	if n <= 0 {
		return ModelStats{}, false, errors.New("bad error count")
	}
	b = b[n:]
	sk, err := ddsketch.DecodeDDSketch(b, store.DenseStoreConstructor, statsMapping())
	if err != nil {
		return ModelStats{}, false, fmt.Errorf("bad sketch: %w", err)
	}
	return ModelStats{Latency: sk, Requests: req, Errors: errs}, true, nil
}

func (f *Fleet) answerStats(q *serf.Query) {
	f.mu.Lock()
	src := f.stats
	f.mu.Unlock()
	var (
		s  ModelStats
		ok bool
	)
	if src != nil && len(q.Payload) <= maxModelName {
		s, ok = src.ModelStats(string(q.Payload))
	}
	// serf's limit covers the whole response message: leave room for the
	// envelope and this node's name.
	b, err := encodeStats(s, ok, 1024-96-len(f.opts.NodeName))
	if err != nil {
		f.logger.Warn("cannot answer fleet stats query", "model", string(q.Payload), "err", err)
		return
	}
	f.logger.Debug("answering fleet stats query", "model", string(q.Payload), "bytes", len(b), "serving", ok)
	if err := q.Respond(b); err != nil {
		f.logger.Warn("cannot answer fleet stats query", "model", string(q.Payload), "err", err)
	}
}

// FleetStats is the merged answer of a fleet stats query.
type FleetStats struct {
	Model string `json:"model"`
	// RelativeAccuracy is the accuracy of the answers' sketches.
	RelativeAccuracy float64 `json:"relative_accuracy"`
	// Nodes is the number of nodes that serve the model and answered.
	Nodes     int      `json:"nodes"`
	Requests  uint64   `json:"requests"`
	Errors    uint64   `json:"errors"`
	ErrorRate *float64 `json:"error_rate"`
	P50Ms     *float64 `json:"p50_ms"`
	P95Ms     *float64 `json:"p95_ms"`
	P99Ms     *float64 `json:"p99_ms"`
	// Asked is the number of alive members the query went to.
	Asked int `json:"asked"`
	// Answered lists the nodes with data; NotServing the nodes that
	// answered without it; Missing the alive nodes that did not answer
	// before the timeout; Invalid the nodes whose answer was unreadable.
	Answered   []string `json:"answered"`
	NotServing []string `json:"not_serving"`
	Missing    []string `json:"missing"`
	Invalid    []string `json:"invalid,omitempty"`
	// NotAsked maps the members the query did not go to, because they
	// are failed or left, to that status, as KeyringResult does: whatever
	// they served is not in the numbers.
	NotAsked map[string]string `json:"not_asked,omitempty"`
	TookMs   float64           `json:"took_ms"`
}

// Incomplete says which alive nodes the numbers lack, or returns nil when
// every alive node asked answered: those that did not answer in time and
// those whose answer was unreadable. Failed and left members (NotAsked)
// do not make an answer incomplete.
func (s FleetStats) Incomplete() error {
	var parts []string
	if len(s.Missing) > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d alive nodes did not answer in time (%s)", len(s.Missing), s.Asked, strings.Join(s.Missing, ", ")))
	}
	if len(s.Invalid) > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d alive nodes answered unreadably (%s)", len(s.Invalid), s.Asked, strings.Join(s.Invalid, ", ")))
	}
	if len(parts) == 0 {
		return nil
	}
	return fmt.Errorf("fleet stats %s: incomplete: %s; the numbers cover only the nodes that answered; run it again once every alive node answers", s.Model, strings.Join(parts, "; "))
}

// Stats asks every alive node for model's statistics and merges them.
func (f *Fleet) Stats(ctx context.Context, model string) (FleetStats, error) {
	if model == "" || len(model) > maxModelName {
		return FleetStats{}, fmt.Errorf("model name must be 1 to %d bytes", maxModelName)
	}
	timeout := f.cfg.QueryTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	start := time.Now()
	alive, notAsked := queryAudience(f.serf.Members())
	f.m.queries.WithLabelValues(StatsQuery).Inc()
	resp, err := f.serf.Query(StatsQuery, []byte(model), &serf.QueryParam{Timeout: timeout})
	if err != nil {
		return FleetStats{}, fmt.Errorf("fleet stats query: %w", err)
	}
	out := FleetStats{Model: model, RelativeAccuracy: StatsAccuracy, Asked: len(alive), Answered: []string{}, NotServing: []string{}, Missing: []string{}, NotAsked: notAsked}
	merged := ddsketch.NewDDSketch(statsMapping(), store.NewDenseStore(), store.NewDenseStore())
	seen := map[string]bool{}
	ch := resp.ResponseCh()
loop:
	for {
		select {
		case <-ctx.Done():
			resp.Close()
			break loop
		case r, ok := <-ch:
			if !ok {
				break loop
			}
			if seen[r.From] {
				continue
			}
			seen[r.From] = true
			done := true
			for name := range alive {
				if !seen[name] {
					done = false
				}
			}
			s, has, err := decodeStats(r.Payload)
			switch {
			case err != nil:
				out.Invalid = append(out.Invalid, r.From)
				f.logger.Warn("unreadable fleet stats answer", "node", r.From, "err", err)
			case !has:
				out.NotServing = append(out.NotServing, r.From)
			default:
				out.Answered = append(out.Answered, r.From)
				out.Requests += s.Requests
				out.Errors += s.Errors
				if err := merged.MergeWith(s.Latency); err != nil {
					return FleetStats{}, fmt.Errorf("merge %s's sketch: %w", r.From, err)
				}
			}
			if done {
				// Every alive node answered: no need to wait out the timeout.
				resp.Close()
				break loop
			}
		}
	}
	for name := range alive {
		if !seen[name] {
			out.Missing = append(out.Missing, name)
		}
	}
	f.m.queryTimeouts.Add(float64(len(out.Missing)))
	for _, l := range [][]string{out.Answered, out.NotServing, out.Missing, out.Invalid} {
		sort.Strings(l)
	}
	out.Nodes = len(out.Answered)
	if out.Requests > 0 {
		r := float64(out.Errors) / float64(out.Requests)
		out.ErrorRate = &r
	}
	if !merged.IsEmpty() {
		qs, err := merged.GetValuesAtQuantiles([]float64{0.5, 0.95, 0.99})
		if err == nil {
			out.P50Ms, out.P95Ms, out.P99Ms = round3(qs[0]), round3(qs[1]), round3(qs[2])
		}
	}
	out.TookMs = float64(time.Since(start).Microseconds()) / 1000
	return out, nil
}

// queryAudience sorts members into those a serf query goes to, which must
// answer for the result to be complete, and those it does not (failed and
// left, by status). A member still "leaving" is asked: serf's query reaches
// it while memberlist holds it alive, and a node may stay "leaving" in one
// member's view long after it came back (a member restarted from a
// snapshot that recorded its leave), so leaving it out would drop it from
// the answer without a word.
func queryAudience(members []serf.Member) (asked map[string]bool, notAsked map[string]string) {
	asked = map[string]bool{}
	for _, m := range members {
		switch m.Status {
		case serf.StatusAlive, serf.StatusLeaving:
			asked[m.Name] = true
		case serf.StatusFailed, serf.StatusLeft:
			if notAsked == nil {
				notAsked = map[string]string{}
			}
			notAsked[m.Name] = m.Status.String()
		}
	}
	return asked, notAsked
}

func round3(v float64) *float64 {
	r := math.Round(v*1000) / 1000
	return &r
}
