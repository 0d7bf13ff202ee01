package testutil

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// ReportScipy times the same drift tests in scipy (Debian's
// /usr/bin/python3 with python3-scipy) with script
// (plugins/detectors/internal/methods/testdata/bench_scipy.py, relative to
// the calling package), given the features it reads as JSON, best of 5
// rounds, and reports ms/eval (goMS), scipy-ms/eval and x-scipy on b. It
// returns scipy's milliseconds per evaluation.
func ReportScipy(b *testing.B, script string, features any, goMS float64) float64 {
	b.Helper()
	in := filepath.Join(b.TempDir(), "features.json")
	data, err := json.Marshal(features)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(in, data, 0o600); err != nil {
		b.Fatal(err)
	}
	out, err := exec.Command("/usr/bin/python3", script, in, "5").Output()
	if err != nil {
		b.Fatalf("scipy timing (needs Debian's python3-scipy): %v", err)
	}
	var res struct {
		MS float64 `json:"ms_per_eval"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(goMS, "ms/eval")
	b.ReportMetric(res.MS, "scipy-ms/eval")
	b.ReportMetric(res.MS/goMS, "x-scipy")
	return res.MS
}
