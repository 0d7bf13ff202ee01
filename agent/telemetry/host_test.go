package telemetry

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The host collector is tested against the machine the tests run on: the
// values must be plausible, not exact.

func hostOnly() Config {
	c := DefaultConfig()
	c.GPU.Enabled = false
	return c
}

func TestHostCollectorRealMachine(t *testing.T) {
	tel := newTel(t, hostOnly())
	tickAll(t, tel)
	first := tel.Host()
	if first.CPUUtilizationRatio != nil {
		t.Error("CPU utilisation on the first tick: there is no previous reading to compare with")
	}
	// Utilisation needs the kernel's CPU counters (10 ms resolution) to move
	// between two ticks; tick until they have.
	waitFor(t, "CPU counters to advance", func() bool {
		tickAll(t, tel)
		h := tel.Host()
		return h.CPUUtilizationRatio != nil && count(gather(t, tel), "vigil_host_cpu_core_utilization_ratio") == h.CPUCount
	})
	if st := statusOf(t, tel, "host"); !st.Up || st.Reason != "" {
		t.Fatalf("host status %+v", st)
	}
	h := tel.Host()
	if h.CPUCount < 1 {
		t.Errorf("CPUCount = %d", h.CPUCount)
	}
	if h.CPUUtilizationRatio == nil || *h.CPUUtilizationRatio < 0 || *h.CPUUtilizationRatio > 1 {
		t.Errorf("CPU utilisation = %v", h.CPUUtilizationRatio)
	}
	if len(h.PerCPUUtilizationRatio) != h.CPUCount {
		t.Errorf("per-CPU utilisation for %d CPUs, have %d", len(h.PerCPUUtilizationRatio), h.CPUCount)
	}
	for i, r := range h.PerCPUUtilizationRatio {
		if r < 0 || r > 1 {
			t.Errorf("cpu %d utilisation %v", i, r)
		}
	}
	if h.Load1 == nil || *h.Load1 < 0 {
		t.Errorf("load1 = %v", h.Load1)
	}
	if h.Memory == nil || h.Memory.TotalBytes == 0 || h.Memory.AvailableBytes > h.Memory.TotalBytes || h.Memory.UsedBytes > h.Memory.TotalBytes {
		t.Errorf("memory = %+v", h.Memory)
	}
	if h.Swap == nil || h.Swap.UsedBytes > h.Swap.TotalBytes {
		t.Errorf("swap = %+v", h.Swap)
	}
	for _, f := range h.Filesystems {
		if pseudoFSTypes[f.FSType] || f.SizeBytes == 0 || f.AvailableBytes > f.SizeBytes || f.FreeBytes > f.SizeBytes || f.AvailableBytes > f.FreeBytes {
			t.Errorf("file system %+v", f)
		}
	}
	for _, n := range h.Networks {
		if n.Interface == "lo" {
			t.Error("loopback reported")
		}
	}
	for _, d := range h.Disks {
		if skipDisk(d.Device) {
			t.Errorf("non-disk %s reported", d.Device)
		}
	}

	mfs := gather(t, tel)
	if v := mustSeries(t, mfs, "vigil_host_memory_total_bytes", nil); v != float64(h.Memory.TotalBytes) {
		t.Errorf("memory total metric %v != snapshot %v", v, h.Memory.TotalBytes)
	}
	if n := count(mfs, "vigil_host_cpu_core_utilization_ratio"); n != h.CPUCount {
		t.Errorf("per-core series %d, want %d", n, h.CPUCount)
	}
	if n := count(mfs, "vigil_host_cpu_seconds_total"); n != 8*h.CPUCount {
		t.Errorf("cpu seconds series %d, want 8 modes x %d CPUs", n, h.CPUCount)
	}
	if v := mustSeries(t, mfs, "vigil_host_cpu_seconds_total", map[string]string{"cpu": "0", "mode": "idle"}); v <= 0 {
		t.Errorf("cpu 0 idle seconds = %v", v)
	}
	if n := count(mfs, "vigil_host_filesystem_size_bytes"); n != len(h.Filesystems) {
		t.Errorf("filesystem series %d, snapshot %d", n, len(h.Filesystems))
	}
}

func TestHostFilters(t *testing.T) {
	cfg := hostOnly()
	cfg.Host.MountPoints = []string{"/"}
	cfg.Host.Interfaces = []string{"lo"}
	tel := newTel(t, cfg)
	tickAll(t, tel)
	h := tel.Host()
	for _, f := range h.Filesystems {
		if f.MountPoint != "/" {
			t.Errorf("mount %s reported despite mount_points filter", f.MountPoint)
		}
	}
	if len(h.Networks) != 1 || h.Networks[0].Interface != "lo" {
		t.Errorf("networks = %+v, want just lo", h.Networks)
	}
}

