package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// GPUSnapshot is the latest GPU sample, for /v1/gpus.
type GPUSnapshot struct {
	// Time is when the snapshot was taken; zero if there is none yet.
	Time time.Time `json:"time"`
	// Simulated is true when the values come from the simulated backend.
	Simulated bool `json:"simulated"`
	// Stale is true when Time is older than 3 GPU intervals.
	Stale bool `json:"stale"`
	// Error is why the GPU collector is down or what partly failed.
	Error         string      `json:"error,omitempty"`
	DriverVersion string      `json:"driver_version,omitempty"`
	CUDAVersion   string      `json:"cuda_version,omitempty"`
	Devices       []GPUDevice `json:"devices"`
}

// GPUDevice is one GPU, or one MIG instance (MIG is then set). A nil pointer
// field means the value is not available: unsupported (then listed in
// Unsupported), or failed this tick (then in Error).
//
// Memory is split as nvidia-smi reports it (NVML's v2 memory info): total =
// reserved (set aside by the driver and firmware) + used + free. On a driver
// without v2 (before R510) used includes the reserved memory and
// MemoryReservedBytes is nil.
type GPUDevice struct {
	Index    int    `json:"index"`
	UUID     string `json:"uuid"`
	Name     string `json:"name"`
	PCIBusID string `json:"pci_bus_id"`
	// MinorNumber is N in /dev/nvidiaN.
	MinorNumber int      `json:"minor_number"`
	MIG         *MIGInfo `json:"mig,omitempty"`
	// Lost is true when the GPU fell off the bus (ERROR_GPU_IS_LOST).
	Lost  bool   `json:"lost"`
	Error string `json:"error,omitempty"`
	// Unsupported lists the fields this device does not support; they are
	// not asked again.
	Unsupported []string `json:"unsupported,omitempty"`

	UtilizationRatio       *float64 `json:"utilization_ratio"`
	MemoryUtilizationRatio *float64 `json:"memory_utilization_ratio"`
	MemoryTotalBytes       *uint64  `json:"memory_total_bytes"`
	MemoryUsedBytes        *uint64  `json:"memory_used_bytes"`
	MemoryFreeBytes        *uint64  `json:"memory_free_bytes"`
	MemoryReservedBytes    *uint64  `json:"memory_reserved_bytes"`
	TemperatureCelsius     *float64 `json:"temperature_celsius"`
	PowerWatts             *float64 `json:"power_watts"`
	PowerLimitWatts        *float64 `json:"power_limit_watts"`
	EnergyJoules           *float64 `json:"energy_joules"`
	SMClockHertz           *float64 `json:"sm_clock_hertz"`
	MemoryClockHertz       *float64 `json:"memory_clock_hertz"`
	PCIeTxBytesPerSecond   *float64 `json:"pcie_tx_bytes_per_second"`
	PCIeRxBytesPerSecond   *float64 `json:"pcie_rx_bytes_per_second"`
	// ThrottleReasons lists the active clock throttle reasons by name
	// (sw_power_cap, hw_thermal_slowdown, ...); nil when unsupported.
	ThrottleReasons           []string     `json:"throttle_reasons"`
	ECCCorrectedErrors        *uint64      `json:"ecc_corrected_errors"`
	ECCUncorrectedErrors      *uint64      `json:"ecc_uncorrected_errors"`
	RetiredPagesSingleBit     *int         `json:"retired_pages_single_bit"`
	RetiredPagesDoubleBit     *int         `json:"retired_pages_double_bit"`
	RemappedRowsCorrectable   *int         `json:"remapped_rows_correctable"`
	RemappedRowsUncorrectable *int         `json:"remapped_rows_uncorrectable"`
	RemappedRowsPending       *bool        `json:"remapped_rows_pending"`
	RowRemapFailure           *bool        `json:"row_remap_failure"`
	FanSpeedRatio             *float64     `json:"fan_speed_ratio"`
	Processes                 []GPUProcess `json:"processes"`
	// XIDErrors are the XID errors seen since the agent started, counted
	// from NVML events independently of sampling.
	XIDErrors []XIDCount `json:"xid_errors,omitempty"`

	// throttleMask keeps the raw mask for the metrics.
	throttleMask *uint64
}

// MIGInfo links a MIG instance to its parent GPU.
type MIGInfo struct {
	ParentIndex       int    `json:"parent_index"`
	ParentUUID        string `json:"parent_uuid"`
	GPUInstanceID     int    `json:"gpu_instance_id"`
	ComputeInstanceID int    `json:"compute_instance_id"`
}

// GPUProcess is a process holding GPU memory.
type GPUProcess struct {
	PID  int    `json:"pid"`
	Name string `json:"name"`
	// UsedMemoryBytes is nil when the driver does not say (no permission,
	// some virtualised setups).
	UsedMemoryBytes *uint64 `json:"used_memory_bytes"`
	// GPUInstanceID is set for processes inside a MIG instance.
	GPUInstanceID *int `json:"gpu_instance_id,omitempty"`
}

