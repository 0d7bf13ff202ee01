package test

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilml/vigil/internal/testutil"
)

// TestMonitoringEndToEnd is issue 5's end-to-end check, with every part
// real: the agent with its five detector plugins, a Debian Alertmanager,
// and observations streamed over HTTP whose feature distribution shifts
// half-way. Nobody asks for an evaluation: the agent's periodic drift
// evaluation must find amount and country critical and the other features
// (and the predictions) ok, the drift alert rule must fire for exactly
// those two features, the accuracy_drop rule (reference accuracy from the
// drift engine) for the model, and Alertmanager must receive them. The latency
// percentiles the agent reports must be within 1 % of the exact
// percentiles of the latencies sent, and no latency alert may fire for
// them (p95 stays under 100 ms).
func TestMonitoringEndToEnd(t *testing.T) {
	pdir := driftPluginDir(t)
	am := testutil.StartAlertmanager(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vigil.yaml")
	writeFile(t, cfg, "node_name: mon-node\ndata_dir: "+filepath.Join(dir, "data")+`
api:
  addr: 127.0.0.1:0
telemetry:
  gpu:
    enabled: false
plugins:
  dirs: [`+pdir+`]
drift:
  interval: 1s
  reference_size: 1000
  current_window: 1000
  min_samples: 100
alerts:
  interval: 200ms
  resend_interval: 1s
  rules:
    accuracy_drop:
      for: 0s
  alertmanagers:
    - name: am
      url: `+am.URL+`
  delivery:
    min_backoff: 50ms
    max_backoff: 500ms
`)
	a := startAgent(t, nil, "-config", cfg)
	base := "http://" + a.addr
	waitHealthy(t, base, "")

	// Latencies: log-normal around 20 ms (p95 near 50 ms), so the latency
	// rule stays quiet while the percentiles are checked.
	r := rand.New(rand.NewPCG(5, 27))
	var latencies []float64
	post := func(shifted bool) {
		t.Helper()
		body := fraudBatch(r, shifted)
		for _, it := range body["observations"].([]map[string]any) {
			l := math.Round(20*math.Exp(0.5*r.NormFloat64())*1000) / 1000
			it["latency_ms"] = l
			latencies = append(latencies, l)
			if shifted { // and the model is now always wrong
				it["label"] = 1 - it["prediction"].(int)
			}
		}
		if code, resp := postJSON(t, base+"/v1/observations", body); code != 202 {
			t.Fatalf("observations: %d %v", code, resp)
		}
	}
	// The first 1,000 become the automatic reference, 1,000 more from the
	// same distribution are evaluated ok.
	for range 20 {
		post(false)
	}
	var cur struct {
		Versions []driftVersion `json:"versions"`
	}
	waitForWithin(t, 30*time.Second, func() bool {
		cur.Versions = nil
		if doJSON(t, "GET", base+"/v1/models/fraud/drift?version=v1", nil, &cur) != 200 || len(cur.Versions) != 1 {
			return false
		}
		v := cur.Versions[0]
		return v.Verdict == "ok" && len(v.Features) == 5 && v.Features[0].CurrentN == 1000
	}, "a periodic evaluation of the unshifted stream")

	// Half-way, amount and country shift.
	for range 10 {
		post(true)
	}
	want := map[string]string{"amount": "critical", "country": "critical", "tenure": "ok", "device": "ok", "prediction": "ok"}
	waitForWithin(t, 30*time.Second, func() bool {
		cur.Versions = nil
		if doJSON(t, "GET", base+"/v1/models/fraud/drift?version=v1", nil, &cur) != 200 || len(cur.Versions) != 1 {
			return false
		}
		return sev(cur.Versions[0])["amount"] == "critical"
	}, "the periodic evaluation to see the shift")
	got := sev(cur.Versions[0])
	if len(got) != len(want) {
		t.Errorf("features evaluated %v, want %v", got, want)
	}
	for f, s := range want {
		if got[f] != s {
			t.Errorf("after the shift: %s is %q, want %s (%+v)", f, got[f], s, cur.Versions[0].Features)
		}
	}

	// The drift rule fires for the two shifted features, and Alertmanager
	// gets both, critical, labelled with feature and method. Accuracy fell
	// from the reference window's 75 % to 50 % over the last hour (the
	// shifted third is always wrong): accuracy_drop fires too.
	amAlerts := am.WaitAlerts(t, 30*time.Second, "two drift alerts and an accuracy drop", func(as []testutil.AMAlert) bool {
		return testutil.Find(as, map[string]string{"alertname": "VigilFeatureDrift", "feature": "amount"}) != nil &&
			testutil.Find(as, map[string]string{"alertname": "VigilFeatureDrift", "feature": "country"}) != nil &&
			testutil.Find(as, map[string]string{"alertname": "VigilAccuracyDrop", "severity": "critical"}) != nil
	})
	methods := map[string]string{"amount": "ks", "country": "chisquare"}
	for _, al := range amAlerts {
		l := al.Labels
		if l["alertname"] == "VigilAccuracyDrop" {
			if l["model"] != "fraud" || l["version"] != "v1" || l["rule"] != "accuracy_drop" {
				t.Errorf("accuracy alert in Alertmanager %+v", al)
			}
			continue
		}
		if l["alertname"] != "VigilFeatureDrift" {
			t.Errorf("unexpected alert in Alertmanager: %v", l)
			continue
		}
		m, ok := methods[l["feature"]]
		if !ok || l["method"] != m || l["severity"] != "critical" || l["model"] != "fraud" || l["version"] != "v1" ||
			l["instance"] != "mon-node" || l["rule"] != "drift" || al.Status.State != "active" {
			t.Errorf("drift alert in Alertmanager %+v", al)
		}
	}
	if len(amAlerts) != 3 {
		t.Errorf("Alertmanager holds %d alerts, want the 2 drift alerts and the accuracy drop", len(amAlerts))
	}

	// /v1/alerts agrees: those three, nothing else.
	alerts := getAlerts(t, base)
	var firing []string
	for _, al := range alerts.Alerts {
		if al.State == "firing" {
			firing = append(firing, al.Rule+"/"+al.Labels["feature"])
		}
	}
	slices.Sort(firing)
	if strings.Join(firing, ",") != "accuracy_drop/,drift/amount,drift/country" {
		t.Errorf("firing alerts %v, want accuracy_drop, drift/amount and drift/country", firing)
	}

	// Latency percentiles over the whole stream (3,000 observations, all
	// within the last hour).
	slices.Sort(latencies)
	code, vs := modelStats(t, base, "fraud", "window=1h&version=v1")
	if code != 200 || len(vs) != 1 || vs[0].LatencyCount != uint64(len(latencies)) {
		t.Fatalf("stats %d %+v, want %d latencies", code, vs, len(latencies))
	}
	for i, got := range []*float64{vs[0].LatencyP50Ms, vs[0].LatencyP95Ms, vs[0].LatencyP99Ms} {
		q := []float64{0.5, 0.95, 0.99}[i]
		exact := latencies[int(q*float64(len(latencies)-1))]
		if got == nil || math.Abs(*got-exact) > 0.01*exact {
			t.Errorf("p%v = %v, exact %v: not within 1%%", q*100, got, exact)
		}
	}
}
