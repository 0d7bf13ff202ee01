package telemetry

// These tests run the GPU collector against go-nvml's own mock
// (github.com/NVIDIA/go-nvml/pkg/nvml/mock, DGX H100 server) because CI and
// development machines have no NVIDIA GPU or driver. The mock is the same
// code that backs telemetry.gpu.simulate, with individual functions replaced
// per test to inject unsupported fields, errors, lost GPUs, XID events and
// MIG instances. The values were checked once against a real H200 with
// nvidia-ml-py and nvidia-smi (docs/metrics.md, "Checked on real hardware");
// gpu_memory_test.go encodes the memory figures of that reading.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

var fixedNow = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }

func TestGPUDeviceCounts(t *testing.T) {
	for _, n := range []int{0, 1, 8} {
		t.Run(fmt.Sprintf("gpus=%d", n), func(t *testing.T) {
			m := newMockNVML(n, fixedNow)
			tel := newTel(t, gpuOnly(), withNVML(m))
			tickAll(t, tel)

			st := statusOf(t, tel, "gpu")
			if !st.Up || st.Reason != "" {
				t.Fatalf("status = %+v, want up with no reason", st)
			}
			snap := tel.GPUs()
			if len(snap.Devices) != n {
				t.Fatalf("GPUs().Devices = %d, want %d", len(snap.Devices), n)
			}
			if snap.DriverVersion != "550.54.15" || snap.CUDAVersion != "12.4" {
				t.Errorf("versions = %q %q, want 550.54.15 12.4", snap.DriverVersion, snap.CUDAVersion)
			}
			mfs := gather(t, tel)
			if got := count(mfs, "vigil_gpu_info"); got != n {
				t.Errorf("vigil_gpu_info series = %d, want %d", got, n)
			}
			if got := count(mfs, "vigil_gpu_memory_total_bytes"); got != n {
				t.Errorf("vigil_gpu_memory_total_bytes series = %d, want %d", got, n)
			}
			if v := mustSeries(t, mfs, "vigil_collector_up", map[string]string{"collector": "gpu"}); v != 1 {
				t.Errorf("vigil_collector_up{gpu} = %v, want 1", v)
			}
			for i, d := range snap.Devices {
				if d.Index != i || d.UUID != simUUID(i) || d.Name != "NVIDIA H100 80GB HBM3" {
					t.Errorf("device %d = %d %q %q", i, d.Index, d.UUID, d.Name)
				}
				if d.PCIBusID == "" || d.MemoryTotalBytes == nil || *d.MemoryTotalBytes != 80*1024*1024*1024 {
					t.Errorf("device %d: pci %q memory %v", i, d.PCIBusID, d.MemoryTotalBytes)
				}
				info := mustSeries(t, mfs, "vigil_gpu_info", map[string]string{
					"gpu": d.UUID[len(d.UUID)-1:], "uuid": d.UUID, "pci_bus_id": d.PCIBusID,
					"driver_version": "550.54.15", "cuda_version": "12.4", "simulated": "false",
				})
				if info != 1 {
					t.Errorf("vigil_gpu_info = %v", info)
				}
				// Units: ratio, watts, hertz, bytes.
				u := mustSeries(t, mfs, "vigil_gpu_utilization_ratio", gpuLabel(i))
				if u < 0 || u > 1 {
					t.Errorf("utilization ratio %v out of [0,1]", u)
				}
				if p := mustSeries(t, mfs, "vigil_gpu_power_watts", gpuLabel(i)); p < 50 || p > 700 {
					t.Errorf("power %v W implausible", p)
				}
				if c := mustSeries(t, mfs, "vigil_gpu_sm_clock_hertz", gpuLabel(i)); c < 1e9 || c > 3e9 {
					t.Errorf("sm clock %v Hz implausible", c)
				}
			}
		})
	}
}