// Field names, used in Unsupported and vigil_gpu_field_unsupported.
const (
	fUtilization  = "utilization"
	fMemory       = "memory"
	fTemperature  = "temperature"
	fPower        = "power_usage"
	fPowerLimit   = "power_limit"
	fEnergy       = "energy"
	fClockSM      = "sm_clock"
	fClockMem     = "memory_clock"
	fPCIeTx       = "pcie_tx"
	fPCIeRx       = "pcie_rx"
	fThrottle     = "throttle_reasons"
	fECCCorrected = "ecc_corrected"
	fECCUncorr    = "ecc_uncorrected"
	fRetiredSBE   = "retired_pages_single_bit"
	fRetiredDBE   = "retired_pages_double_bit"
	fRemapped     = "remapped_rows"
	fFan          = "fan_speed"
	fProcCompute  = "compute_processes"
	fProcGraphics = "graphics_processes"
	fMIG          = "mig"
	fXID          = "xid_events"
)

// optionalSymbols are NVML entry points newer than the oldest drivers we may
// meet. go-nvml calls into the loaded library directly, so calling a missing
// one would crash; they are looked up once and marked unsupported if absent.
var optionalSymbols = map[string]string{
	fEnergy:   "nvmlDeviceGetTotalEnergyConsumption",
	fRemapped: "nvmlDeviceGetRemappedRows",
	fMIG:      "nvmlDeviceGetMigMode",
}

// throttleReasonNames maps NVML's clock throttle (event) reason bits.
var throttleReasonNames = []struct {
	bit  uint64
	name string
}{
	{nvml.ClocksThrottleReasonGpuIdle, "gpu_idle"},
	{nvml.ClocksThrottleReasonApplicationsClocksSetting, "applications_clocks_setting"},
	{nvml.ClocksThrottleReasonSwPowerCap, "sw_power_cap"},
	{nvml.ClocksThrottleReasonHwSlowdown, "hw_slowdown"},
	{nvml.ClocksThrottleReasonSyncBoost, "sync_boost"},
	{nvml.ClocksThrottleReasonSwThermalSlowdown, "sw_thermal_slowdown"},
	{nvml.ClocksThrottleReasonHwThermalSlowdown, "hw_thermal_slowdown"},
	{nvml.ClocksThrottleReasonHwPowerBrakeSlowdown, "hw_power_brake_slowdown"},
	{nvml.ClocksThrottleReasonDisplayClockSetting, "display_clock_setting"},
}

// gpuDevState is what the collector keeps about one physical GPU between
// ticks. Owned by the update goroutine.
type gpuDevState struct {
	handle      nvml.Device
	index       int
	uuid        string
	name        string
	pciBusID    string
	minor       int
	unsupported map[string]bool
	lost        bool
	// migMode is the MIG mode of the previous tick, -1 before the first.
	migMode int
	// memV1 and migMemV1 are set once the GPU, or its MIG instances, turned
	// out not to answer NVML's v2 memory info: v1 is then asked instead,
	// without trying v2 again every tick.
	memV1, migMemV1 bool
}

type gpuCollector struct {
	cfg      GPUConfig
	lib      nvmlLib
	sim      bool
	hostname string
	log      *slog.Logger

	// Owned by the update goroutine.
	initialized bool
	driver      string
	cuda        string
	devs        []*gpuDevState
	procNames   map[int]string
	// eventReasons selects GetCurrentClocksEventReasons over the older
	// GetCurrentClocksThrottleReasons.
	eventReasons bool
	// missing are the fields whose entry points the driver lacks.
	missing map[string]bool
	// memV2Missing is set when the driver lacks nvmlDeviceGetMemoryInfo_v2
	// (before R510): calling a missing entry point would crash.
	memV2Missing bool

	mu   sync.Mutex
	snap GPUSnapshot // latest successful
	init bool        // NVML initialised; mirrors initialized for close
	xid  *xidWatcher // set once at init
}

func newGPUCollector(cfg GPUConfig, lib nvmlLib, sim bool, hostname string, log *slog.Logger) *gpuCollector {
	return &gpuCollector{cfg: cfg, lib: lib, sim: sim, hostname: hostname, log: log, procNames: map[int]string{}}
}

func (g *gpuCollector) name() string            { return "gpu" }
func (g *gpuCollector) interval() time.Duration { return g.cfg.Interval }
func (g *gpuCollector) simulated() bool         { return g.sim }

