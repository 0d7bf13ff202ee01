package test

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// docsRules returns the YAML block of docs/metrics.md's "Prometheus rules"
// section.
func docsRules(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## Prometheus rules\n")
	if !ok {
		t.Fatal(`docs/metrics.md has no "## Prometheus rules" section`)
	}
	_, block, ok := strings.Cut(sec, "```yaml\n")
	if !ok {
		t.Fatal("docs/metrics.md: no yaml block in the Prometheus rules section")
	}
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatal("docs/metrics.md: unterminated yaml block in the Prometheus rules section")
	}
	return block
}

// rulesUnitTest is a promtool unit test of the docs' rules: the recorded
// rates go on through an agent restart (counters back at 0), the mean
// latency counts one window label only, and the alerts fire.
const rulesUnitTest = `rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      # 60 observations a minute, 6 of them errors; the agent restarts
      # after 5m and its counters start again from 0.
      - series: 'vigil_model_requests_total{instance="n1",job="vigil",model="m",version="v1"}'
        values: '0+60x5 0+60x5'
      - series: 'vigil_model_errors_total{instance="n1",job="vigil",model="m",version="v1"}'
        values: '0+6x5 0+6x5'
      # _count and _sum are the same under every window label.
      - series: 'vigil_model_latency_seconds_count{instance="n1",job="vigil",model="m",version="v1",window="1m"}'
        values: '0+60x11'
      - series: 'vigil_model_latency_seconds_sum{instance="n1",job="vigil",model="m",version="v1",window="1m"}'
        values: '0+3x11'
      - series: 'vigil_model_latency_seconds_count{instance="n1",job="vigil",model="m",version="v1",window="5m"}'
        values: '0+60x11'
      - series: 'vigil_model_latency_seconds_sum{instance="n1",job="vigil",model="m",version="v1",window="5m"}'
        values: '0+3x11'
      - series: 'vigil_collector_up{instance="n1",job="vigil",collector="gpu"}'
        values: '0x11'
      - series: 'vigil_store_write_errors_total{instance="n1",job="vigil",reason="disk_full"}'
        values: '0 0 0 1 1 1 1 1 1 1 1 1'
    promql_expr_test:
      - expr: model_version:vigil_model_requests:rate5m
        eval_time: 11m
        exp_samples:
          - labels: 'model_version:vigil_model_requests:rate5m{instance="n1",model="m",version="v1"}'
            value: 1
      - expr: round(model_version:vigil_model_errors:ratio_rate5m, 0.0001)
        eval_time: 8m
        exp_samples:
          - labels: '{instance="n1",model="m",version="v1"}'
            value: 0.1
      - expr: round(model_version:vigil_model_latency_seconds:mean5m, 0.0001)
        eval_time: 10m
        exp_samples:
          - labels: '{instance="n1",model="m",version="v1"}'
            value: 0.05
    alert_rule_test:
      - alertname: VigilCollectorDown
        eval_time: 6m
        exp_alerts:
          - exp_labels: {instance: n1, job: vigil, collector: gpu}
      - alertname: VigilStoreWriteErrors
        eval_time: 4m
        exp_alerts:
          - exp_labels: {instance: n1, job: vigil, reason: disk_full}
`