func TestGPUUnsupportedAskedOnce(t *testing.T) {
	cases := []struct {
		field  string
		metric string
		set    func(d *simDevice)
		calls  func(d *simDevice) int
	}{
		{"fan_speed", "vigil_gpu_fan_speed_ratio",
			func(d *simDevice) {
				d.GetFanSpeedFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
			},
			func(d *simDevice) int { return len(d.GetFanSpeedCalls()) }},
		{"energy", "vigil_gpu_energy_joules_total",
			func(d *simDevice) {
				d.GetTotalEnergyConsumptionFunc = func() (uint64, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
			},
			func(d *simDevice) int { return len(d.GetTotalEnergyConsumptionCalls()) }},
		{"power_usage", "vigil_gpu_power_watts",
			func(d *simDevice) {
				d.GetPowerUsageFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
			},
			func(d *simDevice) int { return len(d.GetPowerUsageCalls()) }},
		{"remapped_rows", "vigil_gpu_remapped_rows",
			func(d *simDevice) {
				d.GetRemappedRowsFunc = func() (int, int, bool, bool, nvml.Return) { return 0, 0, false, false, nvml.ERROR_NOT_SUPPORTED }
			},
			func(d *simDevice) int { return len(d.GetRemappedRowsCalls()) }},
	}
	for _, tc := range cases {
		t.Run(tc.field, func(t *testing.T) {
			m := newMockNVML(2, fixedNow)
			// GPU 0 supports the field (fans included), GPU 1 does not.
			m.device(0).GetFanSpeedFunc = func() (uint32, nvml.Return) { return 40, nvml.SUCCESS }
			tc.set(m.device(1))
			tel := newTel(t, gpuOnly(), withNVML(m))
			const ticks = 3
			for range ticks {
				tickAll(t, tel)
			}
			if got := tc.calls(m.device(1)); got != 1 {
				t.Errorf("unsupported function called %d times over %d ticks, want 1", got, ticks)
			}
			if got := tc.calls(m.device(0)); got != ticks {
				t.Errorf("supported function called %d times, want %d", got, ticks)
			}
			snap := tel.GPUs()
			if !contains(snap.Devices[1].Unsupported, tc.field) || contains(snap.Devices[0].Unsupported, tc.field) {
				t.Errorf("unsupported lists: gpu0 %v gpu1 %v", snap.Devices[0].Unsupported, snap.Devices[1].Unsupported)
			}
			if st := statusOf(t, tel, "gpu"); !st.Up || st.Reason != "" || st.Errors != 0 {
				t.Errorf("an unsupported field is not an error: status %+v", st)
			}
			mfs := gather(t, tel)
			if _, ok := series(mfs, tc.metric, gpuLabel(1)); ok {
				t.Errorf("%s served for GPU 1, which does not support it", tc.metric)
			}
			if _, ok := series(mfs, tc.metric, gpuLabel(0)); !ok {
				t.Errorf("%s missing for GPU 0", tc.metric)
			}
			mustSeries(t, mfs, "vigil_gpu_field_unsupported", map[string]string{"gpu": "1", "field": tc.field})
		})
	}
}

func contains(l []string, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}

func TestGPUErrorMidRun(t *testing.T) {
	m := newMockNVML(4, fixedNow)
	tel := newTel(t, gpuOnly(), withNVML(m))
	tickAll(t, tel)
	if st := statusOf(t, tel, "gpu"); !st.Up || st.Errors != 0 {
		t.Fatalf("first tick: %+v", st)
	}

	// GPU 2's temperature read starts failing with an unexpected error.
	d := m.device(2)
	good := d.GetTemperatureFunc
	d.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 0, nvml.ERROR_UNKNOWN }
	tickAll(t, tel)

	st := statusOf(t, tel, "gpu")
	if !st.Up || !strings.Contains(st.Reason, "gpu 2") || !strings.Contains(st.Reason, "temperature") || st.Errors != 1 {
		t.Fatalf("after error: status %+v, want up (partial) naming gpu 2 temperature, 1 error", st)
	}
	snap := tel.GPUs()
	if snap.Devices[2].TemperatureCelsius != nil || snap.Devices[2].Error == "" {
		t.Errorf("gpu 2: temperature %v error %q", snap.Devices[2].TemperatureCelsius, snap.Devices[2].Error)
	}
	if snap.Devices[2].UtilizationRatio == nil {
		t.Errorf("gpu 2: other fields must still be read")
	}
	mfs := gather(t, tel)
	if _, ok := series(mfs, "vigil_gpu_temperature_celsius", gpuLabel(2)); ok {
		t.Error("gpu 2 temperature served after a failed read")
	}
	for _, i := range []int{0, 1, 3} {
		mustSeries(t, mfs, "vigil_gpu_temperature_celsius", gpuLabel(i))
	}
	if v := mustSeries(t, mfs, "vigil_collector_errors_total", map[string]string{"collector": "gpu"}); v != 1 {
		t.Errorf("errors_total = %v, want 1", v)
	}
	// An error is not "unsupported": it is retried and recovers.
	d.GetTemperatureFunc = good
	tickAll(t, tel)
	if st := statusOf(t, tel, "gpu"); !st.Up || st.Reason != "" {
		t.Errorf("after recovery: %+v", st)
	}
	if tel.GPUs().Devices[2].TemperatureCelsius == nil {
		t.Error("gpu 2 temperature not back after recovery")
	}
}

