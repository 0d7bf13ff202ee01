package telemetry

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/gpus"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// The simulated backend (telemetry.gpu.simulate: N) is go-nvml's own mock of
// a DGX H100 with the functions the collector calls filled in with plausible,
// slowly varying values. The same builder backs the tests, so what the demo
// shows is what the tests check.
//
// What it claims about H100 SXM hardware: fans and page retirement are not
// supported (passively cooled, row remapping instead), MIG is off, no
// processes run, no XID errors happen unless a test sends one, and the
// driver reserves 512 MiB of each GPU's memory.

func newSimulatedNVML(n int) nvmlLib {
	return newMockNVML(n, time.Now)
}

// mockNVML is a go-nvml mock server plus a channel to inject XID events.
type mockNVML struct {
	*server.Server
	events chan nvml.EventData
}

// simDevice wraps a mock device. go-nvml's mocks record every call with its
// arguments, which would grow without bound in a long-running simulation;
// simDevice calls the mock's functions directly for the methods the
// collector calls every tick with arguments, so nothing is recorded.
type simDevice struct {
	*server.Device
}

func (d *simDevice) GetTemperature(s nvml.TemperatureSensors) (uint32, nvml.Return) {
	return d.GetTemperatureFunc(s)
}
func (d *simDevice) GetClockInfo(c nvml.ClockType) (uint32, nvml.Return) {
	return d.GetClockInfoFunc(c)
}
func (d *simDevice) GetPcieThroughput(c nvml.PcieUtilCounter) (uint32, nvml.Return) {
	return d.GetPcieThroughputFunc(c)
}
func (d *simDevice) GetTotalEccErrors(t nvml.MemoryErrorType, c nvml.EccCounterType) (uint64, nvml.Return) {
	return d.GetTotalEccErrorsFunc(t, c)
}
func (d *simDevice) GetRetiredPages(c nvml.PageRetirementCause) ([]uint64, nvml.Return) {
	return d.GetRetiredPagesFunc(c)
}
func (d *simDevice) GetMigDeviceHandleByIndex(i int) (nvml.Device, nvml.Return) {
	return d.GetMigDeviceHandleByIndexFunc(i)
}

// simEventSet does the same for the event set's Wait, called twice a second.
type simEventSet struct {
	mock.EventSet
	events <-chan nvml.EventData
}

func (e *simEventSet) Wait(timeoutMs uint32) (nvml.EventData, nvml.Return) {
	t := time.NewTimer(time.Duration(timeoutMs) * time.Millisecond)
	defer t.Stop()
	select {
	case ev := <-e.events:
		return ev, nvml.SUCCESS
	case <-t.C:
		return nvml.EventData{}, nvml.ERROR_TIMEOUT
	}
}

func (e *simEventSet) Free() nvml.Return { return nvml.SUCCESS }

// simReservedBytes is the memory a simulated GPU's driver sets aside, of
// the order a real one does: an H200 on driver 580 reserved about 615 MiB.
const simReservedBytes = 512 << 20

// simUUID is recognisably not a real GPU's UUID and stable across restarts.
func simUUID(i int) string { return fmt.Sprintf("GPU-5140a7ed-0000-4000-8000-%012d", i) }

// newMockNVML builds n simulated H100s whose values follow now.
func newMockNVML(n int, now func() time.Time) *mockNVML {
	s := dgxh100.NewWithGPUs(gpus.Multiple(n, gpus.H100_SXM5_80GB)...)
	m := &mockNVML{Server: s, events: make(chan nvml.EventData, 64)}
	s.SystemGetProcessNameFunc = func(pid int) (string, nvml.Return) { return "", nvml.ERROR_NOT_FOUND }
	s.EventSetCreateFunc = func() (nvml.EventSet, nvml.Return) {
		return &simEventSet{events: m.events}, nvml.SUCCESS
	}
	for i, d := range s.Devices {
		dev := d.(*server.Device)
		dev.UUID = simUUID(i)
		fillSimDevice(dev, i, now)
		s.Devices[i] = &simDevice{Device: dev}
	}
	return m
}

// device returns the i-th mock device, to change its functions in tests.
func (m *mockNVML) device(i int) *simDevice { return m.Devices[i].(*simDevice) }