// start initialises NVML and reads what does not change: versions, device
// handles, UUIDs, names, PCI ids. It is retried on every tick until it works,
// so a driver loaded after the agent started is picked up.
func (g *gpuCollector) start() error {
	if ret := g.lib.Init(); ret != nvml.SUCCESS {
		return initError(ret)
	}
	ok := false
	defer func() {
		if !ok {
			g.lib.Shutdown()
		}
	}()
	if v, ret := g.lib.SystemGetDriverVersion(); ret == nvml.SUCCESS {
		g.driver = v
	}
	if v, ret := g.lib.SystemGetCudaDriverVersion(); ret == nvml.SUCCESS {
		g.cuda = cudaVersionString(v)
	}
	n, ret := g.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return fmt.Errorf("NVML device count: %v", ret)
	}
	missing := map[string]bool{}
	// Throttle reasons were renamed "clock event reasons" in R535 and the
	// old entry point is deprecated in NVML 13: use the new one if present.
	g.eventReasons = true
	g.memV2Missing = false
	if ext := g.lib.Extensions(); ext != nil {
		g.memV2Missing = ext.LookupSymbol("nvmlDeviceGetMemoryInfo_v2") != nil
		for field, sym := range optionalSymbols {
			if ext.LookupSymbol(sym) != nil {
				missing[field] = true
			}
		}
		if ext.LookupSymbol("nvmlDeviceGetCurrentClocksEventReasons") != nil {
			g.eventReasons = false
			if ext.LookupSymbol("nvmlDeviceGetCurrentClocksThrottleReasons") != nil {
				missing[fThrottle] = true
			}
		}
	}
	g.missing = missing
	if g.memV2Missing {
		g.log.Info("NVML lacks nvmlDeviceGetMemoryInfo_v2 (driver before R510); GPU memory used includes the driver's reserved memory")
	}
	g.devs = g.devs[:0]
	for i := 0; i < n; i++ {
		ds := &gpuDevState{index: i, minor: i, unsupported: map[string]bool{}, migMode: -1,
			memV1: g.memV2Missing, migMemV1: g.memV2Missing}
		for f := range missing {
			ds.unsupported[f] = true
		}
		if ret := g.lookupHandle(ds); ret != nvml.SUCCESS {
			// Keep the slot so the GPU is reported, not silently dropped;
			// the handle is asked for again at each tick.
			ds.lost = true
			g.log.Warn("GPU handle unavailable", "gpu", i, "err", ret)
		}
		g.devs = append(g.devs, ds)
	}
	w := startXIDWatcher(g.lib, g.devs, g.log)
	ok = true
	g.initialized = true
	g.mu.Lock()
	g.xid = w
	g.init = true
	g.mu.Unlock()
	g.log.Info("NVML initialised", "gpus", n, "driver", g.driver, "cuda", g.cuda, "simulated", g.sim)
	return nil
}

func (g *gpuCollector) close() {
	g.mu.Lock()
	started, w := g.init, g.xid
	g.mu.Unlock()
	if !started {
		return
	}
	if w != nil {
		w.stop()
	}
	g.lib.Shutdown()
}

func (g *gpuCollector) watcher() *xidWatcher {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.xid
}

// live serves the XID counters, which do not depend on ticks.
func (g *gpuCollector) live() []point {
	if w := g.watcher(); w != nil {
		return w.points()
	}
	return nil
}