func TestGPUPanicIsContained(t *testing.T) {
	m := newMockNVML(2, fixedNow)
	cfg := DefaultConfig() // host collector too: it must not be affected
	tel := newTel(t, cfg, withNVML(m))
	tickAll(t, tel)
	// An unset mock function panics when called, like a driver surprise.
	m.device(1).GetUtilizationRatesFunc = nil
	tickAll(t, tel)
	gpu := statusOf(t, tel, "gpu")
	if gpu.Up || !strings.Contains(gpu.Reason, "panicked") {
		t.Fatalf("gpu status %+v, want down with the panic as reason", gpu)
	}
	// One line for /v1/status and /v1/health; the stack is the log's.
	if strings.Contains(gpu.Reason, "\n") || strings.Contains(gpu.Reason, "goroutine") {
		t.Errorf("gpu reason carries the stack trace: %q", gpu.Reason)
	}
	if host := statusOf(t, tel, "host"); !host.Up {
		t.Fatalf("host collector affected: %+v", host)
	}
	mfs := gather(t, tel)
	if v := mustSeries(t, mfs, "vigil_collector_up", map[string]string{"collector": "gpu"}); v != 0 {
		t.Errorf("vigil_collector_up{gpu} = %v, want 0", v)
	}
}

func TestGPULost(t *testing.T) {
	m := newMockNVML(4, fixedNow)
	tel := newTel(t, gpuOnly(), withNVML(m))
	tickAll(t, tel)

	lost := m.device(3)
	var lostCalls atomic.Int64
	lost.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
		lostCalls.Add(1)
		return nvml.Utilization{}, nvml.ERROR_GPU_IS_LOST
	}
	memBefore := len(lost.GetMemoryInfo_v2Calls())
	tickAll(t, tel)

	st := statusOf(t, tel, "gpu")
	if !st.Up || !strings.Contains(st.Reason, "gpu 3") || !strings.Contains(st.Reason, "lost") {
		t.Fatalf("status %+v, want up, naming lost gpu 3", st)
	}
	if n := len(lost.GetMemoryInfo_v2Calls()) - memBefore; n != 0 {
		t.Errorf("lost GPU was asked %d more questions after it was found lost", n)
	}
	snap := tel.GPUs()
	if !snap.Devices[3].Lost || snap.Devices[3].UUID != simUUID(3) {
		t.Errorf("gpu 3 = %+v, want lost with its identity", snap.Devices[3])
	}
	for i := 0; i < 3; i++ {
		if snap.Devices[i].Lost || snap.Devices[i].UtilizationRatio == nil {
			t.Errorf("gpu %d affected by gpu 3: %+v", i, snap.Devices[i])
		}
	}
	mfs := gather(t, tel)
	if v := mustSeries(t, mfs, "vigil_gpu_up", gpuLabel(3)); v != 0 {
		t.Errorf("vigil_gpu_up{gpu=3} = %v, want 0", v)
	}
	if _, ok := series(mfs, "vigil_gpu_memory_used_bytes", gpuLabel(3)); ok {
		t.Error("values served for the lost GPU")
	}
	for i := 0; i < 3; i++ {
		if v := mustSeries(t, mfs, "vigil_gpu_up", gpuLabel(i)); v != 1 {
			t.Errorf("vigil_gpu_up{gpu=%d} = %v", i, v)
		}
		mustSeries(t, mfs, "vigil_gpu_memory_used_bytes", gpuLabel(i))
	}
	// Still lost on the next tick, and still reported.
	tickAll(t, tel)
	if !tel.GPUs().Devices[3].Lost || lostCalls.Load() != 2 {
		t.Errorf("second tick: lost=%v calls=%d", tel.GPUs().Devices[3].Lost, lostCalls.Load())
	}
}

func TestGPUHandleLostAtStart(t *testing.T) {
	m := newMockNVML(2, fixedNow)
	good := m.DeviceGetHandleByIndexFunc
	m.DeviceGetHandleByIndexFunc = func(i int) (nvml.Device, nvml.Return) {
		if i == 1 {
			return nil, nvml.ERROR_GPU_IS_LOST
		}
		return good(i)
	}
	tel := newTel(t, gpuOnly(), withNVML(m))
	tickAll(t, tel)
	snap := tel.GPUs()
	if len(snap.Devices) != 2 || snap.Devices[0].Lost || !snap.Devices[1].Lost {
		t.Fatalf("devices = %+v", snap.Devices)
	}
	// After a reset the GPU answers again: it is read without a restart.
	m.DeviceGetHandleByIndexFunc = good
	tickAll(t, tel)
	snap = tel.GPUs()
	if d := snap.Devices[1]; d.Lost || d.UUID != simUUID(1) || d.MemoryUsedBytes == nil {
		t.Fatalf("after the GPU came back: %+v", d)
	}
}