// fillSimDevice sets every per-tick function of one mock device.
func fillSimDevice(d *server.Device, i int, now func() time.Time) {
	start := now()
	var mu sync.Mutex
	energyMJ := 1e9 + float64(i)*1e7 // as if the driver had been up a while
	last := start
	// load is a utilisation between 0.05 and 0.95 that drifts with time,
	// each GPU in its own phase.
	load := func() float64 {
		t := now().Sub(start).Seconds()
		return 0.5 + 0.45*math.Sin(t/30+float64(i)*0.8)
	}
	power := func(l float64) float64 { return 90 + 560*l } // watts

	d.GetPciInfoFunc = func() (nvml.PciInfo, nvml.Return) {
		var p nvml.PciInfo
		p.PciDeviceId = d.Config.PciDeviceId
		for j := 0; j < len(d.PciBusID) && j < len(p.BusId)-1; j++ {
			p.BusId[j] = int8(d.PciBusID[j])
		}
		return p, nvml.SUCCESS
	}
	d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
		l := load()
		return nvml.Utilization{Gpu: uint32(math.Round(l * 100)), Memory: uint32(math.Round(l * 60))}, nvml.SUCCESS
	}
	// Memory as NVML's v2 call splits it: total = reserved + used + free.
	// The v1 call (drivers before R510) counts the reserved memory as used.
	d.GetMemoryInfo_v2Func = func() (nvml.Memory_v2, nvml.Return) {
		total := d.MemoryInfo.Total
		used := uint64(float64(total) * (0.55 + 0.3*load()))
		used -= used % (1 << 20)
		return nvml.Memory_v2{Version: nvml.STRUCT_VERSION(nvml.Memory_v2{}, 2), Total: total,
			Reserved: simReservedBytes, Used: used, Free: total - simReservedBytes - used}, nvml.SUCCESS
	}
	d.GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) {
		m, ret := d.GetMemoryInfo_v2Func()
		return nvml.Memory{Total: m.Total, Used: m.Reserved + m.Used, Free: m.Free}, ret
	}
	d.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) {
		return uint32(math.Round(38 + 35*load())), nvml.SUCCESS
	}
	d.GetPowerUsageFunc = func() (uint32, nvml.Return) {
		return uint32(power(load()) * 1000), nvml.SUCCESS
	}
	d.GetEnforcedPowerLimitFunc = func() (uint32, nvml.Return) { return 700_000, nvml.SUCCESS }
	d.GetTotalEnergyConsumptionFunc = func() (uint64, nvml.Return) {
		mu.Lock()
		defer mu.Unlock()
		t := now()
		if dt := t.Sub(last).Seconds(); dt > 0 {
			energyMJ += power(load()) * dt * 1000
		}
		last = t
		return uint64(energyMJ), nvml.SUCCESS
	}
	d.GetClockInfoFunc = func(c nvml.ClockType) (uint32, nvml.Return) {
		switch c {
		case nvml.CLOCK_SM:
			return uint32(1200 + 780*load()), nvml.SUCCESS
		case nvml.CLOCK_MEM:
			return 2619, nvml.SUCCESS
		}
		return 0, nvml.ERROR_INVALID_ARGUMENT
	}
	d.GetPcieThroughputFunc = func(c nvml.PcieUtilCounter) (uint32, nvml.Return) {
		l := load()
		if c == nvml.PCIE_UTIL_TX_BYTES {
			return uint32(200_000 * l), nvml.SUCCESS
		}
		return uint32(900_000 * l), nvml.SUCCESS
	}
	d.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) {
		switch l := load(); {
		case l > 0.85:
			return nvml.ClocksEventReasonSwPowerCap, nvml.SUCCESS
		case l < 0.1:
			return nvml.ClocksEventReasonGpuIdle, nvml.SUCCESS
		}
		return nvml.ClocksEventReasonNone, nvml.SUCCESS
	}
	d.GetCurrentClocksThrottleReasonsFunc = d.GetCurrentClocksEventReasonsFunc
	d.GetTotalEccErrorsFunc = func(nvml.MemoryErrorType, nvml.EccCounterType) (uint64, nvml.Return) { return 0, nvml.SUCCESS }
	d.GetRetiredPagesFunc = func(nvml.PageRetirementCause) ([]uint64, nvml.Return) { return nil, nvml.ERROR_NOT_SUPPORTED }
	d.GetRemappedRowsFunc = func() (int, int, bool, bool, nvml.Return) { return 0, 0, false, false, nvml.SUCCESS }
	d.GetFanSpeedFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	d.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) { return nil, nvml.SUCCESS }
	d.GetGraphicsRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) { return nil, nvml.SUCCESS }
	d.GetMaxMigDeviceCountFunc = func() (int, nvml.Return) { return 7, nvml.SUCCESS }
	d.GetMigDeviceHandleByIndexFunc = func(int) (nvml.Device, nvml.Return) { return nil, nvml.ERROR_NOT_FOUND }
	d.GetSupportedEventTypesFunc = func() (uint64, nvml.Return) {
		return nvml.EventTypeXidCriticalError | nvml.EventTypeSingleBitEccError | nvml.EventTypeDoubleBitEccError, nvml.SUCCESS
	}
	d.RegisterEventsFunc = func(uint64, nvml.EventSet) nvml.Return { return nvml.SUCCESS }
}
