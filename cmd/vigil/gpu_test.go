package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigilml/vigil/agent/telemetry"
)

// TestGPUMemoryColumn: the MEMORY column is used / total with used as the
// agent serves it, which excludes the driver's reserved memory the way
// nvidia-smi does. The figures are a real H200 (driver 580.159.04):
// nvidia-smi showed 1395MiB / 143771MiB, about 615 MiB reserved besides.
func TestGPUMemoryColumn(t *testing.T) {
	u64 := func(v uint64) *uint64 { return &v }
	snap := telemetry.GPUSnapshot{
		Time: time.Now(), DriverVersion: "580.159.04", CUDAVersion: "13.0",
		Devices: []telemetry.GPUDevice{{
			Index: 0, Name: "NVIDIA H200", UUID: "GPU-5efc3a7e-70d7-750a-e943-dc5db632f589",
			MemoryTotalBytes: u64(150754820096), MemoryUsedBytes: u64(1395 << 20),
			MemoryFreeBytes: u64(148647313408), MemoryReservedBytes: u64(644743168),
		}},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/gpus" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(snap)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	var stdout, stderr bytes.Buffer
	if code := run([]string{"gpu", "-http-addr", addr}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	// 1395 MiB = 1.36 GiB; the v1 reading (reserved counted as used) was 2.0 GiB.
	if !strings.Contains(stdout.String(), "1.4 GiB / 140.4 GiB") {
		t.Errorf("MEMORY column is not used / total as nvidia-smi shows it:\n%s", stdout.String())
	}

	stdout.Reset()
	if code := run([]string{"gpu", "-http-addr", addr, "-format", "json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("json: exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), `"memory_reserved_bytes": 644743168`) {
		t.Errorf("-format json lacks memory_reserved_bytes:\n%s", stdout.String())
	}
}