func TestXIDEvents(t *testing.T) {
	m := newMockNVML(2, fixedNow)
	cfg := gpuOnly()
	cfg.GPU.DCGMCompatibleNames = true
	tel := newTel(t, cfg, withNVML(m))
	tickAll(t, tel) // starts NVML and the event watcher

	send := func(dev int, xid uint64, typ uint64) {
		m.events <- nvml.EventData{Device: m.Devices[dev], EventType: typ, EventData: xid}
	}
	send(1, 79, nvml.EventTypeXidCriticalError)
	send(1, 79, nvml.EventTypeXidCriticalError)
	send(1, 999, nvml.EventTypeSingleBitEccError) // not an XID: ignored
	send(0, 48, nvml.EventTypeXidCriticalError)

	xid := func(gpu, code string) float64 {
		v, _ := series(gather(t, tel), "vigil_gpu_xid_errors_total", map[string]string{"gpu": gpu, "uuid": simUUID(int(gpu[0] - '0')), "xid": code})
		return v
	}
	waitFor(t, "XID counts", func() bool { return xid("1", "79") == 2 && xid("0", "48") == 1 })
	mfs := gather(t, tel)
	if count(mfs, "vigil_gpu_xid_errors_total") != 2 {
		t.Errorf("xid series = %d, want 2 (non-XID events ignored)", count(mfs, "vigil_gpu_xid_errors_total"))
	}
	if ts := mustSeries(t, mfs, "vigil_gpu_xid_last_seen_timestamp_seconds", map[string]string{"gpu": "1", "xid": "79"}); ts < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last seen %v is not recent", ts)
	}
	// XID counts are independent of ticks: break sampling, send another.
	m.device(0).GetUtilizationRatesFunc = nil // panics -> tick fails
	tickAll(t, tel)
	if statusOf(t, tel, "gpu").Up {
		t.Fatal("tick was meant to fail")
	}
	send(1, 79, nvml.EventTypeXidCriticalError)
	waitFor(t, "XID count while sampling fails", func() bool { return xid("1", "79") == 3 })

	snap := tel.GPUs()
	if x := snap.Devices[1].XIDErrors; len(x) != 1 || x[0].XID != 79 || x[0].Count != 3 {
		t.Errorf("snapshot XIDErrors = %+v", x)
	}
}

func TestXIDLastValueDCGM(t *testing.T) {
	m := newMockNVML(1, fixedNow)
	cfg := gpuOnly()
	cfg.GPU.DCGMCompatibleNames = true
	tel := newTel(t, cfg, withNVML(m), WithHostname("node-a"))
	tickAll(t, tel)
	if v := mustSeries(t, gather(t, tel), "DCGM_FI_DEV_XID_ERRORS", map[string]string{"gpu": "0"}); v != 0 {
		t.Errorf("DCGM_FI_DEV_XID_ERRORS before any XID = %v", v)
	}
	m.events <- nvml.EventData{Device: m.Devices[0], EventType: nvml.EventTypeXidCriticalError, EventData: 31}
	waitFor(t, "XID", func() bool { return len(tel.GPUs().Devices[0].XIDErrors) == 1 })
	tickAll(t, tel)
	if v := mustSeries(t, gather(t, tel), "DCGM_FI_DEV_XID_ERRORS", map[string]string{"gpu": "0", "Hostname": "node-a"}); v != 31 {
		t.Errorf("DCGM_FI_DEV_XID_ERRORS = %v, want 31", v)
	}
}

func TestRunStopsAndCleansUp(t *testing.T) {
	m := newMockNVML(2, time.Now)
	var shutdowns atomic.Int64
	m.ShutdownFunc = func() nvml.Return { shutdowns.Add(1); return nvml.SUCCESS }
	cfg := gpuOnly()
	cfg.GPU.Interval = 100 * time.Millisecond
	tel, err := New(cfg, testLogger(t), withNVML(m))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tel.Run(ctx) }()
	waitFor(t, "first tick", func() bool { return !tel.GPUs().Time.IsZero() })
	w := tel.gpu.watcher()
	if w == nil {
		t.Fatal("no XID watcher")
	}
	if err := tel.Run(ctx); err == nil {
		t.Error("second Run did not fail")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	select {
	case <-w.done:
	default:
		t.Error("XID watcher still running after Run returned")
	}
	if shutdowns.Load() != 1 {
		t.Errorf("nvml.Shutdown called %d times, want 1", shutdowns.Load())
	}
}

