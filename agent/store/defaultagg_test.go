package store

import "testing"

// TestDefaultAgg: a series named as Prometheus names cumulative series (a
// counter's _total, a histogram's or summary's _count, _sum and _bucket)
// defaults to the last value per step; anything else, including names that
// merely contain those words, to the average.
func TestDefaultAgg(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"vigil_host_cpu_seconds_total", AggLast},
		{"http_request_duration_seconds_count", AggLast},
		{"http_request_duration_seconds_sum", AggLast},
		{"http_request_duration_seconds_bucket", AggLast},
		{"rpc_latency_seconds_count", AggLast},
		{"vigil_gpu_utilization_ratio", AggAvg},
		{"vigil_host_memory_total_bytes", AggAvg},
		{"vigil_host_cpus", AggAvg},
		{"checksum", AggAvg},
		{"account_count_ratio", AggAvg},
		{"total", AggAvg},
		{"", AggAvg},
	} {
		if got := DefaultAgg(tc.name); got != tc.want {
			t.Errorf("DefaultAgg(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
