package store

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCollector(t *testing.T) {
	s := openTest(t, testConfig(t), options{})
	if err := s.Append(context.Background(), []Sample{gpuSample("0", time.Now(), 1)}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(s); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.CollectAndLint(s)
	if err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	want := `
# HELP vigil_store_samples_appended_total Samples acknowledged (committed and fsynced) by the store.
# TYPE vigil_store_samples_appended_total counter
vigil_store_samples_appended_total 1
# HELP vigil_store_partitions Time partitions currently held.
# TYPE vigil_store_partitions gauge
vigil_store_partitions 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "vigil_store_samples_appended_total", "vigil_store_partitions"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"vigil_store_evicted_samples_total", "vigil_store_write_errors_total", "vigil_store_size_bytes", "vigil_store_commit_duration_seconds"} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n == 0 {
			t.Errorf("%s: %d series, %v", name, n, err)
		}
	}
}