func TestMIGDevices(t *testing.T) {
	m := newMockNVML(2, fixedNow)
	parent := m.device(0)
	// Build MIG instances with the mock server's own MIG machinery.
	if ret, _ := parent.SetMigMode(nvml.DEVICE_MIG_ENABLE); ret != nvml.SUCCESS {
		t.Fatal(ret)
	}
	type inst struct {
		gi *server.GpuInstance
		ci *server.ComputeInstance
		mb uint64
	}
	var insts []inst
	for _, profile := range []int{nvml.GPU_INSTANCE_PROFILE_1_SLICE, nvml.GPU_INSTANCE_PROFILE_3_SLICE} {
		info, ret := parent.GetGpuInstanceProfileInfo(profile)
		if ret != nvml.SUCCESS {
			t.Fatalf("profile %d: %v", profile, ret)
		}
		gi, _ := parent.CreateGpuInstance(&info)
		ciInfo, ret := gi.GetComputeInstanceProfileInfo(nvml.COMPUTE_INSTANCE_PROFILE_1_SLICE, nvml.COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED)
		if ret != nvml.SUCCESS {
			t.Fatalf("ci profile: %v", ret)
		}
		ci, _ := gi.CreateComputeInstance(&ciInfo)
		insts = append(insts, inst{gi.(*server.GpuInstance), ci.(*server.ComputeInstance), info.MemorySizeMB})
	}
	migUUID := func(i int) string { return "MIG-0000000" + string(rune('0'+i)) }
	parent.GetMaxMigDeviceCountFunc = func() (int, nvml.Return) { return 7, nvml.SUCCESS }
	parent.GetMigDeviceHandleByIndexFunc = func(i int) (nvml.Device, nvml.Return) {
		if i >= len(insts) {
			return nil, nvml.ERROR_NOT_FOUND
		}
		in := insts[i]
		return &mock.Device{
			GetUUIDFunc:              func() (string, nvml.Return) { return migUUID(i), nvml.SUCCESS },
			GetNameFunc:              func() (string, nvml.Return) { return "NVIDIA H100 80GB HBM3 MIG", nvml.SUCCESS },
			GetGpuInstanceIdFunc:     func() (int, nvml.Return) { return int(in.gi.Info.Id), nvml.SUCCESS },
			GetComputeInstanceIdFunc: func() (int, nvml.Return) { return int(in.ci.Info.Id), nvml.SUCCESS },
			GetMemoryInfo_v2Func: func() (nvml.Memory_v2, nvml.Return) {
				total := in.mb << 20
				return nvml.Memory_v2{Total: total, Reserved: 32 << 20, Used: total / 4, Free: total - total/4 - 32<<20}, nvml.SUCCESS
			},
		}, nvml.SUCCESS
	}
	// In MIG mode a parent GPU does not report utilisation.
	parent.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{}, nvml.ERROR_NOT_SUPPORTED }

	tel := newTel(t, gpuOnly(), withNVML(m))
	tickAll(t, tel)
	snap := tel.GPUs()
	if len(snap.Devices) != 2+len(insts) {
		t.Fatalf("devices = %d, want 2 GPUs + %d MIG instances", len(snap.Devices), len(insts))
	}
	var migs []GPUDevice
	for _, d := range snap.Devices {
		if d.MIG != nil {
			migs = append(migs, d)
		}
	}
	if len(migs) != 2 {
		t.Fatalf("MIG devices = %d", len(migs))
	}
	for i, md := range migs {
		if md.MIG.ParentUUID != simUUID(0) || md.MIG.ParentIndex != 0 || md.UUID != migUUID(i) {
			t.Errorf("MIG %d = %+v %+v", i, md, md.MIG)
		}
		if md.MIG.GPUInstanceID != int(insts[i].gi.Info.Id) || md.MemoryTotalBytes == nil || *md.MemoryTotalBytes != insts[i].mb<<20 {
			t.Errorf("MIG %d: gi %d memory %v", i, md.MIG.GPUInstanceID, md.MemoryTotalBytes)
		}
		// MIG instances are read with v2 too: used excludes reserved.
		if md.MemoryUsedBytes == nil || *md.MemoryUsedBytes != insts[i].mb<<20/4 || md.MemoryReservedBytes == nil || *md.MemoryReservedBytes != 32<<20 {
			t.Errorf("MIG %d: used %v reserved %v", i, md.MemoryUsedBytes, md.MemoryReservedBytes)
		}
	}
	mfs := gather(t, tel)
	if n := count(mfs, "vigil_gpu_mig_info"); n != 2 {
		t.Errorf("vigil_gpu_mig_info series = %d, want 2", n)
	}
	mustSeries(t, mfs, "vigil_gpu_mig_info", map[string]string{"gpu": "0", "uuid": migUUID(1), "mig_parent_uuid": simUUID(0), "mig_gpu_instance": "1"})
	mustSeries(t, mfs, "vigil_gpu_mig_memory_used_bytes", map[string]string{"uuid": migUUID(0)})
	if v := mustSeries(t, mfs, "vigil_gpu_mig_memory_reserved_bytes", map[string]string{"uuid": migUUID(1)}); v != 32<<20 {
		t.Errorf("vigil_gpu_mig_memory_reserved_bytes = %v", v)
	}
	// MIG instances are not counted as GPUs, and the parent is still one.
	if n := count(mfs, "vigil_gpu_info"); n != 2 {
		t.Errorf("vigil_gpu_info series = %d, want 2", n)
	}
	// GPU 1 has MIG off: no MIG calls beyond the mode.
	if n := len(m.device(1).GetMaxMigDeviceCountCalls()); n != 0 {
		t.Errorf("GPU 1 (MIG off) asked for MIG devices %d times", n)
	}
}

