package telemetry

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// One real reading: an NVIDIA H200, driver 580.159.04, one python3 process
// holding 1.4 GB (2026-11-27, figures in the lead's notes, device1/).
// nvidia-smi showed 1395 MiB used of 143771 MiB; NVML's v1 memory info (what
// nvidia-ml-py's nvmlDeviceGetMemoryInfo and this collector used to read)
// said 2107506688 bytes used, because v1 counts the driver's reserved memory
// as used. nvidia-smi prints whole MiB, so reserved is derived from its
// figure: total - free - used.
const (
	h200Total  = 150754820096 // 143771 MiB
	h200Free   = 148647313408
	h200UsedV1 = 2107506688 // v1: reserved + used
	h200UsedV2 = 1395 << 20 // nvidia-smi's memory.used
	h200Rsvd   = h200Total - h200Free - h200UsedV2
)

// setMemory makes a mock GPU answer both memory calls consistently.
func setMemory(d *simDevice, total, reserved, used, free uint64) {
	d.GetMemoryInfo_v2Func = func() (nvml.Memory_v2, nvml.Return) {
		return nvml.Memory_v2{Total: total, Reserved: reserved, Used: used, Free: free}, nvml.SUCCESS
	}
	d.GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) {
		return nvml.Memory{Total: total, Used: reserved + used, Free: free}, nvml.SUCCESS
	}
}

func TestGPUMemoryV2(t *testing.T) {
	if h200UsedV2+h200Rsvd != h200UsedV1 {
		t.Fatalf("fixture: v2 used + reserved = %d, v1 used %d", h200UsedV2+h200Rsvd, h200UsedV1)
	}
	cases := []struct {
		name                        string
		total, reserved, used, free uint64
		fbUsed, fbFree, fbReserved  float64 // DCGM names, MiB
		jsonReserved                string
	}{
		{"H200 driver 580 as nvidia-smi showed it", h200Total, h200Rsvd, h200UsedV2, h200Free,
			1395, 141761, 614, `"memory_reserved_bytes":644743168`},
		{"nothing reserved", 80 << 30, 0, 10 << 30, 70 << 30,
			10 << 10, 70 << 10, 0, `"memory_reserved_bytes":0`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newMockNVML(1, fixedNow)
			setMemory(m.device(0), tc.total, tc.reserved, tc.used, tc.free)
			cfg := gpuOnly()
			cfg.GPU.DCGMCompatibleNames = true
			tel := newTel(t, cfg, withNVML(m))
			tickAll(t, tel)

			d := tel.GPUs().Devices[0]
			if *d.MemoryTotalBytes != tc.total || *d.MemoryUsedBytes != tc.used || *d.MemoryFreeBytes != tc.free ||
				d.MemoryReservedBytes == nil || *d.MemoryReservedBytes != tc.reserved {
				t.Fatalf("memory total %d used %d free %d reserved %v, want %d %d %d %d", *d.MemoryTotalBytes,
					*d.MemoryUsedBytes, *d.MemoryFreeBytes, d.MemoryReservedBytes, tc.total, tc.used, tc.free, tc.reserved)
			}
			mfs := gather(t, tel)
			for name, want := range map[string]float64{
				"vigil_gpu_memory_total_bytes":    float64(tc.total),
				"vigil_gpu_memory_used_bytes":     float64(tc.used),
				"vigil_gpu_memory_free_bytes":     float64(tc.free),
				"vigil_gpu_memory_reserved_bytes": float64(tc.reserved),
			} {
				if v := mustSeries(t, mfs, name, map[string]string{"gpu": "0", "uuid": simUUID(0)}); v != want {
					t.Errorf("%s = %v, want %v", name, v, want)
				}
			}
			for name, want := range map[string]float64{
				"DCGM_FI_DEV_FB_USED": tc.fbUsed, "DCGM_FI_DEV_FB_FREE": tc.fbFree, "DCGM_FI_DEV_FB_RESERVED": tc.fbReserved,
			} {
				if v := mustSeries(t, mfs, name, map[string]string{"gpu": "0", "UUID": simUUID(0)}); v != want {
					t.Errorf("%s = %v MiB, want %v", name, v, want)
				}
			}
			js, err := json.Marshal(tel.GPUs())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(js), tc.jsonReserved) {
				t.Errorf("GPUs() JSON lacks %s: %s", tc.jsonReserved, js)
			}
			if n := len(m.device(0).GetMemoryInfoCalls()); n != 0 {
				t.Errorf("v1 memory info called %d times while v2 works", n)
			}
		})
	}
}

