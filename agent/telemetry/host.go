package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/load"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/net"
)

// HostSnapshot is the latest host sample, for /v1/host.
type HostSnapshot struct {
	Time  time.Time `json:"time"`
	Stale bool      `json:"stale"`
	Error string    `json:"error,omitempty"`

	CPUCount int `json:"cpu_count"`
	// CPUUtilizationRatio is the busy fraction of all CPUs since the
	// previous tick; nil on the first tick.
	CPUUtilizationRatio *float64 `json:"cpu_utilization_ratio"`
	// PerCPUUtilizationRatio is the same per logical CPU, in CPU order.
	PerCPUUtilizationRatio []float64 `json:"per_cpu_utilization_ratio,omitempty"`

	Load1  *float64 `json:"load1"`
	Load5  *float64 `json:"load5"`
	Load15 *float64 `json:"load15"`

	Memory *MemoryUsage `json:"memory"`
	Swap   *SwapUsage   `json:"swap"`

	Filesystems []FilesystemUsage `json:"filesystems"`
	Disks       []DiskIO          `json:"disks"`
	Networks    []NetworkIO       `json:"networks"`

	// ModelServers are the configured model-server processes.
	ModelServers []ModelServer `json:"model_servers,omitempty"`
}

// MemoryUsage is physical memory in bytes.
type MemoryUsage struct {
	TotalBytes     uint64 `json:"total_bytes"`
	AvailableBytes uint64 `json:"available_bytes"`
	UsedBytes      uint64 `json:"used_bytes"`
}

// SwapUsage is swap space in bytes.
type SwapUsage struct {
	TotalBytes uint64 `json:"total_bytes"`
	UsedBytes  uint64 `json:"used_bytes"`
}

// FilesystemUsage is one mounted file system.
type FilesystemUsage struct {
	MountPoint     string `json:"mount_point"`
	Device         string `json:"device"`
	FSType         string `json:"fs_type"`
	SizeBytes      uint64 `json:"size_bytes"`
	FreeBytes      uint64 `json:"free_bytes"`
	AvailableBytes uint64 `json:"available_bytes"`
}

// DiskIO is one block device's cumulative counters.
type DiskIO struct {
	Device        string  `json:"device"`
	ReadBytes     uint64  `json:"read_bytes"`
	WrittenBytes  uint64  `json:"written_bytes"`
	Reads         uint64  `json:"reads"`
	Writes        uint64  `json:"writes"`
	IOTimeSeconds float64 `json:"io_time_seconds"`
}

// NetworkIO is one interface's cumulative counters.
type NetworkIO struct {
	Interface       string `json:"interface"`
	ReceiveBytes    uint64 `json:"receive_bytes"`
	TransmitBytes   uint64 `json:"transmit_bytes"`
	ReceivePackets  uint64 `json:"receive_packets"`
	TransmitPackets uint64 `json:"transmit_packets"`
	ReceiveErrors   uint64 `json:"receive_errors"`
	TransmitErrors  uint64 `json:"transmit_errors"`
	ReceiveDrops    uint64 `json:"receive_drops"`
	TransmitDrops   uint64 `json:"transmit_drops"`
}

// pseudoFSTypes are file systems without disk space worth reporting.
var pseudoFSTypes = map[string]bool{
	"autofs": true, "binfmt_misc": true, "bpf": true, "cgroup": true, "cgroup2": true,
	"configfs": true, "debugfs": true, "devpts": true, "devtmpfs": true, "efivarfs": true,
	"fusectl": true, "fuse.lxcfs": true, "hugetlbfs": true, "iso9660": true, "mqueue": true,
	"nsfs": true, "overlay": true, "proc": true, "procfs": true, "pstore": true,
	"rpc_pipefs": true, "securityfs": true, "selinuxfs": true, "squashfs": true,
	"erofs": true, "sysfs": true, "tracefs": true, "ramfs": true, "nfsd": true,
}