func TestGPUProcesses(t *testing.T) {
	m := newMockNVML(2, fixedNow)
	m.SystemGetProcessNameFunc = func(pid int) (string, nvml.Return) {
		if pid == 4242 {
			return "vllm", nvml.SUCCESS
		}
		return "", nvml.ERROR_NOT_FOUND
	}
	m.device(1).GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
		return []nvml.ProcessInfo{{Pid: 4242, UsedGpuMemory: 30 << 30}, {Pid: 7, UsedGpuMemory: ^uint64(0)}}, nvml.SUCCESS
	}
	m.device(1).GetGraphicsRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
		return []nvml.ProcessInfo{{Pid: 4242, UsedGpuMemory: 30 << 30}}, nvml.SUCCESS // same pid: merged
	}
	tel := newTel(t, gpuOnly(), withNVML(m))
	tickAll(t, tel)
	procs := tel.GPUs().Devices[1].Processes
	if len(procs) != 2 || procs[0].PID != 7 || procs[0].UsedMemoryBytes != nil || procs[1].Name != "vllm" || *procs[1].UsedMemoryBytes != 30<<30 {
		t.Fatalf("processes = %+v", procs)
	}
	mfs := gather(t, tel)
	if v := mustSeries(t, mfs, "vigil_gpu_process_memory_used_bytes", map[string]string{"gpu": "1", "pid": "4242", "process_name": "vllm"}); v != 30<<30 {
		t.Errorf("process memory = %v", v)
	}
	if n := count(mfs, "vigil_gpu_process_memory_used_bytes"); n != 1 {
		t.Errorf("process series = %d, want 1 (unknown memory is not served)", n)
	}
}

func TestNoDriverMock(t *testing.T) {
	lib := newMockNVML(0, fixedNow)
	lib.InitFunc = func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }
	tel := newTel(t, DefaultConfig(), withNVML(lib))
	tickAll(t, tel)
	checkNoDriver(t, tel)
}

// TestRealNVML runs the real go-nvml library. Without a driver (CI, this
// project's machines) it must report the collector down with a clear reason
// and not crash; with a driver it must come up.
func TestRealNVML(t *testing.T) {
	tel := newTel(t, DefaultConfig())
	tickAll(t, tel)
	st := statusOf(t, tel, "gpu")
	if st.Up {
		t.Logf("NVML driver present: %d GPUs", len(tel.GPUs().Devices))
		return
	}
	checkNoDriver(t, tel)
}

