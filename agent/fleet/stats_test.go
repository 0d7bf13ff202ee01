package fleet

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/hashicorp/serf/serf"
)

// fixedStats is a StatsSource over fixed latencies, as observe would keep
// them (a 1 % sketch).
type fixedStats struct {
	model    string
	lat      []float64
	requests uint64
	errors   uint64
}

func (s fixedStats) ModelStats(model string) (ModelStats, bool) {
	if model != s.model {
		return ModelStats{}, false
	}
	sk, _ := ddsketch.NewDefaultDDSketch(0.01)
	for _, v := range s.lat {
		_ = sk.Add(v)
	}
	return ModelStats{Latency: sk, Requests: s.requests, Errors: s.errors}, true
}

func exactQuantile(vals []float64, q float64) float64 {
	s := append([]float64(nil), vals...)
	sort.Float64s(s)
	return s[int(q*float64(len(s)-1))]
}

// TestFleetStatsMerge feeds four nodes different latency distributions,
// asks one of them for fleet stats, and checks the merged quantiles against
// the exact quantiles of the union: the error must stay within the sketches'
// combined relative accuracy (1 % source, 2 % answer).
func TestFleetStatsMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dists := []func() float64{
		func() float64 { return 20 + rng.Float64()*10 },               // fast, uniform 20-30 ms
		func() float64 { return math.Exp(rng.NormFloat64()*0.5 + 4) }, // log-normal around 55 ms
		func() float64 { return 100 + rng.ExpFloat64()*80 },           // slow, long tail
		func() float64 { return 5 + math.Abs(rng.NormFloat64())*1.5 }, // very fast
	}
	var all []float64
	var nodes []*testNode
	var reqs, errs uint64
	for i, d := range dists {
		n := startNode(t, fmt.Sprintf("n%d", i), nil)
		lat := make([]float64, 2000+i*1500)
		for j := range lat {
			lat[j] = d()
		}
		all = append(all, lat...)
		src := fixedStats{model: "llama", lat: lat, requests: uint64(len(lat)), errors: uint64(10 * (i + 1))}
		reqs += src.requests
		errs += src.errors
		n.SetStatsSource(src)
		nodes = append(nodes, n)
	}
	// A fifth node does not serve the model.
	other := startNode(t, "other", nil)
	other.SetStatsSource(fixedStats{model: "bert"})
	nodes = append(nodes, other)
	for _, n := range nodes[1:] {
		if err := n.Join([]string{nodes[0].addr}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "5 alive on n0", func() bool { return aliveCount(nodes[0].Fleet) == 5 })

	st, err := nodes[0].Stats(context.Background(), "llama")
	if err != nil {
		t.Fatal(err)
	}
	if st.Nodes != 4 || len(st.NotServing) != 1 || st.NotServing[0] != "other" || len(st.Missing) != 0 {
		t.Fatalf("answers: %+v", st)
	}
	if st.Requests != reqs || st.Errors != errs || math.Abs(*st.ErrorRate-float64(errs)/float64(reqs)) > 1e-12 {
		t.Errorf("counts %d/%d rate %v, want %d/%d", st.Errors, st.Requests, *st.ErrorRate, errs, reqs)
	}
	bound := (1+0.01)*(1+StatsAccuracy) - 1 + 1e-6
	for _, c := range []struct {
		q   float64
		got *float64
	}{{0.5, st.P50Ms}, {0.95, st.P95Ms}, {0.99, st.P99Ms}} {
		want := exactQuantile(all, c.q)
		if c.got == nil || math.Abs(*c.got-want)/want > bound {
			t.Errorf("p%v = %v, exact %v (bound %.2f%%)", c.q*100, *c.got, want, bound*100)
		}
	}

	// A node that dies is listed as missing once it stops answering, or
	// as not asked once the others mark it failed. (On a loaded machine a
	// live node's answer can miss the query's deadline too; it is then
	// asked again, up to three times.)
	nodes[3].Shutdown()
	for try := 1; ; try++ {
		st, err = nodes[0].Stats(context.Background(), "llama")
		if err != nil {
			t.Fatal(err)
		}
		gone := slices.Equal(st.Missing, []string{"n3"}) || (len(st.Missing) == 0 && st.NotAsked["n3"] == "failed")
		if gone && st.Nodes == 3 {
			break
		}
		if !slices.Contains(st.Missing, "n3") && st.NotAsked["n3"] == "" || try == 3 {
			t.Fatalf("after n3 died (try %d): answered %v missing %v not serving %v not asked %v took %vms", try, st.Answered, st.Missing, st.NotServing, st.NotAsked, st.TookMs)
		}
		t.Logf("try %d: a live node's answer came late too: missing %v", try, st.Missing)
	}
	if _, err := nodes[0].Stats(context.Background(), ""); err == nil {
		t.Error("empty model accepted")
	}
}

// stuckStats is a StatsSource that does not answer until released: its
// node stays alive but misses every query's deadline.
type stuckStats struct{ release chan struct{} }

func (s stuckStats) ModelStats(string) (ModelStats, bool) {
	<-s.release
	return ModelStats{}, false
}