// pseudoMountPoint matches mount points that are never disks of their own:
// node_exporter's default --collector.filesystem.mount-points-exclude. The
// /var/lib/docker and containers ones come and go with every container.
var pseudoMountPoint = regexp.MustCompile(`^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)`)

// diskPartition matches partitions of whole disks (sda1, vdb2, nvme0n1p1,
// mmcblk0p1): their I/O is already counted in their disk's, so summing over
// devices would count it twice. node_exporter leaves them out the same way.
var diskPartition = regexp.MustCompile(`^((h|s|v|xv)d[a-z]+|nvme\d+n\d+p|mmcblk\d+p)\d+$`)

// skipDisk leaves out block devices that are not disks, and partitions.
func skipDisk(name string) bool {
	if diskPartition.MatchString(name) {
		return true
	}
	for _, p := range []string{"loop", "ram", "zram", "fd", "sr"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

var (
	mCPUSeconds  = newDef("vigil_host_cpu_seconds_total", "CPU time spent per logical CPU and mode.", counterT, "cpu", "mode")
	mCPUUtil     = newDef("vigil_host_cpu_utilization_ratio", "Busy fraction of all CPUs since the previous host tick (0-1).", gaugeT)
	mCPUCoreUtil = newDef("vigil_host_cpu_core_utilization_ratio", "Busy fraction of one logical CPU since the previous host tick (0-1).", gaugeT, "cpu")
	mCPUs        = newDef("vigil_host_cpus", "Number of logical CPUs.", gaugeT)
	mLoad1       = newDef("vigil_host_load1", "1-minute load average.", gaugeT)
	mLoad5       = newDef("vigil_host_load5", "5-minute load average.", gaugeT)
	mLoad15      = newDef("vigil_host_load15", "15-minute load average.", gaugeT)
	mMemTotal    = newDef("vigil_host_memory_total_bytes", "Physical memory.", gaugeT)
	mMemAvail    = newDef("vigil_host_memory_available_bytes", "Memory available for new work without swapping.", gaugeT)
	mMemUsed     = newDef("vigil_host_memory_used_bytes", "Memory in use.", gaugeT)
	mSwapTotal   = newDef("vigil_host_swap_total_bytes", "Swap space.", gaugeT)
	mSwapUsed    = newDef("vigil_host_swap_used_bytes", "Swap space in use.", gaugeT)
	fsLabels     = []string{"mountpoint", "device", "fstype"}
	mFSSize      = newDef("vigil_host_filesystem_size_bytes", "File system size.", gaugeT, fsLabels...)
	mFSFree      = newDef("vigil_host_filesystem_free_bytes", "File system free space, including space reserved for root.", gaugeT, fsLabels...)
	mFSAvail     = newDef("vigil_host_filesystem_available_bytes", "File system space available to unprivileged users.", gaugeT, fsLabels...)
	mDiskRead    = newDef("vigil_host_disk_read_bytes_total", "Bytes read from the block device.", counterT, "device")
	mDiskWrite   = newDef("vigil_host_disk_written_bytes_total", "Bytes written to the block device.", counterT, "device")
	mDiskReads   = newDef("vigil_host_disk_reads_completed_total", "Reads completed.", counterT, "device")
	mDiskWrites  = newDef("vigil_host_disk_writes_completed_total", "Writes completed.", counterT, "device")
	mDiskIOTime  = newDef("vigil_host_disk_io_time_seconds_total", "Time the device had I/O in progress.", counterT, "device")
	mNetRxB      = newDef("vigil_host_network_receive_bytes_total", "Bytes received.", counterT, "interface")
	mNetTxB      = newDef("vigil_host_network_transmit_bytes_total", "Bytes transmitted.", counterT, "interface")
	mNetRxP      = newDef("vigil_host_network_receive_packets_total", "Packets received.", counterT, "interface")
	mNetTxP      = newDef("vigil_host_network_transmit_packets_total", "Packets transmitted.", counterT, "interface")
	mNetRxE      = newDef("vigil_host_network_receive_errors_total", "Receive errors.", counterT, "interface")
	mNetTxE      = newDef("vigil_host_network_transmit_errors_total", "Transmit errors.", counterT, "interface")
	mNetRxD      = newDef("vigil_host_network_receive_drop_total", "Received packets dropped.", counterT, "interface")
	mNetTxD      = newDef("vigil_host_network_transmit_drop_total", "Transmitted packets dropped.", counterT, "interface")
)

type hostCollector struct {
	cfg HostConfig
	log *slog.Logger

	// Owned by the update goroutine.
	prevTotal cpu.TimesStat
	prevPer   map[string]cpu.TimesStat
	// cpuOut is the last value exported per CPU and mode, keeping
	// vigil_host_cpu_seconds_total monotonic (see cpuCounter).
	cpuOut map[[2]string]float64
	// absent are the configured mount points and interfaces not found at
	// the last look, each warned about once (a typo gives no series).
	absent map[string]bool

	mu   sync.Mutex
	snap HostSnapshot

	// usageFn reads one file system's usage (statfs); a field so that
	// tests can make it hang. statfsTimeout bounds each call: statfs on a
	// hung network file system (NFS, CIFS) blocks in the kernel, and no
	// context can interrupt it.
	usageFn       func(ctx context.Context, path string) (*disk.UsageStat, error)
	statfsTimeout time.Duration
	// stuck are the mount points whose statfs is still blocked after its
	// timeout; they are skipped (no new goroutine piles up behind them)
	// until that call returns.
	stuckMu sync.Mutex
	stuck   map[string]bool
}

// defaultStatfsTimeout is node_exporter's default for the same problem.
const defaultStatfsTimeout = 5 * time.Second

func newHostCollector(cfg HostConfig, log *slog.Logger) *hostCollector {
	return &hostCollector{cfg: cfg, log: log, usageFn: disk.UsageWithContext, statfsTimeout: defaultStatfsTimeout, stuck: map[string]bool{}}
}

// usage reads one mount point's usage within statfsTimeout. A call that
// does not return in time marks the mount point stuck: later ticks skip it
// at once, and the call, when it finally returns, clears the mark.
func (h *hostCollector) usage(ctx context.Context, mountPoint string) (*disk.UsageStat, error) {
	h.stuckMu.Lock()
	if h.stuck[mountPoint] {
		h.stuckMu.Unlock()
		return nil, fmt.Errorf("statfs has not answered for over %s (a hung network file system?); skipped until it does", h.statfsTimeout)
	}
	h.stuckMu.Unlock()
	type result struct {
		u   *disk.UsageStat
		err error
	}
	done := make(chan result, 1)
	var finished bool // under stuckMu
	go func() {
		u, err := h.usageFn(context.WithoutCancel(ctx), mountPoint)
		done <- result{u, err}
		h.stuckMu.Lock()
		finished = true
		wasStuck := h.stuck[mountPoint]
		delete(h.stuck, mountPoint)
		h.stuckMu.Unlock()
		if wasStuck {
			h.log.Info("file system answers again", "mount_point", mountPoint)
		}
	}()
	t := time.NewTimer(h.statfsTimeout)
	defer t.Stop()
	select {
	case r := <-done:
		return r.u, r.err
	case <-t.C:
	}
	h.stuckMu.Lock()
	if finished { // it answered just as the timer fired
		h.stuckMu.Unlock()
		r := <-done
		return r.u, r.err
	}
	h.stuck[mountPoint] = true
	h.stuckMu.Unlock()
	h.log.Warn("file system did not answer statfs in time; skipping it until it does (a hung network file system?)", "mount_point", mountPoint, "timeout", h.statfsTimeout)
	return nil, fmt.Errorf("statfs did not answer within %s (a hung network file system?)", h.statfsTimeout)
}

func (h *hostCollector) name() string            { return "host" }
func (h *hostCollector) interval() time.Duration { return h.cfg.Interval }
func (h *hostCollector) simulated() bool         { return false }
func (h *hostCollector) close()                  {}

func (h *hostCollector) snapshot() HostSnapshot {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.snap
}

// busy is the busy fraction between two readings of the same CPU(s).
func busy(prev, cur cpu.TimesStat) (float64, bool) {
	idle := func(t cpu.TimesStat) float64 { return t.Idle + t.Iowait }
	// Guest time is already included in user time on Linux.
	total := func(t cpu.TimesStat) float64 {
		return t.User + t.System + t.Idle + t.Nice + t.Iowait + t.Irq + t.Softirq + t.Steal
	}
	dt := total(cur) - total(prev)
	if dt <= 0 {
		return 0, false
	}
	r := 1 - (idle(cur)-idle(prev))/dt
	return min(max(r, 0), 1), true
}

func (h *hostCollector) update(ctx context.Context, now time.Time) ([]point, error) {
	s := HostSnapshot{Time: now}
	var errs []error
	var pts []point
	parts := 0 // how many parts worked

	if per, err := cpu.TimesWithContext(ctx, true); err != nil {
		errs = append(errs, fmt.Errorf("cpu times: %w", err))
	} else if len(per) == 0 {
		// gopsutil answers an unreadable /proc/stat with no CPUs and no error.
		errs = append(errs, errors.New("cpu times: no CPU lines read from /proc/stat"))
	} else {
		parts++
		var tot cpu.TimesStat
		s.CPUCount = len(per)
		pts = append(pts, pt(mCPUs, float64(len(per))))
		cur := make(map[string]cpu.TimesStat, len(per))
		for _, c := range per {
			id := strings.TrimPrefix(c.CPU, "cpu")
			cur[id] = c
			for _, m := range []struct {
				mode string
				v    float64
			}{
				{"user", c.User - c.Guest}, {"nice", c.Nice - c.GuestNice}, {"system", c.System}, {"idle", c.Idle},
				{"iowait", c.Iowait}, {"irq", c.Irq}, {"softirq", c.Softirq}, {"steal", c.Steal},
			} {
				pts = append(pts, pt(mCPUSeconds, h.cpuCounter(id, m.mode, max(m.v, 0)), id, m.mode))
			}
			tot.User += c.User
			tot.System += c.System
			tot.Idle += c.Idle
			tot.Nice += c.Nice
			tot.Iowait += c.Iowait
			tot.Irq += c.Irq
			tot.Softirq += c.Softirq
			tot.Steal += c.Steal
		}
		if h.prevPer != nil {
			if r, ok := busy(h.prevTotal, tot); ok {
				s.CPUUtilizationRatio = ptr(r)
				pts = append(pts, pt(mCPUUtil, r))
			}
			for _, c := range per {
				id := strings.TrimPrefix(c.CPU, "cpu")
				prev, seen := h.prevPer[id]
				r, ok := busy(prev, c)
				if !seen || !ok {
					r = 0
				}
				s.PerCPUUtilizationRatio = append(s.PerCPUUtilizationRatio, r)
				if seen && ok {
					pts = append(pts, pt(mCPUCoreUtil, r, id))
				}
			}
		}
		h.prevTotal, h.prevPer = tot, cur
	}

	if l, err := load.AvgWithContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("load average: %w", err))
	} else {
		parts++
		s.Load1, s.Load5, s.Load15 = ptr(l.Load1), ptr(l.Load5), ptr(l.Load15)
		pts = append(pts, pt(mLoad1, l.Load1), pt(mLoad5, l.Load5), pt(mLoad15, l.Load15))
	}

	if vm, err := mem.VirtualMemoryWithContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("memory: %w", err))
	} else {
		parts++
		s.Memory = &MemoryUsage{TotalBytes: vm.Total, AvailableBytes: vm.Available, UsedBytes: vm.Used}
		pts = append(pts, pt(mMemTotal, float64(vm.Total)), pt(mMemAvail, float64(vm.Available)), pt(mMemUsed, float64(vm.Used)))
	}
	if sw, err := mem.SwapMemoryWithContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("swap: %w", err))
	} else {
		parts++
		s.Swap = &SwapUsage{TotalBytes: sw.Total, UsedBytes: sw.Used}
		pts = append(pts, pt(mSwapTotal, float64(sw.Total)), pt(mSwapUsed, float64(sw.Used)))
	}

	if fs, err := h.filesystems(ctx); err != nil {
		errs = append(errs, err)
	} else {
		parts++
		s.Filesystems = fs
		for _, f := range fs {
			pts = append(pts,
				pt(mFSSize, float64(f.SizeBytes), f.MountPoint, f.Device, f.FSType),
				pt(mFSFree, float64(f.FreeBytes), f.MountPoint, f.Device, f.FSType),
				pt(mFSAvail, float64(f.AvailableBytes), f.MountPoint, f.Device, f.FSType))
		}
	}

	if io, err := disk.IOCountersWithContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("disk I/O: %w", err))
	} else {
		parts++
		for name, c := range io {
			if skipDisk(name) {
				continue
			}
			s.Disks = append(s.Disks, DiskIO{Device: name, ReadBytes: c.ReadBytes, WrittenBytes: c.WriteBytes,
				Reads: c.ReadCount, Writes: c.WriteCount, IOTimeSeconds: float64(c.IoTime) / 1000})
		}
		sort.Slice(s.Disks, func(i, j int) bool { return s.Disks[i].Device < s.Disks[j].Device })
		for _, d := range s.Disks {
			pts = append(pts,
				pt(mDiskRead, float64(d.ReadBytes), d.Device), pt(mDiskWrite, float64(d.WrittenBytes), d.Device),
				pt(mDiskReads, float64(d.Reads), d.Device), pt(mDiskWrites, float64(d.Writes), d.Device),
				pt(mDiskIOTime, d.IOTimeSeconds, d.Device))
		}
	}

	if nics, err := net.IOCountersWithContext(ctx, true); err != nil {
		errs = append(errs, fmt.Errorf("network I/O: %w", err))
	} else {
		parts++
		for _, n := range nics {
			if len(h.cfg.Interfaces) > 0 && !slices.Contains(h.cfg.Interfaces, n.Name) {
				continue
			}
			if len(h.cfg.Interfaces) == 0 && n.Name == "lo" {
				continue
			}
			s.Networks = append(s.Networks, NetworkIO{Interface: n.Name,
				ReceiveBytes: n.BytesRecv, TransmitBytes: n.BytesSent,
				ReceivePackets: n.PacketsRecv, TransmitPackets: n.PacketsSent,
				ReceiveErrors: n.Errin, TransmitErrors: n.Errout,
				ReceiveDrops: n.Dropin, TransmitDrops: n.Dropout})
		}
		h.noteAbsent("telemetry.host.interfaces", h.cfg.Interfaces, func(name string) bool {
			return slices.ContainsFunc(s.Networks, func(n NetworkIO) bool { return n.Interface == name })
		})
		sort.Slice(s.Networks, func(i, j int) bool { return s.Networks[i].Interface < s.Networks[j].Interface })
		for _, n := range s.Networks {
			i := n.Interface
			pts = append(pts,
				pt(mNetRxB, float64(n.ReceiveBytes), i), pt(mNetTxB, float64(n.TransmitBytes), i),
				pt(mNetRxP, float64(n.ReceivePackets), i), pt(mNetTxP, float64(n.TransmitPackets), i),
				pt(mNetRxE, float64(n.ReceiveErrors), i), pt(mNetTxE, float64(n.TransmitErrors), i),
				pt(mNetRxD, float64(n.ReceiveDrops), i), pt(mNetTxD, float64(n.TransmitDrops), i))
		}
	}

	if parts == 0 {
		return nil, fmt.Errorf("host: every part failed: %w", partial(errs))
	}
	err := partial(errs)
	if err != nil {
		s.Error = err.Error()
	}
	h.mu.Lock()
	h.snap = s
	h.mu.Unlock()
	return pts, err
}

