package telemetry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/process"
)

// ModelServer is one configured model server and the processes found for it.
type ModelServer struct {
	Name string `json:"name"`
	// PIDs are the matching processes; empty when none is running.
	PIDs []int `json:"pids"`
	// CPUSeconds is the current processes' lifetime CPU time, which falls
	// when one exits; vigil_model_server_cpu_seconds_total does not.
	CPUSeconds float64   `json:"cpu_seconds"`
	RSSBytes   uint64    `json:"rss_bytes"`
	Threads    int       `json:"threads"`
	OpenFDs    int       `json:"open_fds"`
	Error      string    `json:"error,omitempty"`
	GPUs       []HeldGPU `json:"gpus"`
}

// HeldGPU is GPU memory held by a model server's processes on one GPU.
type HeldGPU struct {
	Index           int    `json:"index"`
	UUID            string `json:"uuid"`
	UsedMemoryBytes uint64 `json:"used_memory_bytes"`
}

var (
	mMSUp      = newDef("vigil_model_server_up", "1 when at least one process of the configured model server was found.", gaugeT, "name")
	mMSProcs   = newDef("vigil_model_server_processes", "Processes found for the model server.", gaugeT, "name")
	mMSCPU     = newDef("vigil_model_server_cpu_seconds_total", "User and system CPU time the model server's processes used since the agent started, those that exited since included.", counterT, "name")
	mMSRSS     = newDef("vigil_model_server_resident_memory_bytes", "Resident memory of the model server's processes.", gaugeT, "name")
	mMSThreads = newDef("vigil_model_server_threads", "Threads of the model server's processes.", gaugeT, "name")
	mMSFDs     = newDef("vigil_model_server_open_fds", "Open file descriptors of the model server's processes.", gaugeT, "name")
	mMSGPUMem  = newDef("vigil_model_server_gpu_memory_used_bytes",
		"GPU memory held by the model server's processes, per GPU (joined with NVML's process list).", gaugeT, "name", "gpu", "uuid")
)

// processCollector watches the model servers named in telemetry.host.processes.
type processCollector struct {
	cfg      HostConfig
	gpuProcs func() map[int][]gpuHold
	log      *slog.Logger
	// cgroupRoot is where cgroup.procs files are looked up (tests change it).
	cgroupRoot string

	// selfCreatedMs is the agent's start time as the kernel reports it (to
	// compare with other processes' at the same resolution): CPU a process
	// used before it is not counted. primed says whether the first tick ran
	// (its processes count from then); cpu is each model server's account,
	// by name. All three belong to update's goroutine.
	selfCreatedMs int64
	primed        bool
	cpu           map[string]*cpuAccount

	mu   sync.Mutex
	snap []ModelServer
}

// cpuAccount keeps a model server's CPU counter from falling while its
// processes come and go. A plain sum over the current processes fell by
// an exited process's CPU time, to a value Prometheus takes for a counter
// reset and adds whole to rate(): a spike of the other processes' lifetime
// CPU. So each process adds what it used since it was last seen; the
// processes of the first tick count from then, a process found later and
// started after the agent adds its whole CPU time; and one that exits keeps
// what it added (up to its last tick).
type cpuAccount struct {
	total float64
	last  map[procKey]float64 // CPU seconds of each process at its last tick
}

// procKey tells a process from a later one given the same pid.
type procKey struct {
	pid       int
	createdMs int64
}

func newProcessCollector(cfg HostConfig, gpuProcs func() map[int][]gpuHold, log *slog.Logger) *processCollector {
	p := &processCollector{cfg: cfg, gpuProcs: gpuProcs, log: log, cgroupRoot: "/sys/fs/cgroup", cpu: map[string]*cpuAccount{}}
	if self, err := process.NewProcess(int32(os.Getpid())); err == nil {
		p.selfCreatedMs, _ = self.CreateTime()
	}
	return p
}

func (p *processCollector) name() string            { return "process" }
func (p *processCollector) interval() time.Duration { return p.cfg.Interval }
func (p *processCollector) simulated() bool         { return false }
func (p *processCollector) close()                  {}

func (p *processCollector) snapshot() []ModelServer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.snap
}