func TestHostDisabled(t *testing.T) {
	cfg := hostOnly()
	cfg.Host.Enabled = false
	tel := newTel(t, cfg)
	if len(tel.Status()) != 0 {
		t.Errorf("status %+v with everything off", tel.Status())
	}
	if !strings.Contains(tel.Host().Error, "disabled") || !strings.Contains(tel.GPUs().Error, "disabled") {
		t.Errorf("disabled collectors must say so: %q %q", tel.Host().Error, tel.GPUs().Error)
	}
}

func TestModelServerProcesses(t *testing.T) {
	self := os.Getpid()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "srv.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(self)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badPID := filepath.Join(dir, "bad.pid")
	if err := os.WriteFile(badPID, []byte("not-a-pid"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A fake cgroup tree holding this process, as systemd would lay it out.
	cg := filepath.Join(dir, "cgroup")
	unit := filepath.Join(cg, "system.slice", "vllm.service")
	if err := os.MkdirAll(unit, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(unit, "cgroup.procs"), []byte(strconv.Itoa(self)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	cfg := DefaultConfig()
	cfg.GPU.Simulate = 0
	cfg.Host.Processes = []ProcessConfig{
		{Name: "by-pidfile", PIDFile: pidFile},
		{Name: "by-unit", SystemdUnit: "vllm.service"},
		{Name: "by-cgroup", Cgroup: "/system.slice/vllm.service"},
		{Name: "by-exe", Exe: filepath.Base(exe)},
		{Name: "absent", PIDFile: filepath.Join(dir, "missing.pid")},
		{Name: "absent-unit", SystemdUnit: "nothing.service"},
		{Name: "broken", PIDFile: badPID},
	}
	// GPU 1 lists this process as holding 2 GiB.
	m := newMockNVML(2, fixedNow)
	m.device(1).GetComputeRunningProcessesFunc = func() ([]nvmlProcessInfo, nvmlReturn) {
		return []nvmlProcessInfo{{Pid: uint32(self), UsedGpuMemory: 2 << 30}}, nvmlSuccess
	}
	tel := newTel(t, cfg, withNVML(m))
	tel.procs.cgroupRoot = cg
	tickAll(t, tel) // gpu first, then host, then process: the join sees this tick's GPU list

	st := statusOf(t, tel, "process")
	if !st.Up || !strings.Contains(st.Reason, "broken") || strings.Contains(st.Reason, "absent") {
		t.Errorf("process status %+v: want up, the broken pid file named, absent servers not an error", st)
	}
	servers := map[string]ModelServer{}
	for _, ms := range tel.Host().ModelServers {
		servers[ms.Name] = ms
	}
	for _, name := range []string{"by-pidfile", "by-unit", "by-cgroup", "by-exe"} {
		ms := servers[name]
		if !containsInt(ms.PIDs, self) {
			t.Errorf("%s: pids %v do not include this process %d (%s)", name, ms.PIDs, self, ms.Error)
			continue
		}
		if ms.RSSBytes == 0 || ms.Threads < 1 || ms.OpenFDs < 1 || ms.CPUSeconds < 0 {
			t.Errorf("%s: implausible %+v", name, ms)
		}
		if len(ms.GPUs) != 1 || ms.GPUs[0].Index != 1 || ms.GPUs[0].UUID != simUUID(1) || ms.GPUs[0].UsedMemoryBytes != 2<<30 {
			t.Errorf("%s: GPUs held = %+v, want GPU 1 with 2 GiB", name, ms.GPUs)
		}
	}
	if len(servers["absent"].PIDs) != 0 || len(servers["absent-unit"].PIDs) != 0 || servers["broken"].Error == "" {
		t.Errorf("absent %+v absent-unit %+v broken %+v", servers["absent"], servers["absent-unit"], servers["broken"])
	}
	mfs := gather(t, tel)
	if v := mustSeries(t, mfs, "vigil_model_server_up", map[string]string{"name": "absent"}); v != 0 {
		t.Errorf("absent up = %v", v)
	}
	if v := mustSeries(t, mfs, "vigil_model_server_up", map[string]string{"name": "by-unit"}); v != 1 {
		t.Errorf("by-unit up = %v", v)
	}
	if v := mustSeries(t, mfs, "vigil_model_server_gpu_memory_used_bytes", map[string]string{"name": "by-exe", "gpu": "1"}); v != 2<<30 {
		t.Errorf("gpu memory = %v", v)
	}
	if v := mustSeries(t, mfs, "vigil_model_server_resident_memory_bytes", map[string]string{"name": "by-pidfile"}); v <= 0 {
		t.Errorf("rss = %v", v)
	}
}

func containsInt(l []int, v int) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}