// cpuJumpBack is how far a CPU counter may fall before it is taken as a
// reset (a CPU taken offline and back) rather than jitter; node_exporter
// uses the same 3 s.
const cpuJumpBack = 3.0

// cpuCounter keeps a CPU time counter from going backwards. The kernel's
// iowait may decrease (proc(5): "this value may decrease in certain
// conditions"), and a counter that falls looks like a reset to rate(),
// which then counts the whole value again. A small fall repeats the
// previous value; a large one is a real reset and is passed on.
func (h *hostCollector) cpuCounter(cpuID, mode string, v float64) float64 {
	if h.cpuOut == nil {
		h.cpuOut = map[[2]string]float64{}
	}
	k := [2]string{cpuID, mode}
	if prev, ok := h.cpuOut[k]; ok && v < prev && prev-v < cpuJumpBack {
		return prev
	}
	h.cpuOut[k] = v
	return v
}

// filesystems lists real mounted file systems, each mount point once.
func (h *hostCollector) filesystems(ctx context.Context) ([]FilesystemUsage, error) {
	parts, err := disk.PartitionsWithContext(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("mounts: %w", err)
	}
	seen := map[string]bool{}
	var out []FilesystemUsage
	var errs []string
	for _, p := range parts {
		if seen[p.Mountpoint] {
			continue
		}
		if len(h.cfg.MountPoints) > 0 {
			if !slices.Contains(h.cfg.MountPoints, p.Mountpoint) {
				continue
			}
		} else if pseudoFSTypes[p.Fstype] || pseudoMountPoint.MatchString(p.Mountpoint) {
			continue
		}
		seen[p.Mountpoint] = true
		u, err := h.usage(ctx, p.Mountpoint)
		if err != nil {
			errs = append(errs, p.Mountpoint+": "+err.Error())
			continue
		}
		if u.Total == 0 {
			continue
		}
		// gopsutil's Free is what unprivileged users may use (f_bavail);
		// Total - Used includes the root reserve (f_bfree).
		out = append(out, FilesystemUsage{MountPoint: p.Mountpoint, Device: p.Device, FSType: p.Fstype,
			SizeBytes: u.Total, FreeBytes: u.Total - u.Used, AvailableBytes: u.Free})
	}
	h.noteAbsent("telemetry.host.mount_points", h.cfg.MountPoints, func(mp string) bool { return seen[mp] })
	sort.Slice(out, func(i, j int) bool { return out[i].MountPoint < out[j].MountPoint })
	if len(errs) > 0 && len(out) == 0 {
		return nil, fmt.Errorf("file systems: %s", strings.Join(errs, "; "))
	}
	if len(errs) > 0 {
		h.log.Debug("some file systems could not be read", "errors", errs)
	}
	return out, nil
}

// Host returns the latest host snapshot, with the model-server processes.
func (t *Telemetry) Host() HostSnapshot {
	var s HostSnapshot
	if t.host == nil {
		s.Error = "host collector disabled (telemetry.host.enabled: false)"
	} else {
		s = t.host.snapshot()
		s.Stale, s.Error = t.freshness(t.host)
	}
	if t.procs != nil {
		s.ModelServers = t.procs.snapshot()
	}
	return s
}

// noteAbsent warns once about each configured name (of key) that found is
// false for, and notes when it turns up: a misspelt interface or mount
// point otherwise just gives no series.
func (h *hostCollector) noteAbsent(key string, names []string, found func(string) bool) {
	if h.absent == nil {
		h.absent = map[string]bool{}
	}
	for _, name := range names {
		k := key + "\x00" + name
		switch here := found(name); {
		case !here && !h.absent[k]:
			h.absent[k] = true
			h.log.Warn("a configured name is not on this host (a typo? it gives no series until it appears)", "key", key, "name", name)
		case here && h.absent[k]:
			delete(h.absent, k)
			h.log.Info("a configured name is on this host now", "key", key, "name", name)
		}
	}
}