func checkNoDriver(t *testing.T, tel *Telemetry) {
	t.Helper()
	st := statusOf(t, tel, "gpu")
	if st.Up || !strings.HasPrefix(st.Reason, "no NVML driver found: ") {
		t.Fatalf("gpu status %+v, want down with 'no NVML driver found: ...'", st)
	}
	if st.Stale {
		t.Error("a collector that never succeeded is down, not stale")
	}
	snap := tel.GPUs()
	if !strings.HasPrefix(snap.Error, "no NVML driver found") || len(snap.Devices) != 0 {
		t.Errorf("GPUs() = %+v", snap)
	}
	if host := statusOf(t, tel, "host"); !host.Up {
		t.Errorf("host collector must keep working: %+v", host)
	}
	mfs := gather(t, tel)
	if v := mustSeries(t, mfs, "vigil_collector_up", map[string]string{"collector": "gpu"}); v != 0 {
		t.Errorf("vigil_collector_up{gpu} = %v, want 0", v)
	}
	if v := mustSeries(t, mfs, "vigil_collector_up", map[string]string{"collector": "host"}); v != 1 {
		t.Errorf("vigil_collector_up{host} = %v, want 1", v)
	}
	if count(mfs, "vigil_gpu_info") != 0 {
		t.Error("GPU info served without a driver")
	}
}

func TestStaleValuesAreDropped(t *testing.T) {
	clock := newFakeClock()
	m := newMockNVML(2, fixedNow)
	tel := newTel(t, gpuOnly(), withNVML(m), withClock(clock.Now))
	tickAll(t, tel)

	cases := []struct {
		age   time.Duration
		stale bool
	}{
		{0, false},
		{2 * time.Second, false},
		{3 * time.Second, false}, // exactly 3 intervals: not yet
		{3*time.Second + time.Millisecond, true},
		{time.Hour, true},
	}
	base := clock.Now()
	for _, tc := range cases {
		clock.mu.Lock()
		clock.t = base.Add(tc.age)
		clock.mu.Unlock()
		mfs := gather(t, tel)
		_, served := series(mfs, "vigil_gpu_utilization_ratio", gpuLabel(0))
		staleMetric := mustSeries(t, mfs, "vigil_collector_stale", map[string]string{"collector": "gpu"})
		if served == tc.stale || (staleMetric == 1) != tc.stale {
			t.Errorf("age %v: values served=%v stale metric=%v, want stale=%v", tc.age, served, staleMetric, tc.stale)
		}
		if got := tel.GPUs().Stale; got != tc.stale {
			t.Errorf("age %v: GPUs().Stale=%v", tc.age, got)
		}
		if got := contains(tel.Stale(), "gpu"); got != tc.stale {
			t.Errorf("age %v: Stale()=%v", tc.age, tel.Stale())
		}
		if got := statusOf(t, tel, "gpu").Stale; got != tc.stale {
			t.Errorf("age %v: Status stale=%v", tc.age, got)
		}
		// Self-metrics are always served.
		mustSeries(t, mfs, "vigil_collector_last_success_timestamp_seconds", map[string]string{"collector": "gpu"})
	}
	// A new successful tick makes it fresh again.
	tickAll(t, tel)
	if len(tel.Stale()) != 0 {
		t.Errorf("after a fresh tick: Stale() = %v", tel.Stale())
	}
}

func TestSampleSink(t *testing.T) {
	m := newMockNVML(2, fixedNow)
	clock := newFakeClock()
	var got [][]Sample
	sinkErr := errors.New("store full")
	fail := false
	sink := func(ctx context.Context, s []Sample) error {
		got = append(got, s)
		if fail {
			return sinkErr
		}
		return nil
	}
	tel := newTel(t, gpuOnly(), withNVML(m), withClock(clock.Now), WithSampleSink(sink))
	tickAll(t, tel)
	if len(got) != 1 {
		t.Fatalf("sink called %d times, want 1", len(got))
	}
	var found bool
	for _, s := range got[0] {
		if !s.Time.Equal(clock.Now()) {
			t.Fatalf("sample time %v, want tick time %v", s.Time, clock.Now())
		}
		if s.Name == "vigil_gpu_memory_total_bytes" && s.Labels["gpu"] == "1" && s.Labels["uuid"] == simUUID(1) {
			found = s.Value == 80<<30
		}
	}
	if !found {
		t.Errorf("no vigil_gpu_memory_total_bytes{gpu=1} sample of 80 GiB in %d samples", len(got[0]))
	}
	// Failing ticks are not sent; sink errors are counted.
	fail = true
	tickAll(t, tel)
	if v := mustSeries(t, gather(t, tel), "vigil_telemetry_sink_errors_total", map[string]string{"collector": "gpu"}); v != 1 {
		t.Errorf("sink errors = %v, want 1", v)
	}
	m.device(0).GetUtilizationRatesFunc = nil
	tickAll(t, tel)
	if len(got) != 2 {
		t.Errorf("sink called %d times, want 2 (not for the failed tick)", len(got))
	}
	pairs := Sample{Labels: map[string]string{"b": "2", "a": "1"}}.SortedLabels()
	if len(pairs) != 2 || pairs[0] != [2]string{"a", "1"} {
		t.Errorf("SortedLabels = %v", pairs)
	}
}