func (p *processCollector) update(ctx context.Context, now time.Time) ([]point, error) {
	var all []*process.Process // listed once per tick, only if an exe matcher needs it
	var holds map[int][]gpuHold
	if p.gpuProcs != nil {
		holds = p.gpuProcs()
	}
	var errs []error
	var pts []point
	out := make([]ModelServer, 0, len(p.cfg.Processes))
	for _, pc := range p.cfg.Processes {
		ms := ModelServer{Name: pc.Name, PIDs: []int{}, GPUs: []HeldGPU{}}
		pids, err := p.find(ctx, pc, &all)
		if err != nil {
			ms.Error = err.Error()
			errs = append(errs, fmt.Errorf("%s: %w", pc.Name, err))
		}
		gpuMem := map[int]*HeldGPU{}
		acct := p.cpu[pc.Name]
		if acct == nil {
			acct = &cpuAccount{last: map[procKey]float64{}}
			p.cpu[pc.Name] = acct
		}
		seen := make(map[procKey]float64, len(pids))
		for _, pid := range pids {
			proc, err := process.NewProcessWithContext(ctx, int32(pid))
			if err != nil {
				continue // exited between listing and reading
			}
			ms.PIDs = append(ms.PIDs, pid)
			if t, err := proc.TimesWithContext(ctx); err == nil {
				cpu := t.User + t.System
				ms.CPUSeconds += cpu
				// An unknown start time (0) counts from now on, like a
				// process older than the agent.
				created, _ := proc.CreateTimeWithContext(ctx)
				k := procKey{pid, created}
				if prev, ok := acct.last[k]; ok {
					acct.total += max(cpu-prev, 0)
				} else if p.primed && created >= p.selfCreatedMs {
					acct.total += cpu
				}
				seen[k] = cpu
			}
			if m, err := proc.MemoryInfoWithContext(ctx); err == nil {
				ms.RSSBytes += m.RSS
			}
			if n, err := proc.NumThreadsWithContext(ctx); err == nil {
				ms.Threads += int(n)
			}
			if n, err := proc.NumFDsWithContext(ctx); err == nil {
				ms.OpenFDs += int(n)
			}
			for _, h := range holds[pid] {
				g := gpuMem[h.index]
				if g == nil {
					g = &HeldGPU{Index: h.index, UUID: h.uuid}
					gpuMem[h.index] = g
				}
				g.UsedMemoryBytes += h.memory
			}
		}
		acct.last = seen
		sort.Ints(ms.PIDs)
		for _, g := range gpuMem {
			ms.GPUs = append(ms.GPUs, *g)
		}
		sort.Slice(ms.GPUs, func(i, j int) bool { return ms.GPUs[i].Index < ms.GPUs[j].Index })
		out = append(out, ms)

		n := pc.Name
		pts = append(pts, pt(mMSUp, b2f(len(ms.PIDs) > 0), n), pt(mMSProcs, float64(len(ms.PIDs)), n))
		if len(ms.PIDs) > 0 {
			pts = append(pts,
				pt(mMSCPU, acct.total, n), pt(mMSRSS, float64(ms.RSSBytes), n),
				pt(mMSThreads, float64(ms.Threads), n), pt(mMSFDs, float64(ms.OpenFDs), n))
		}
		for _, g := range ms.GPUs {
			pts = append(pts, pt(mMSGPUMem, float64(g.UsedMemoryBytes), n, strconv.Itoa(g.Index), g.UUID))
		}
	}
	p.primed = true
	p.mu.Lock()
	p.snap = out
	p.mu.Unlock()
	// A model server that is not running is a fact, not a collector error;
	// only failures to look (unreadable pid file, missing cgroup) count.
	return pts, partial(errs)
}

// find returns the pids for one configured model server.
func (p *processCollector) find(ctx context.Context, pc ProcessConfig, all *[]*process.Process) ([]int, error) {
	switch {
	case pc.PIDFile != "":
		b, err := os.ReadFile(pc.PIDFile)
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil // not running
		}
		if err != nil {
			return nil, fmt.Errorf("pid file: %w", err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("pid file %s: not a pid: %q", pc.PIDFile, bytes.TrimSpace(b))
		}
		if ok, _ := process.PidExistsWithContext(ctx, int32(pid)); !ok {
			return nil, nil
		}
		return []int{pid}, nil
	case pc.SystemdUnit != "":
		return p.cgroupPIDs("system.slice/" + pc.SystemdUnit)
	case pc.Cgroup != "":
		return p.cgroupPIDs(strings.TrimPrefix(pc.Cgroup, "/"))
	case pc.Exe != "":
		if *all == nil {
			procs, err := process.ProcessesWithContext(ctx)
			if err != nil {
				return nil, fmt.Errorf("list processes: %w", err)
			}
			*all = procs
		}
		var pids []int
		for _, proc := range *all {
			if name, err := proc.NameWithContext(ctx); err == nil && name == pc.Exe {
				pids = append(pids, int(proc.Pid))
				continue
			}
			if exe, err := proc.ExeWithContext(ctx); err == nil && filepath.Base(exe) == pc.Exe {
				pids = append(pids, int(proc.Pid))
			}
		}
		return pids, nil
	}
	return nil, errors.New("no matcher configured")
}

// cgroupPIDs reads cgroup.procs for a cgroup path, trying the cgroup v2
// layout, the hybrid layout and the v1 systemd hierarchy. A cgroup that does
// not exist means the unit is not running.
func (p *processCollector) cgroupPIDs(rel string) ([]int, error) {
	for _, base := range []string{"", "unified", "systemd"} {
		b, err := os.ReadFile(filepath.Join(p.cgroupRoot, base, rel, "cgroup.procs"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("cgroup %s: %w", rel, err)
		}
		var pids []int
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return pids, nil
	}
	return nil, nil
}