// TestFleetStatsIncomplete: vigil fleet stats said nothing of failed and
// left members and exited 0 when an alive node did not answer. The answer
// now names the failed and left members it did not ask, lists the alive
// node that did not answer as missing, and says it is incomplete.
func TestFleetStatsIncomplete(t *testing.T) {
	asker := startNode(t, "asker", func(c *Config) { c.QueryTimeout = 500 * time.Millisecond })
	asker.SetStatsSource(fixedStats{model: "llama", lat: []float64{10, 20}, requests: 2})
	stuck := startNode(t, "stuck", nil)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // before stuck's shutdown, which waits for its event loop
	stuck.SetStatsSource(stuckStats{release: release})
	gone := startNode(t, "gone", nil)
	dead := startNode(t, "dead", nil)
	for _, n := range []*testNode{stuck, gone, dead} {
		if err := n.Join([]string{asker.addr}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "4 alive", func() bool { return aliveCount(asker.Fleet) == 4 })
	if err := gone.Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	dead.Shutdown() // no leave: the others mark it failed
	waitFor(t, 20*time.Second, "gone left and dead failed", func() bool {
		st := map[string]string{}
		for _, m := range asker.Members() {
			st[m.Name] = m.Status
		}
		return st["gone"] == "left" && st["dead"] == "failed"
	})
	st, err := asker.Stats(context.Background(), "llama")
	if err != nil {
		t.Fatal(err)
	}
	if st.Asked != 2 || !slices.Equal(st.Answered, []string{"asker"}) || !slices.Equal(st.Missing, []string{"stuck"}) || st.Requests != 2 ||
		len(st.NotAsked) != 2 || st.NotAsked["gone"] != "left" || st.NotAsked["dead"] != "failed" {
		t.Errorf("stats = %+v, want asker's answer, stuck missing, gone and dead not asked", st)
	}
	err = st.Incomplete()
	if want := "fleet stats llama: incomplete: 1 of 2 alive nodes did not answer in time (stuck)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Incomplete() = %v, want %q...", err, want)
	}
}

// TestFleetStatsIncompleteMessage covers the other cases of Incomplete.
func TestFleetStatsIncompleteMessage(t *testing.T) {
	for _, tc := range []struct {
		name string
		st   FleetStats
		want string
	}{
		{name: "complete", st: FleetStats{Model: "m", Asked: 2, Answered: []string{"a", "b"}}},
		{name: "failed and left do not count", st: FleetStats{Model: "m", Asked: 1, Answered: []string{"a"}, NotAsked: map[string]string{"b": "failed", "c": "left"}}},
		{name: "unreadable", st: FleetStats{Model: "m", Asked: 3, Answered: []string{"a"}, Missing: []string{"b"}, Invalid: []string{"c"}},
			want: "fleet stats m: incomplete: 1 of 3 alive nodes did not answer in time (b); 1 of 3 alive nodes answered unreadably (c); the numbers cover only the nodes that answered"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.st.Incomplete()
			if tc.want == "" {
				if err != nil {
					t.Errorf("Incomplete() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Incomplete() = %v, want %q...", err, tc.want)
			}
		})
	}
}

// TestStatsAnswerFits checks that even a latency range far wider than the
// answer's bins can cover is encoded within the limit, by collapsing the
// lowest bins, and that the upper quantiles survive.
func TestStatsAnswerFits(t *testing.T) {
	sk, _ := ddsketch.NewDefaultDDSketch(0.01)
	var vals []float64
	for v := 0.001; v < 1e6; v *= 1.01 { // 1 µs to 17 minutes, every bin
		_ = sk.AddWithCount(v, 1000)
		for range 3 {
			vals = append(vals, v)
		}
	}
	limit := 1024 - 96 - len("a-rather-long-node-name.example.internal")
	b, err := encodeStats(ModelStats{Latency: sk, Requests: 1 << 40, Errors: 12345}, true, limit)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > limit {
		t.Fatalf("%d bytes > %d", len(b), limit)
	}
	got, ok, err := decodeStats(b)
	if err != nil || !ok || got.Requests != 1<<40 || got.Errors != 12345 {
		t.Fatalf("decode: %v %v %+v", err, ok, got)
	}
	p99, _ := got.Latency.GetValueAtQuantile(0.99)
	want := exactQuantile(vals, 0.99)
	if math.Abs(p99-want)/want > 0.031 {
		t.Errorf("p99 after collapsing = %v, want %v", p99, want)
	}
	t.Logf("answer: %d bytes for a 1e9x range", len(b))
	// A typical answer (one decade of latencies) keeps all its bins.
	sk2, _ := ddsketch.NewDefaultDDSketch(0.01)
	for v := 10.0; v < 100; v += 0.01 {
		_ = sk2.Add(v)
	}
	b, err = encodeStats(ModelStats{Latency: sk2, Requests: 9000}, true, limit)
	if err != nil || len(b) > limit {
		t.Fatalf("typical: %d bytes, %v", len(b), err)
	}
	t.Logf("answer: %d bytes for one decade", len(b))
}

// TestQueryAudience: a member that a node still lists as "leaving" (one it
// restarted from a snapshot that recorded the other's graceful leave, while
// the other came back) is asked and waited for like an alive one; before,
// it was neither asked, missing nor "not asked", and vanished from the
// answer without a word.
func TestQueryAudience(t *testing.T) {
	members := []serf.Member{
		{Name: "up", Status: serf.StatusAlive},
		{Name: "back", Status: serf.StatusLeaving},
		{Name: "gone", Status: serf.StatusLeft},
		{Name: "dead", Status: serf.StatusFailed},
	}
	asked, notAsked := queryAudience(members)
	if len(asked) != 2 || !asked["up"] || !asked["back"] {
		t.Errorf("asked = %v, want up and back", asked)
	}
	if len(notAsked) != 2 || notAsked["gone"] != "left" || notAsked["dead"] != "failed" {
		t.Errorf("not asked = %v, want gone (left) and dead (failed)", notAsked)
	}
}