func TestDCGMNames(t *testing.T) {
	m := newMockNVML(8, fixedNow)
	cfg := gpuOnly()
	cfg.GPU.DCGMCompatibleNames = true
	tel := newTel(t, cfg, withNVML(m), WithHostname("node-a"))
	tickAll(t, tel)
	snap := tel.GPUs()
	mfs := gather(t, tel)
	for i, d := range snap.Devices {
		l := map[string]string{"gpu": d.UUID[len(d.UUID)-1:], "UUID": d.UUID, "pci_bus_id": d.PCIBusID,
			"device": "nvidia" + d.UUID[len(d.UUID)-1:], "modelName": d.Name, "Hostname": "node-a"}
		checks := []struct {
			name string
			want float64
		}{
			{"DCGM_FI_DEV_GPU_UTIL", *d.UtilizationRatio * 100},
			{"DCGM_FI_DEV_MEM_COPY_UTIL", *d.MemoryUtilizationRatio * 100},
			{"DCGM_FI_DEV_FB_USED", float64(*d.MemoryUsedBytes >> 20)},
			{"DCGM_FI_DEV_FB_FREE", float64(*d.MemoryFreeBytes >> 20)},
			{"DCGM_FI_DEV_FB_RESERVED", float64(simReservedBytes >> 20)},
			{"DCGM_FI_DEV_POWER_USAGE", *d.PowerWatts},
			{"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", *d.EnergyJoules * 1000},
			{"DCGM_FI_DEV_GPU_TEMP", *d.TemperatureCelsius},
			{"DCGM_FI_DEV_SM_CLOCK", *d.SMClockHertz / 1e6},
			{"DCGM_FI_DEV_MEM_CLOCK", 2619},
			{"DCGM_FI_DEV_PCIE_TX_THROUGHPUT", *d.PCIeTxBytesPerSecond / 1024},
			{"DCGM_FI_DEV_PCIE_RX_THROUGHPUT", *d.PCIeRxBytesPerSecond / 1024},
			{"DCGM_FI_DEV_XID_ERRORS", 0},
			{"DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", 0},
		}
		for _, c := range checks {
			got := mustSeries(t, mfs, c.name, l)
			if diff := got - c.want; diff > 1e-6 || diff < -1e-6 {
				t.Errorf("gpu %d %s = %v, want %v", i, c.name, got, c.want)
			}
		}
	}
	// Off by default.
	tel2 := newTel(t, gpuOnly(), withNVML(newMockNVML(1, fixedNow)))
	tickAll(t, tel2)
	for name := range gather(t, tel2) {
		if strings.HasPrefix(name, "DCGM_") {
			t.Errorf("%s served with dcgm_compatible_names off", name)
		}
	}
}

func TestSimulatedIsMarked(t *testing.T) {
	cfg := gpuOnly()
	cfg.GPU.Simulate = 3
	tel := newTel(t, cfg) // no test hook: the config alone selects the simulation
	tickAll(t, tel)
	snap := tel.GPUs()
	if !snap.Simulated || len(snap.Devices) != 3 {
		t.Fatalf("GPUs() simulated=%v devices=%d", snap.Simulated, len(snap.Devices))
	}
	if st := statusOf(t, tel, "gpu"); !st.Simulated || !st.Up {
		t.Errorf("status %+v, want simulated and up", st)
	}
	mfs := gather(t, tel)
	for i := range 3 {
		mustSeries(t, mfs, "vigil_gpu_info", map[string]string{"gpu": string(rune('0' + i)), "simulated": "true"})
	}
	// The snapshots are what /v1/gpus and /v1/status will serve as JSON.
	js, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"simulated":true`, `"uuid":"` + simUUID(2) + `"`, `"unsupported":["fan_speed",`, `"fan_speed_ratio":null`, `"time":"`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("GPUs() JSON lacks %s: %s", want, js)
		}
	}
	if js, _ := json.Marshal(tel.Status()); !strings.Contains(string(js), `"name":"gpu","up":true`) || !strings.Contains(string(js), `"simulated":true`) {
		t.Errorf("Status() JSON = %s", js)
	}
	// Values move over time but stay plausible.
	for _, d := range snap.Devices {
		if *d.MemoryReservedBytes+*d.MemoryUsedBytes+*d.MemoryFreeBytes != *d.MemoryTotalBytes || *d.TemperatureCelsius < 30 || *d.TemperatureCelsius > 80 {
			t.Errorf("implausible simulated GPU: %+v", d)
		}
	}
}