// A driver that answers v2 with one of these errors gets v1: used then
// includes the reserved memory, no reserved series is served, and v2 is not
// asked again.
func TestGPUMemoryV1Fallback(t *testing.T) {
	for _, ret := range []nvml.Return{nvml.ERROR_FUNCTION_NOT_FOUND, nvml.ERROR_NOT_SUPPORTED, nvml.ERROR_ARGUMENT_VERSION_MISMATCH} {
		t.Run(ret.String(), func(t *testing.T) {
			m := newMockNVML(2, fixedNow)
			for i := range 2 {
				setMemory(m.device(i), h200Total, h200Rsvd, h200UsedV2, h200Free)
			}
			m.device(1).GetMemoryInfo_v2Func = func() (nvml.Memory_v2, nvml.Return) { return nvml.Memory_v2{}, ret }
			cfg := gpuOnly()
			cfg.GPU.DCGMCompatibleNames = true
			tel := newTel(t, cfg, withNVML(m))
			const ticks = 3
			for range ticks {
				tickAll(t, tel)
			}
			noV2, withV2 := m.device(1), m.device(0)
			if v2, v1 := len(noV2.GetMemoryInfo_v2Calls()), len(noV2.GetMemoryInfoCalls()); v2 != 1 || v1 != ticks {
				t.Errorf("GPU without v2: v2 called %d times, v1 %d times over %d ticks; want 1 and %d", v2, v1, ticks, ticks)
			}
			if v2, v1 := len(withV2.GetMemoryInfo_v2Calls()), len(withV2.GetMemoryInfoCalls()); v2 != ticks || v1 != 0 {
				t.Errorf("GPU with v2: v2 called %d times, v1 %d times; want %d and 0", v2, v1, ticks)
			}
			if st := statusOf(t, tel, "gpu"); !st.Up || st.Reason != "" || st.Errors != 0 {
				t.Errorf("falling back is not an error: status %+v", st)
			}
			d := tel.GPUs().Devices[1]
			if d.MemoryUsedBytes == nil || *d.MemoryUsedBytes != h200UsedV1 || d.MemoryReservedBytes != nil || contains(d.Unsupported, fMemory) {
				t.Errorf("fallback device: used %v reserved %v unsupported %v; want v1's %d, nil, memory supported",
					d.MemoryUsedBytes, d.MemoryReservedBytes, d.Unsupported, h200UsedV1)
			}
			mfs := gather(t, tel)
			if v := mustSeries(t, mfs, "vigil_gpu_memory_used_bytes", gpuLabel(1)); v != h200UsedV1 {
				t.Errorf("GPU 1 used = %v, want v1's %d", v, h200UsedV1)
			}
			if v := mustSeries(t, mfs, "vigil_gpu_memory_used_bytes", gpuLabel(0)); v != h200UsedV2 {
				t.Errorf("GPU 0 used = %v, want v2's %d", v, h200UsedV2)
			}
			for _, name := range []string{"vigil_gpu_memory_reserved_bytes", "DCGM_FI_DEV_FB_RESERVED"} {
				if _, ok := series(mfs, name, gpuLabel(1)); ok {
					t.Errorf("%s served for GPU 1, whose reserved memory is unknown", name)
				}
				mustSeries(t, mfs, name, gpuLabel(0))
			}
			js, _ := json.Marshal(d)
			if !strings.Contains(string(js), `"memory_reserved_bytes":null`) {
				t.Errorf("fallback device JSON: %s", js)
			}
		})
	}
}

// A driver without the nvmlDeviceGetMemoryInfo_v2 symbol (before R510) is
// never asked for it: go-nvml would call the missing entry point and crash.
// The mock's v2 function is left unset, so a call would panic the tick.
func TestGPUMemoryV2SymbolMissing(t *testing.T) {
	m := newMockNVML(2, fixedNow)
	for i := range 2 {
		setMemory(m.device(i), h200Total, h200Rsvd, h200UsedV2, h200Free)
		m.device(i).GetMemoryInfo_v2Func = nil
	}
	m.LookupSymbolFunc = func(sym string) error {
		if sym == "nvmlDeviceGetMemoryInfo_v2" {
			return errors.New("undefined symbol: " + sym)
		}
		return nil
	}
	tel := newTel(t, gpuOnly(), withNVML(m))
	tickAll(t, tel)
	tickAll(t, tel)
	if st := statusOf(t, tel, "gpu"); !st.Up || st.Reason != "" {
		t.Fatalf("status %+v, want up", st)
	}
	for i, d := range tel.GPUs().Devices {
		if d.MemoryUsedBytes == nil || *d.MemoryUsedBytes != h200UsedV1 || d.MemoryReservedBytes != nil {
			t.Errorf("gpu %d: used %v reserved %v, want v1's %d and nil", i, d.MemoryUsedBytes, d.MemoryReservedBytes, h200UsedV1)
		}
		if n := len(m.device(i).GetMemoryInfoCalls()); n != 2 {
			t.Errorf("gpu %d: v1 called %d times, want 2", i, n)
		}
	}
	if n := count(gather(t, tel), "vigil_gpu_memory_reserved_bytes"); n != 0 {
		t.Errorf("%d reserved series without v2", n)
	}
}

