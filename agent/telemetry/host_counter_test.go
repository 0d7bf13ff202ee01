package telemetry

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeProcStat writes a /proc/stat with one CPU; times are in USER_HZ
// (1/100 s): user nice system idle iowait irq softirq steal guest guest_nice.
func writeProcStat(t *testing.T, dir string, idle, iowait int) {
	t.Helper()
	line := func(name string) string {
		return fmt.Sprintf("%s 1000 0 500 %d %d 0 10 0 0 0\n", name, idle, iowait)
	}
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(line("cpu ")+line("cpu0")+"intr 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func cpuSecondsOf(t *testing.T, pts []point, mode string) float64 {
	t.Helper()
	for _, p := range pts {
		if p.def == mCPUSeconds && p.labels[0] == "0" && p.labels[1] == mode {
			return p.value
		}
	}
	t.Fatalf("no vigil_host_cpu_seconds_total{cpu=\"0\",mode=%q} in %d points", mode, len(pts))
	return 0
}

// The kernel's iowait may go backwards a little; the counter exported for it
// must not, or rate() sees a reset and counts its whole value again. A large
// fall (a CPU that went offline and came back) is a real reset.
func TestHostCPUSecondsNeverFallBack(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HOST_PROC", dir) // gopsutil reads <HOST_PROC>/stat
	h := newHostCollector(hostOnly().Host, testLogger(t))
	tick := func() []point {
		pts, _ := h.update(context.Background(), time.Now()) // the other parts fail without their /proc files
		return pts
	}

	writeProcStat(t, dir, 100000, 5000)
	if got := cpuSecondsOf(t, tick(), "iowait"); got != 50 {
		t.Fatalf("iowait = %v, want 50", got)
	}
	writeProcStat(t, dir, 100100, 4990) // iowait 0.1 s lower
	if got := cpuSecondsOf(t, tick(), "iowait"); got != 50 {
		t.Errorf("iowait fell from 50 to %v; a counter must not go backwards", got)
	}
	writeProcStat(t, dir, 100200, 5020)
	if got := cpuSecondsOf(t, tick(), "iowait"); got != 50.2 {
		t.Errorf("iowait = %v after it rose again, want 50.2", got)
	}
	writeProcStat(t, dir, 10, 1) // CPU counters restarted
	pts := tick()
	if got := cpuSecondsOf(t, pts, "idle"); got != 0.1 {
		t.Errorf("idle = %v after a reset, want 0.1", got)
	}
	if got := cpuSecondsOf(t, pts, "iowait"); got != 0.01 {
		t.Errorf("iowait = %v after a reset, want 0.01", got)
	}
}

// Mount points under /dev, /proc, /sys, /run/credentials and the container
// runtimes' directories are left out by default, as node_exporter does; a
// tmpfs elsewhere is kept.
func TestHostFilesystemsSkipPseudoMountPoints(t *testing.T) {
	dir := t.TempDir()
	kept := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "1"), 0o755); err != nil {
		t.Fatal(err)
	}
	mountinfo := "" +
		"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n" +
		"23 22 0:5 / /dev rw,nosuid shared:2 - tmpfs udev rw\n" +
		"24 23 0:6 / /dev/shm rw,nosuid shared:3 - tmpfs tmpfs rw\n" +
		"25 22 0:7 / " + kept + " rw,relatime shared:4 - tmpfs scratch rw\n"
	if err := os.WriteFile(filepath.Join(dir, "1", "mountinfo"), []byte(mountinfo), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOST_PROC", dir) // gopsutil reads <HOST_PROC>/1/mountinfo
	h := newHostCollector(hostOnly().Host, testLogger(t))
	fs, err := h.filesystems(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range fs {
		got[f.MountPoint] = true
	}
	if !got["/"] || !got[kept] {
		t.Errorf("file systems %v: want / and %s", got, kept)
	}
	for _, mp := range []string{"/dev", "/dev/shm"} {
		if got[mp] {
			t.Errorf("file systems %v include %s", got, mp)
		}
	}
}

// An unreadable /proc/stat is an error naming the CPU times, not a host with
// zero CPUs.
func TestHostNoCPUTimesIsAnError(t *testing.T) {
	t.Setenv("HOST_PROC", t.TempDir()) // no stat file
	h := newHostCollector(hostOnly().Host, testLogger(t))
	pts, err := h.update(context.Background(), time.Now())
	for _, p := range pts {
		if p.def == mCPUs {
			t.Errorf("vigil_host_cpus = %v exported without CPU times", p.value)
		}
	}
	if err == nil || !strings.Contains(err.Error(), "cpu times") {
		t.Errorf("err = %v, want one naming the cpu times", err)
	}
}

// Partitions are left out of the disk I/O series: their I/O is inside their
// disk's, and sum() over devices would count it twice.
func TestSkipDisk(t *testing.T) {
	for name, skip := range map[string]bool{
		"sda": false, "vda": false, "xvdb": false, "nvme0n1": false, "nvme10n2": false, "mmcblk0": false, "dm-0": false, "md0": false,
		"sda1": true, "vda15": true, "xvdb2": true, "sdaa3": true, "nvme0n1p1": true, "nvme10n2p12": true, "mmcblk0p2": true,
		"loop0": true, "ram1": true, "zram0": true, "sr0": true, "fd0": true,
	} {
		if got := skipDisk(name); got != skip {
			t.Errorf("skipDisk(%q) = %v, want %v", name, got, skip)
		}
	}
}
