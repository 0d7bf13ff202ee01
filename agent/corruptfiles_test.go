package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilml/vigil/agent/config"
)

// TestCorruptFilesGauge: a file found corrupt at start is moved aside and
// replaced by an empty one; vigil_store_corrupt_files names it (1) while
// its copy lies there, across restarts, and the other files read 0.
func TestCorruptFilesGauge(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "da[ta]") // a pattern character in the path
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	obsPath := filepath.Join(dir, "observations.db")
	if err := os.WriteFile(obsPath, []byte(strings.Repeat("not a bbolt file ", 4096)), 0o600); err != nil {
		t.Fatal(err)
	}
	start := func() *Agent {
		cfg, err := config.Load(config.Options{Dev: true, Env: func(string) (string, bool) { return "", false }, Override: func(c *config.Config) {
			c.DataDir = dir
			c.API.Addr = "127.0.0.1:0"
		}})
		if err != nil {
			t.Fatal(err)
		}
		a, err := New(cfg, Options{Dev: true})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	check := func(a *Agent, when string, want float64) {
		t.Helper()
		gauges := map[string]float64{}
		mfs, err := a.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "vigil_store_corrupt_files" {
				continue
			}
			for _, m := range mf.GetMetric() {
				gauges[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
			}
		}
		for _, f := range []string{"vigil.db", "observations.db", "drift.db", "alerts.db", "plugins.db"} {
			w := 0.0
			if f == "observations.db" {
				w = want
			}
			got, ok := gauges[filepath.Join(dir, f)]
			if !ok || got != w {
				t.Errorf("%s: vigil_store_corrupt_files{file=%q} = %v (reported: %v); want %v (all: %v)", when, filepath.Join(dir, f), got, ok, w, gauges)
			}
		}
	}
	a := start()
	check(a, "after moving the file aside", 1)
	if n, err := testutil.GatherAndCount(a.reg, "vigil_store_corrupt_files"); err != nil || n < 5 {
		t.Errorf("vigil_store_corrupt_files: %d series, %v", n, err)
	}
	a.shutdown()

	a = start()
	check(a, "after a restart", 1)
	copies, _ := filepath.Glob(filepath.Join(strings.NewReplacer("[", `\[`).Replace(dir), "observations.db.corrupt-*"))
	if len(copies) != 1 {
		t.Fatalf("copies moved aside: %v", copies)
	}
	if err := os.Remove(copies[0]); err != nil {
		t.Fatal(err)
	}
	check(a, "once the copy is removed", 0)
	a.shutdown()
}