func (g *gpuCollector) update(ctx context.Context, now time.Time) ([]point, error) {
	if !g.initialized {
		if err := g.start(); err != nil {
			return nil, err
		}
	}
	snap := GPUSnapshot{
		Time:          now,
		Simulated:     g.sim,
		DriverVersion: g.driver,
		CUDAVersion:   g.cuda,
		Devices:       make([]GPUDevice, 0, len(g.devs)),
	}
	var errs []error
	for _, ds := range g.devs {
		devs, err := g.collectDevice(ds)
		snap.Devices = append(snap.Devices, devs...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	err := partial(errs)
	if err != nil {
		snap.Error = err.Error()
	}
	g.mu.Lock()
	g.snap = snap
	w := g.xid
	g.mu.Unlock()
	var lastXID map[string]uint64
	if w != nil && g.cfg.DCGMCompatibleNames {
		lastXID = w.last()
	}
	return gpuPoints(&snap, g.cfg.DCGMCompatibleNames, g.hostname, lastXID), err
}

// snapshot returns the latest successful snapshot with the XID counts of the
// moment.
func (g *gpuCollector) snapshot() GPUSnapshot {
	g.mu.Lock()
	s, w := g.snap, g.xid
	g.mu.Unlock()
	s.Devices = slices.Clone(s.Devices)
	if w != nil {
		counts := w.counts()
		for i := range s.Devices {
			if s.Devices[i].MIG == nil {
				s.Devices[i].XIDErrors = counts[s.Devices[i].UUID]
			}
		}
	}
	return s
}

// devReader reads one device's fields for one tick, applying the rules:
// unsupported fields are skipped, a lost GPU stops the reading, other errors
// are remembered and reading goes on.
type devReader struct {
	g    *gpuCollector
	ds   *gpuDevState
	lost bool
	errs []string
}

func (r *devReader) read(field string, call func() nvml.Return) bool {
	if r.lost || r.ds.unsupported[field] {
		return false
	}
	switch ret := call(); ret {
	case nvml.SUCCESS:
		return true
	case nvml.ERROR_NOT_SUPPORTED, nvml.ERROR_FUNCTION_NOT_FOUND, nvml.ERROR_NO_PERMISSION:
		// Asking again will not change the answer; say so once.
		r.ds.unsupported[field] = true
		r.g.log.Debug("GPU field unavailable, not asking again", "gpu", r.ds.index, "uuid", r.ds.uuid, "field", field, "reason", ret.Error())
	case nvml.ERROR_GPU_IS_LOST:
		r.lost = true
	default:
		r.errs = append(r.errs, field+": "+ret.Error())
	}
	return false
}

func ptr[T any](v T) *T { return &v }

// lookupHandle gets the GPU's handle and identity by its index.
func (g *gpuCollector) lookupHandle(ds *gpuDevState) nvml.Return {
	h, ret := g.lib.DeviceGetHandleByIndex(ds.index)
	if ret != nvml.SUCCESS {
		return ret
	}
	ds.handle = h
	if v, ret := h.GetUUID(); ret == nvml.SUCCESS {
		ds.uuid = v
	}
	if v, ret := h.GetName(); ret == nvml.SUCCESS {
		ds.name = v
	}
	if p, ret := h.GetPciInfo(); ret == nvml.SUCCESS {
		ds.pciBusID = cString(p.BusId[:])
	}
	if v, ret := h.GetMinorNumber(); ret == nvml.SUCCESS {
		ds.minor = v
	}
	return nvml.SUCCESS
}

// collectDevice reads one GPU and its MIG instances.
func (g *gpuCollector) collectDevice(ds *gpuDevState) ([]GPUDevice, error) {
	if ds.handle == nil {
		// Its handle failed at start (or at the last try): a GPU that
		// came back after a reset is read again without an agent restart.
		// (Its XID events are watched only from the next NVML start.)
		g.lookupHandle(ds)
	}
	d := GPUDevice{Index: ds.index, UUID: ds.uuid, Name: ds.name, PCIBusID: ds.pciBusID, MinorNumber: ds.minor}
	r := &devReader{g: g, ds: ds, lost: ds.handle == nil}
	h := ds.handle
	var migs []GPUDevice

	if !r.lost {
		// Which fields a GPU supports depends on its MIG mode (a GPU in MIG
		// mode reports no utilisation): when the mode changes, ask again.
		mig := -1
		if r.read(fMIG, func() (ret nvml.Return) { mig, _, ret = h.GetMigMode(); return }) {
			if ds.migMode != -1 && mig != ds.migMode {
				g.log.Info("GPU MIG mode changed; asking every field again", "gpu", ds.index, "uuid", ds.uuid, "mig_mode", mig)
				for f := range ds.unsupported {
					if !g.missing[f] {
						delete(ds.unsupported, f)
					}
				}
				ds.memV1, ds.migMemV1 = g.memV2Missing, g.memV2Missing
			}
			ds.migMode = mig
		}
		var u nvml.Utilization
		if r.read(fUtilization, func() (ret nvml.Return) { u, ret = h.GetUtilizationRates(); return }) {
			d.UtilizationRatio = ptr(float64(u.Gpu) / 100)
			d.MemoryUtilizationRatio = ptr(float64(u.Memory) / 100)
		}
		var m memInfo
		if r.read(fMemory, func() (ret nvml.Return) { m, ret = g.memoryInfo(h, ds, &ds.memV1, ""); return }) {
			m.set(&d)
		}
		var v32 uint32
		if r.read(fTemperature, func() (ret nvml.Return) { v32, ret = h.GetTemperature(nvml.TEMPERATURE_GPU); return }) {
			d.TemperatureCelsius = ptr(float64(v32))
		}
		if r.read(fPower, func() (ret nvml.Return) { v32, ret = h.GetPowerUsage(); return }) {
			d.PowerWatts = ptr(float64(v32) / 1000)
		}
		if r.read(fPowerLimit, func() (ret nvml.Return) { v32, ret = h.GetEnforcedPowerLimit(); return }) {
			d.PowerLimitWatts = ptr(float64(v32) / 1000)
		}
		var v64 uint64
		if r.read(fEnergy, func() (ret nvml.Return) { v64, ret = h.GetTotalEnergyConsumption(); return }) {
			d.EnergyJoules = ptr(float64(v64) / 1000)
		}
		if r.read(fClockSM, func() (ret nvml.Return) { v32, ret = h.GetClockInfo(nvml.CLOCK_SM); return }) {
			d.SMClockHertz = ptr(float64(v32) * 1e6)
		}
		if r.read(fClockMem, func() (ret nvml.Return) { v32, ret = h.GetClockInfo(nvml.CLOCK_MEM); return }) {
			d.MemoryClockHertz = ptr(float64(v32) * 1e6)
		}
		// NVML reports PCIe throughput in KiB/s over a 20 ms window.
		if r.read(fPCIeTx, func() (ret nvml.Return) { v32, ret = h.GetPcieThroughput(nvml.PCIE_UTIL_TX_BYTES); return }) {
			d.PCIeTxBytesPerSecond = ptr(float64(v32) * 1024)
		}
		if r.read(fPCIeRx, func() (ret nvml.Return) { v32, ret = h.GetPcieThroughput(nvml.PCIE_UTIL_RX_BYTES); return }) {
			d.PCIeRxBytesPerSecond = ptr(float64(v32) * 1024)
		}
		if r.read(fThrottle, func() (ret nvml.Return) {
			if g.eventReasons {
				v64, ret = h.GetCurrentClocksEventReasons()
			} else {
				v64, ret = h.GetCurrentClocksThrottleReasons()
			}
			return
		}) {
			d.throttleMask = ptr(v64)
			d.ThrottleReasons = []string{}
			for _, tr := range throttleReasonNames {
				if v64&tr.bit != 0 {
					d.ThrottleReasons = append(d.ThrottleReasons, tr.name)
				}
			}
		}
		if r.read(fECCCorrected, func() (ret nvml.Return) {
			v64, ret = h.GetTotalEccErrors(nvml.MEMORY_ERROR_TYPE_CORRECTED, nvml.AGGREGATE_ECC)
			return
		}) {
			d.ECCCorrectedErrors = ptr(v64)
		}
		if r.read(fECCUncorr, func() (ret nvml.Return) {
			v64, ret = h.GetTotalEccErrors(nvml.MEMORY_ERROR_TYPE_UNCORRECTED, nvml.AGGREGATE_ECC)
			return
		}) {
			d.ECCUncorrectedErrors = ptr(v64)
		}
		var pages []uint64
		if r.read(fRetiredSBE, func() (ret nvml.Return) {
			pages, ret = h.GetRetiredPages(nvml.PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS)
			return
		}) {
			d.RetiredPagesSingleBit = ptr(len(pages))
		}
		if r.read(fRetiredDBE, func() (ret nvml.Return) {
			pages, ret = h.GetRetiredPages(nvml.PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR)
			return
		}) {
			d.RetiredPagesDoubleBit = ptr(len(pages))
		}
		var corr, unc int
		var pending, failed bool
		if r.read(fRemapped, func() (ret nvml.Return) { corr, unc, pending, failed, ret = h.GetRemappedRows(); return }) {
			d.RemappedRowsCorrectable, d.RemappedRowsUncorrectable = ptr(corr), ptr(unc)
			d.RemappedRowsPending, d.RowRemapFailure = ptr(pending), ptr(failed)
		}
		if r.read(fFan, func() (ret nvml.Return) { v32, ret = h.GetFanSpeed(); return }) {
			d.FanSpeedRatio = ptr(float64(v32) / 100)
		}
		d.Processes = g.processes(r, h)
		if mig == nvml.DEVICE_MIG_ENABLE {
			migs = g.collectMIG(r, ds, h)
		}
	}

	for f := range ds.unsupported {
		d.Unsupported = append(d.Unsupported, f)
	}
	sort.Strings(d.Unsupported)

	if r.lost {
		d.Lost = true
		d.Error = "GPU is lost (ERROR_GPU_IS_LOST); it needs a reset or a reboot"
		if !ds.lost {
			g.log.Error("GPU lost", "gpu", ds.index, "uuid", ds.uuid)
		}
		ds.lost = true
		return []GPUDevice{d}, fmt.Errorf("gpu %d (%s): lost", ds.index, ds.uuid)
	}
	if ds.lost {
		g.log.Info("GPU answers again", "gpu", ds.index, "uuid", ds.uuid)
		ds.lost = false
	}
	out := append([]GPUDevice{d}, migs...)
	if len(r.errs) > 0 {
		sort.Strings(r.errs)
		d.Error = fmt.Sprint(r.errs)
		out[0] = d
		return out, fmt.Errorf("gpu %d (%s): %v", ds.index, ds.uuid, r.errs)
	}
	return out, nil
}

// processes lists the compute and graphics processes on a device, merged by
// pid.
func (g *gpuCollector) processes(r *devReader, h nvml.Device) []GPUProcess {
	byPID := map[uint32]nvml.ProcessInfo{}
	var list []nvml.ProcessInfo
	if r.read(fProcCompute, func() (ret nvml.Return) { list, ret = h.GetComputeRunningProcesses(); return }) {
		for _, p := range list {
			byPID[p.Pid] = p
		}
	}
	if r.read(fProcGraphics, func() (ret nvml.Return) { list, ret = h.GetGraphicsRunningProcesses(); return }) {
		for _, p := range list {
			if _, seen := byPID[p.Pid]; !seen {
				byPID[p.Pid] = p
			}
		}
	}
	if r.ds.unsupported[fProcCompute] && r.ds.unsupported[fProcGraphics] {
		return nil
	}
	out := make([]GPUProcess, 0, len(byPID))
	for pid, p := range byPID {
		gp := GPUProcess{PID: int(pid), Name: g.processName(int(pid))}
		// NVML_VALUE_NOT_AVAILABLE is all ones.
		if p.UsedGpuMemory != ^uint64(0) {
			gp.UsedMemoryBytes = ptr(p.UsedGpuMemory)
		}
		if p.GpuInstanceId != ^uint32(0) && p.GpuInstanceId != 0 {
			gp.GPUInstanceID = ptr(int(p.GpuInstanceId))
		}
		out = append(out, gp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out
}

// processName asks NVML once per pid; the cache is bounded by clearing it.
func (g *gpuCollector) processName(pid int) string {
	if n, ok := g.procNames[pid]; ok {
		return n
	}
	if len(g.procNames) > 4096 {
		clear(g.procNames)
	}
	n, ret := g.lib.SystemGetProcessName(pid)
	if ret != nvml.SUCCESS {
		n = ""
	}
	g.procNames[pid] = n
	return n
}

// memInfo is one memory reading; reserved is nil when NVML did not say.
type memInfo struct {
	total, used, free uint64
	reserved          *uint64
}

func (m memInfo) set(d *GPUDevice) {
	d.MemoryTotalBytes, d.MemoryUsedBytes, d.MemoryFreeBytes = ptr(m.total), ptr(m.used), ptr(m.free)
	d.MemoryReservedBytes = m.reserved
}

// memoryInfo reads a GPU's or MIG instance's memory with
// nvmlDeviceGetMemoryInfo_v2, which splits Total = Reserved + Used + Free
// the way nvidia-smi and dcgm-exporter report it. The v1 call counts the
// driver's reserved memory as used (about 615 MiB on an H200 with driver
// 580), so an idle GPU looked busier than nvidia-smi says. Drivers before
// R510 lack v2 (the symbol is looked up at start: calling it would crash),
// and some answer it with NOT_SUPPORTED, FUNCTION_NOT_FOUND or
// ARGUMENT_VERSION_MISMATCH; then v1 is used, reserved is unknown, and *v1
// is set so v2 is not asked again until the MIG mode changes.
func (g *gpuCollector) memoryInfo(h nvml.Device, ds *gpuDevState, v1 *bool, what string) (memInfo, nvml.Return) {
	if !*v1 {
		m, ret := h.GetMemoryInfo_v2()
		switch ret {
		case nvml.SUCCESS:
			return memInfo{total: m.Total, used: m.Used, free: m.Free, reserved: ptr(m.Reserved)}, ret
		case nvml.ERROR_NOT_SUPPORTED, nvml.ERROR_FUNCTION_NOT_FOUND, nvml.ERROR_ARGUMENT_VERSION_MISMATCH:
			*v1 = true
			g.log.Info(what+"memory info v2 unavailable; using v1, whose used memory includes the driver's reserved memory",
				"gpu", ds.index, "uuid", ds.uuid, "reason", ret.Error())
		default:
			return memInfo{}, ret
		}
	}
	m, ret := h.GetMemoryInfo()
	return memInfo{total: m.Total, used: m.Used, free: m.Free}, ret
}

// collectMIG lists the MIG instances of a GPU in MIG mode, each as its own
// device. MIG layouts can change at runtime, so they are listed every tick.
func (g *gpuCollector) collectMIG(r *devReader, ds *gpuDevState, h nvml.Device) []GPUDevice {
	var max int
	if !r.read(fMIG, func() (ret nvml.Return) { max, ret = h.GetMaxMigDeviceCount(); return }) {
		return nil
	}
	var out []GPUDevice
	for i := 0; i < max; i++ {
		m, ret := h.GetMigDeviceHandleByIndex(i)
		if ret == nvml.ERROR_NOT_FOUND || ret == nvml.ERROR_INVALID_ARGUMENT {
			continue // empty slot
		}
		if ret == nvml.ERROR_GPU_IS_LOST {
			r.lost = true
			return nil
		}
		if ret != nvml.SUCCESS {
			r.errs = append(r.errs, fmt.Sprintf("mig %d: %v", i, ret))
			continue
		}
		md := GPUDevice{Index: ds.index, PCIBusID: ds.pciBusID, MinorNumber: ds.minor, MIG: &MIGInfo{ParentIndex: ds.index, ParentUUID: ds.uuid}}
		var errs []string
		note := func(what string, ret nvml.Return) {
			if ret != nvml.SUCCESS && ret != nvml.ERROR_NOT_SUPPORTED {
				errs = append(errs, what+": "+ret.Error())
			}
		}
		var ret2 nvml.Return
		md.UUID, ret2 = m.GetUUID()
		note("uuid", ret2)
		md.Name, ret2 = m.GetName()
		note("name", ret2)
		md.MIG.GPUInstanceID, ret2 = m.GetGpuInstanceId()
		note("gpu_instance_id", ret2)
		md.MIG.ComputeInstanceID, ret2 = m.GetComputeInstanceId()
		note("compute_instance_id", ret2)
		if mem, ret := g.memoryInfo(m, ds, &ds.migMemV1, "MIG "); ret == nvml.SUCCESS {
			mem.set(&md)
		} else {
			note("memory", ret)
		}
		if len(errs) > 0 {
			md.Error = fmt.Sprint(errs)
			r.errs = append(r.errs, fmt.Sprintf("mig %d: %v", i, errs))
		}
		out = append(out, md)
	}
	return out
}

// GPU metric families. Per-GPU families carry gpu (index) and uuid.
var (
	gpuLabels = []string{"gpu", "uuid"}

	mGPUInfo = newDef("vigil_gpu_info",
		"GPU identity; value is always 1. simulated=\"true\" marks the simulated backend.",
		gaugeT, "gpu", "uuid", "name", "pci_bus_id", "driver_version", "cuda_version", "simulated")
	mGPUUp = newDef("vigil_gpu_up",
		"1 while the GPU answers, 0 when it is lost (fell off the bus, ERROR_GPU_IS_LOST).",
		gaugeT, gpuLabels...)
	mGPUUnsupported = newDef("vigil_gpu_field_unsupported",
		"1 for each field the GPU does not support; it is not asked again.",
		gaugeT, "gpu", "uuid", "field")
	mGPUUtil     = newDef("vigil_gpu_utilization_ratio", "Fraction of the sample period a kernel ran on the GPU (0-1).", gaugeT, gpuLabels...)
	mGPUMemUtil  = newDef("vigil_gpu_memory_utilization_ratio", "Fraction of the sample period device memory was read or written (0-1).", gaugeT, gpuLabels...)
	mGPUMemTotal = newDef("vigil_gpu_memory_total_bytes", "Total device memory.", gaugeT, gpuLabels...)
	mGPUMemUsed  = newDef("vigil_gpu_memory_used_bytes", "Device memory allocated, without the reserved memory (as nvidia-smi reports it).", gaugeT, gpuLabels...)
	mGPUMemFree  = newDef("vigil_gpu_memory_free_bytes", "Device memory free.", gaugeT, gpuLabels...)
	mGPUMemRsvd  = newDef("vigil_gpu_memory_reserved_bytes", "Device memory reserved by the driver and firmware, not counted in used (NVML v2 memory info).", gaugeT, gpuLabels...)
	mGPUTemp     = newDef("vigil_gpu_temperature_celsius", "GPU core temperature.", gaugeT, gpuLabels...)
	mGPUPower    = newDef("vigil_gpu_power_watts", "Power draw.", gaugeT, gpuLabels...)
	mGPUPowerLim = newDef("vigil_gpu_power_limit_watts", "Enforced power limit.", gaugeT, gpuLabels...)
	mGPUEnergy   = newDef("vigil_gpu_energy_joules_total", "Energy consumed since the driver was loaded.", counterT, gpuLabels...)
	mGPUSMClock  = newDef("vigil_gpu_sm_clock_hertz", "SM clock frequency.", gaugeT, gpuLabels...)
	mGPUMemClock = newDef("vigil_gpu_memory_clock_hertz", "Memory clock frequency.", gaugeT, gpuLabels...)
	mGPUPCIeTx   = newDef("vigil_gpu_pcie_tx_bytes_per_second", "PCIe transmit throughput (NVML samples it over 20 ms).", gaugeT, gpuLabels...)
	mGPUPCIeRx   = newDef("vigil_gpu_pcie_rx_bytes_per_second", "PCIe receive throughput (NVML samples it over 20 ms).", gaugeT, gpuLabels...)
	mGPUThrottle = newDef("vigil_gpu_throttle_reason",
		"1 when the clock throttle reason is active, else 0.", gaugeT, "gpu", "uuid", "reason")
	mGPUECC = newDef("vigil_gpu_ecc_errors_total",
		"ECC memory errors over the GPU's lifetime (aggregate counters), by type corrected or uncorrected.", counterT, "gpu", "uuid", "type")
	mGPURetired = newDef("vigil_gpu_retired_pages",
		"Memory pages retired, by cause single_bit or double_bit (pre-Ampere GPUs).", gaugeT, "gpu", "uuid", "cause")
	mGPURemapped = newDef("vigil_gpu_remapped_rows",
		"Memory rows remapped, by kind correctable or uncorrectable (Ampere and later).", gaugeT, "gpu", "uuid", "kind")
	mGPURemapPending = newDef("vigil_gpu_remapped_rows_pending", "1 when a row remapping is pending (needs a GPU reset).", gaugeT, gpuLabels...)
	mGPURemapFailure = newDef("vigil_gpu_row_remap_failure", "1 when a row remapping has failed.", gaugeT, gpuLabels...)
	mGPUFan          = newDef("vigil_gpu_fan_speed_ratio", "Fan speed as a fraction of its maximum (0-1).", gaugeT, gpuLabels...)
	mGPUProcMem      = newDef("vigil_gpu_process_memory_used_bytes",
		"Device memory used by a process.", gaugeT, "gpu", "uuid", "pid", "process_name")
	mGPUMIGInfo = newDef("vigil_gpu_mig_info",
		"MIG instance identity; value is always 1. gpu is the parent's index, uuid the instance's.",
		gaugeT, "gpu", "uuid", "mig_parent_uuid", "mig_gpu_instance", "mig_compute_instance", "name")
	mGPUMIGMemTotal = newDef("vigil_gpu_mig_memory_total_bytes", "Device memory of the MIG instance.", gaugeT, gpuLabels...)
	mGPUMIGMemUsed  = newDef("vigil_gpu_mig_memory_used_bytes", "Device memory in use in the MIG instance.", gaugeT, gpuLabels...)
	mGPUMIGMemFree  = newDef("vigil_gpu_mig_memory_free_bytes", "Device memory free in the MIG instance.", gaugeT, gpuLabels...)
	mGPUMIGMemRsvd  = newDef("vigil_gpu_mig_memory_reserved_bytes", "Device memory reserved by the driver in the MIG instance, not counted in used.", gaugeT, gpuLabels...)
)

// gpuPoints turns a snapshot into series.
func gpuPoints(s *GPUSnapshot, dcgm bool, hostname string, lastXID map[string]uint64) []point {
	pts := make([]point, 0, len(s.Devices)*40)
	sim := strconv.FormatBool(s.Simulated)
	for i := range s.Devices {
		d := &s.Devices[i]
		idx := strconv.Itoa(d.Index)
		if d.MIG != nil {
			pts = append(pts, pt(mGPUMIGInfo, 1, idx, d.UUID, d.MIG.ParentUUID,
				strconv.Itoa(d.MIG.GPUInstanceID), strconv.Itoa(d.MIG.ComputeInstanceID), d.Name))
			pts = addU64(pts, mGPUMIGMemTotal, d.MemoryTotalBytes, idx, d.UUID)
			pts = addU64(pts, mGPUMIGMemUsed, d.MemoryUsedBytes, idx, d.UUID)
			pts = addU64(pts, mGPUMIGMemFree, d.MemoryFreeBytes, idx, d.UUID)
			pts = addU64(pts, mGPUMIGMemRsvd, d.MemoryReservedBytes, idx, d.UUID)
			continue
		}
		pts = append(pts, pt(mGPUInfo, 1, idx, d.UUID, d.Name, d.PCIBusID, s.DriverVersion, s.CUDAVersion, sim))
		pts = append(pts, pt(mGPUUp, b2f(!d.Lost), idx, d.UUID))
		for _, f := range d.Unsupported {
			pts = append(pts, pt(mGPUUnsupported, 1, idx, d.UUID, f))
		}
		if d.Lost {
			continue
		}
		pts = addF(pts, mGPUUtil, d.UtilizationRatio, idx, d.UUID)
		pts = addF(pts, mGPUMemUtil, d.MemoryUtilizationRatio, idx, d.UUID)
		pts = addU64(pts, mGPUMemTotal, d.MemoryTotalBytes, idx, d.UUID)
		pts = addU64(pts, mGPUMemUsed, d.MemoryUsedBytes, idx, d.UUID)
		pts = addU64(pts, mGPUMemFree, d.MemoryFreeBytes, idx, d.UUID)
		pts = addU64(pts, mGPUMemRsvd, d.MemoryReservedBytes, idx, d.UUID)
		pts = addF(pts, mGPUTemp, d.TemperatureCelsius, idx, d.UUID)
		pts = addF(pts, mGPUPower, d.PowerWatts, idx, d.UUID)
		pts = addF(pts, mGPUPowerLim, d.PowerLimitWatts, idx, d.UUID)
		pts = addF(pts, mGPUEnergy, d.EnergyJoules, idx, d.UUID)
		pts = addF(pts, mGPUSMClock, d.SMClockHertz, idx, d.UUID)
		pts = addF(pts, mGPUMemClock, d.MemoryClockHertz, idx, d.UUID)
		pts = addF(pts, mGPUPCIeTx, d.PCIeTxBytesPerSecond, idx, d.UUID)
		pts = addF(pts, mGPUPCIeRx, d.PCIeRxBytesPerSecond, idx, d.UUID)
		if d.throttleMask != nil {
			for _, tr := range throttleReasonNames {
				v := 0.0
				if *d.throttleMask&tr.bit != 0 {
					v = 1
				}
				pts = append(pts, pt(mGPUThrottle, v, idx, d.UUID, tr.name))
			}
		}
		if d.ECCCorrectedErrors != nil {
			pts = append(pts, pt(mGPUECC, float64(*d.ECCCorrectedErrors), idx, d.UUID, "corrected"))
		}
		if d.ECCUncorrectedErrors != nil {
			pts = append(pts, pt(mGPUECC, float64(*d.ECCUncorrectedErrors), idx, d.UUID, "uncorrected"))
		}
		if d.RetiredPagesSingleBit != nil {
			pts = append(pts, pt(mGPURetired, float64(*d.RetiredPagesSingleBit), idx, d.UUID, "single_bit"))
		}
		if d.RetiredPagesDoubleBit != nil {
			pts = append(pts, pt(mGPURetired, float64(*d.RetiredPagesDoubleBit), idx, d.UUID, "double_bit"))
		}
		if d.RemappedRowsCorrectable != nil {
			pts = append(pts, pt(mGPURemapped, float64(*d.RemappedRowsCorrectable), idx, d.UUID, "correctable"))
			pts = append(pts, pt(mGPURemapped, float64(*d.RemappedRowsUncorrectable), idx, d.UUID, "uncorrectable"))
			pts = append(pts, pt(mGPURemapPending, b2f(*d.RemappedRowsPending), idx, d.UUID))
			pts = append(pts, pt(mGPURemapFailure, b2f(*d.RowRemapFailure), idx, d.UUID))
		}
		pts = addF(pts, mGPUFan, d.FanSpeedRatio, idx, d.UUID)
		for _, p := range d.Processes {
			if p.UsedMemoryBytes != nil {
				pts = append(pts, pt(mGPUProcMem, float64(*p.UsedMemoryBytes), idx, d.UUID, strconv.Itoa(p.PID), p.Name))
			}
		}
		if dcgm {
			pts = dcgmPoints(pts, d, hostname, lastXID[d.UUID])
		}
	}
	return pts
}

func addF(pts []point, def *metricDef, v *float64, labels ...string) []point {
	if v == nil {
		return pts
	}
	return append(pts, pt(def, *v, labels...))
}

func addU64(pts []point, def *metricDef, v *uint64, labels ...string) []point {
	if v == nil {
		return pts
	}
	return append(pts, pt(def, float64(*v), labels...))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// gpuProcesses is what the process collector joins with: pid -> GPUs held.
func (t *Telemetry) gpuProcesses() map[int][]gpuHold {
	if t.gpu == nil {
		return nil
	}
	s := t.gpu.snapshot()
	if s.Time.IsZero() {
		return nil
	}
	out := map[int][]gpuHold{}
	for _, d := range s.Devices {
		if d.MIG != nil {
			continue
		}
		for _, p := range d.Processes {
			h := gpuHold{index: d.Index, uuid: d.UUID}
			if p.UsedMemoryBytes != nil {
				h.memory = *p.UsedMemoryBytes
			}
			out[p.PID] = append(out[p.PID], h)
		}
	}
	return out
}

type gpuHold struct {
	index  int
	uuid   string
	memory uint64
}

// GPUs returns the latest GPU snapshot. Stale and Error tell whether it can
// be trusted; with the GPU collector disabled, Error says so.
func (t *Telemetry) GPUs() GPUSnapshot {
	if t.gpu == nil {
		return GPUSnapshot{Error: "gpu collector disabled (telemetry.gpu.enabled: false)", Devices: []GPUDevice{}}
	}
	s := t.gpu.snapshot()
	s.Simulated = t.gpu.sim
	stale, reason := t.freshness(t.gpu)
	s.Stale = stale
	s.Error = reason
	if s.Devices == nil {
		s.Devices = []GPUDevice{}
	}
	return s
}
