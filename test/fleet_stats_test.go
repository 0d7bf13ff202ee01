package test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/vigilml/vigil/agent/fleet"
	"github.com/vigilml/vigil/test/cluster"
)

// TestFleetStatsFromObservations feeds three agents different latency
// distributions for one model through POST /v1/observations, then asks one
// of them for the fleet's stats: the merged p50/p95/p99 must match the exact
// percentiles of the union of the latencies within the sketches' error, and
// each node's tags must name the model it serves.
func TestFleetStatsFromObservations(t *testing.T) {
	c := cluster.Start(t, cluster.Options{Binary: vigilBin, N: 3})
	c.WaitConverged(30 * time.Second)

	rng := rand.New(rand.NewPCG(7, 11))
	var all []float64
	var errs int
	shapes := []func() float64{
		func() float64 { return 20 + 5*rng.NormFloat64()*rng.NormFloat64() + 10*rng.Float64() }, // fast
		func() float64 { return 80 * math.Exp(0.5*rng.NormFloat64()) },                          // log-normal
		func() float64 { return 300 + 200*rng.ExpFloat64() },                                    // slow tail
	}
	for i, n := range c.Nodes {
		for batch := 0; batch < 4; batch++ {
			var obs []map[string]any
			for j := 0; j < 250; j++ {
				lat := math.Max(0.5, shapes[i]())
				isErr := rng.IntN(50) == 0
				if isErr {
					errs++
				}
				all = append(all, lat)
				obs = append(obs, map[string]any{"model": "ranker", "version": fmt.Sprintf("v%d", i%2+1), "latency_ms": lat, "error": isErr})
			}
			if code, body := postJSON(t, n.API+"/v1/observations", map[string]any{"observations": obs}); code != 202 {
				t.Fatalf("%s: POST /v1/observations = %d %v", n.Name, code, body)
			}
		}
	}
	sort.Float64s(all)
	exact := func(q float64) float64 { // the lower-rank quantile, as DDSketch reports
		return all[int(q*float64(len(all)-1))]
	}

	// Every node publishes the model in its tags (refreshed within
	// tags_min_interval, 10 s by default).
	for _, n := range c.Nodes {
		c.WaitMember(n.Name, 30*time.Second, "serving ranker", func(m fleet.Member) error {
			for _, md := range m.Info.Models {
				if md.Name == "ranker" {
					if m.Info.Health.WorstP95Ms == nil {
						return fmt.Errorf("no worst p95 in %+v", m.Info.Health)
					}
					return nil
				}
			}
			return fmt.Errorf("models %+v", m.Info.Models)
		})
	}

	// A node starved of CPU can miss one query's deadline (listed as
	// missing, rightly): ask again until all three answer in one.
	var st fleet.FleetStats
	c.Wait(30*time.Second, "every node answering the fleet stats query", func() error {
		st = fleet.FleetStats{}
		if err := c.Nodes[1].GetJSON("/v1/fleet/models/ranker/stats", &st); err != nil {
			return err
		}
		if len(st.Missing) != 0 {
			return fmt.Errorf("missing %v", st.Missing)
		}
		return nil
	})
	if st.Nodes != 3 || st.Requests != uint64(len(all)) || st.Errors != uint64(errs) {
		t.Fatalf("fleet stats = %+v; want 3 nodes, %d requests, %d errors", st, len(all), errs)
	}
	// Each node's sketch is 1 % accurate, re-binned to the gossip answer's
	// accuracy; allow the sum of both.
	tol := 0.01 + st.RelativeAccuracy
	for _, q := range []struct {
		name string
		q    float64
		got  *float64
	}{{"p50", 0.5, st.P50Ms}, {"p95", 0.95, st.P95Ms}, {"p99", 0.99, st.P99Ms}} {
		want := exact(q.q)
		if q.got == nil || math.Abs(*q.got-want) > tol*want {
			t.Errorf("fleet %s = %v, exact %.3f (tolerance %.1f %%)", q.name, q.got, want, 100*tol)
		}
	}
	if st.ErrorRate == nil || math.Abs(*st.ErrorRate-float64(errs)/float64(len(all))) > 1e-12 {
		t.Errorf("fleet error rate = %v, want %d/%d", st.ErrorRate, errs, len(all))
	}
}