// TestDocsPrometheusRules checks the rules docs/metrics.md offers: they
// load (promtool check rules), compute what they say (promtool test rules),
// and, in a real Prometheus scraping a real agent, every one is healthy,
// every metric they name is one the agent exports, and the recorded error
// ratio equals the agent's own vigil_model_error_ratio.
func TestDocsPrometheusRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: install Debian's prometheus package (`make test-deps` does it as root)")
	}
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus not found: install Debian's prometheus package (`make test-deps` does it as root)")
	}
	dir := t.TempDir()
	rules := docsRules(t)
	writeFile(t, filepath.Join(dir, "rules.yml"), rules)
	writeFile(t, filepath.Join(dir, "rules_test.yml"), rulesUnitTest)
	for _, args := range [][]string{{"check", "rules", "rules.yml"}, {"test", "rules", "rules_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	// A real agent: one simulated GPU, and a forward upstream that never
	// answers, so that vigil_forward_lag_seconds exists.
	cfg := filepath.Join(dir, "vigil.yaml")
	writeFile(t, cfg, "data_dir: "+filepath.Join(dir, "data")+`
api:
  addr: 127.0.0.1:0
telemetry:
  gpu:
    simulate: 1
  host:
    interval: 1s
forward:
  remote_write:
    - name: nowhere
      url: http://127.0.0.1:1/api/v1/write
`)
	a := startAgent(t, nil, "-config", cfg)
	base := "http://" + a.addr
	waitHealthy(t, base, "")

	promAddr := startPrometheus(t, prom, dir, fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%s]
scrape_configs:
  - job_name: vigil
    static_configs: [{targets: ['%s']}]
`, filepath.Join(dir, "rules.yml"), a.addr))
	query := func(q string) []promSample {
		resp, err := http.Get("http://" + promAddr + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		var r struct {
			Data struct {
				Result []promSample `json:"result"`
			} `json:"data"`
		}
		body, _ := io.ReadAll(resp.Body)
		if json.Unmarshal(body, &r) != nil {
			return nil
		}
		return r.Data.Result
	}

	// Every batch has 10% errors, so the rate ratio (which misses the
	// first batch: a counter's first sample has no predecessor) and the
	// agent's window agree.
	post := func(b int) {
		items := make([]map[string]any, 100)
		for i := range items {
			items[i] = map[string]any{"model": "m", "version": "v1", "latency_ms": 10 + i, "status": 200}
			if i%10 == 0 {
				items[i]["status"] = 503
			}
		}
		if code, resp := postJSON(t, base+"/v1/observations", map[string]any{"observations": items}); code != 202 {
			t.Fatalf("batch %d: %d %v", b, code, resp)
		}
	}
	post(0)
	waitForWithin(t, 30*time.Second, func() bool { return len(query(`vigil_model_requests_total{model="m"}`)) == 1 },
		"Prometheus to scrape the first batch")
	for b := 1; b <= 3; b++ {
		post(b)
	}
	var ratio, agent []promSample
	waitForWithin(t, 30*time.Second, func() bool {
		ratio = query(`model_version:vigil_model_errors:ratio_rate5m{model="m",version="v1"}`)
		agent = query(`vigil_model_error_ratio{model="m",version="v1",window="5m"}`)
		rate := query(`model_version:vigil_model_requests:rate5m{model="m",version="v1"}`)
		return len(ratio) == 1 && len(agent) == 1 && len(rate) == 1 && rate[0].value() > 0 &&
			query(`vigil_model_requests_total{model="m"}`)[0].value() == 400
	}, "the recorded error ratio and rate of m/v1 after 400 observations")
	if r, w := ratio[0].value(), agent[0].value(); math.Abs(r-w) > 1e-9 || math.Abs(w-0.1) > 1e-9 {
		t.Errorf("recorded error ratio %v, the agent's vigil_model_error_ratio %v, want both 0.1", r, w)
	}
	if got := query(`model_version:vigil_model_latency_seconds:mean5m{model="m",version="v1"}`); len(got) != 1 || got[0].value() < 0.010 || got[0].value() > 0.110 {
		t.Errorf("recorded mean latency %+v, want one series between 10 and 110 ms", got)
	}

	// Every rule evaluates without error, and every metric a rule names
	// has series in Prometheus.
	resp, err := http.Get("http://" + promAddr + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	var rl struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name, Query, Health, LastError string
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&rl)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	names := regexp.MustCompile(`\bvigil_[a-z0-9_]+`)
	for _, g := range rl.Data.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health != "ok" {
				t.Errorf("rule %s: health %q %s", r.Name, r.Health, r.LastError)
			}
			for _, m := range names.FindAllString(r.Query, -1) {
				if len(query("count("+m+")")) == 0 {
					t.Errorf("rule %s names %s, which the agent does not export", r.Name, m)
				}
			}
		}
	}
	if n != strings.Count(rules, "- record:")+strings.Count(rules, "- alert:") || n == 0 {
		t.Errorf("Prometheus loaded %d rules, the docs show %d", n, strings.Count(rules, "- record:")+strings.Count(rules, "- alert:"))
	}
}

type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s promSample) value() float64 {
	v, _ := s.Value[1].(string)
	var f float64
	fmt.Sscan(v, &f)
	return f
}