// Other errors from v2 are errors of the tick, not a reason to give up on
// v2: it is asked again and the reading recovers.
func TestGPUMemoryV2ErrorIsRetried(t *testing.T) {
	m := newMockNVML(1, fixedNow)
	d := m.device(0)
	setMemory(d, h200Total, h200Rsvd, h200UsedV2, h200Free)
	good := d.GetMemoryInfo_v2Func
	d.GetMemoryInfo_v2Func = func() (nvml.Memory_v2, nvml.Return) { return nvml.Memory_v2{}, nvml.ERROR_UNKNOWN }
	tel := newTel(t, gpuOnly(), withNVML(m))
	tickAll(t, tel)
	st := statusOf(t, tel, "gpu")
	if !st.Up || !strings.Contains(st.Reason, "memory") || st.Errors != 1 {
		t.Fatalf("status %+v, want up (partial) naming memory", st)
	}
	if tel.GPUs().Devices[0].MemoryUsedBytes != nil {
		t.Error("memory served after a failed read")
	}
	d.GetMemoryInfo_v2Func = good
	tickAll(t, tel)
	if dev := tel.GPUs().Devices[0]; dev.MemoryUsedBytes == nil || *dev.MemoryUsedBytes != h200UsedV2 || dev.MemoryReservedBytes == nil {
		t.Errorf("after recovery: used %v reserved %v, want v2's", dev.MemoryUsedBytes, dev.MemoryReservedBytes)
	}
	if v2, v1 := len(d.GetMemoryInfo_v2Calls()), len(d.GetMemoryInfoCalls()); v2 != 2 || v1 != 0 {
		t.Errorf("v2 called %d times, v1 %d times; want 2 and 0", v2, v1)
	}
}

// Whether v2 answers may depend on the MIG mode, like the other fields: a
// mode change asks v2 again.
func TestGPUMemoryV2AskedAgainWhenMIGModeChanges(t *testing.T) {
	m := newMockNVML(1, fixedNow)
	d := m.device(0)
	setMemory(d, h200Total, h200Rsvd, h200UsedV2, h200Free)
	good := d.GetMemoryInfo_v2Func
	mig := nvml.DEVICE_MIG_ENABLE
	d.GetMigModeFunc = func() (int, int, nvml.Return) { return mig, mig, nvml.SUCCESS }
	d.GetMaxMigDeviceCountFunc = func() (int, nvml.Return) { return 0, nvml.SUCCESS }
	d.GetMemoryInfo_v2Func = func() (nvml.Memory_v2, nvml.Return) {
		if mig == nvml.DEVICE_MIG_ENABLE {
			return nvml.Memory_v2{}, nvml.ERROR_NOT_SUPPORTED
		}
		return good()
	}
	tel := newTel(t, gpuOnly(), withNVML(m))
	tickAll(t, tel)
	tickAll(t, tel)
	if dev := tel.GPUs().Devices[0]; dev.MemoryReservedBytes != nil || *dev.MemoryUsedBytes != h200UsedV1 {
		t.Fatalf("in MIG mode without v2: used %v reserved %v", *dev.MemoryUsedBytes, dev.MemoryReservedBytes)
	}
	mig = nvml.DEVICE_MIG_DISABLE
	tickAll(t, tel)
	if dev := tel.GPUs().Devices[0]; dev.MemoryReservedBytes == nil || *dev.MemoryUsedBytes != h200UsedV2 {
		t.Fatalf("after MIG was turned off: used %v reserved %v, want v2's", *dev.MemoryUsedBytes, dev.MemoryReservedBytes)
	}
	if n := len(d.GetMemoryInfo_v2Calls()); n != 2 {
		t.Errorf("v2 called %d times, want 2 (once in MIG mode, once after)", n)
	}
}
