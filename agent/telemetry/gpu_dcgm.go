package telemetry

import (
	"slices"
	"strconv"
)

// DCGM-exporter compatible names (telemetry.gpu.dcgm_compatible_names), so
// dashboards built for NVIDIA's dcgm-exporter work unchanged. Names, units
// and labels follow dcgm-exporter's etc/default-counters.csv: percent for
// utilisation, MiB for frame buffer, MHz for clocks, W for power, mJ for
// energy, KB for PCIe. Where dcgm-exporter declares a counter whose name
// lacks the _total suffix, it is exposed as untyped: Prometheus lint rejects
// such counters, and PromQL (rate, increase) treats the series the same way.
// MIG instances get no DCGM series.
var (
	dcgmLabels = []string{"gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname"}

	dSMClock     = newDef("DCGM_FI_DEV_SM_CLOCK", "SM clock frequency (in MHz).", gaugeT, dcgmLabels...)
	dMemClock    = newDef("DCGM_FI_DEV_MEM_CLOCK", "Memory clock frequency (in MHz).", gaugeT, dcgmLabels...)
	dGPUTemp     = newDef("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", gaugeT, dcgmLabels...)
	dPower       = newDef("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", gaugeT, dcgmLabels...)
	dEnergy      = newDef("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "Total energy consumption since boot (in mJ).", untypedT, dcgmLabels...)
	dPCIeTx      = newDef("DCGM_FI_DEV_PCIE_TX_THROUGHPUT", "PCIe TX throughput (in KB/s, as NVML reports it).", untypedT, dcgmLabels...)
	dPCIeRx      = newDef("DCGM_FI_DEV_PCIE_RX_THROUGHPUT", "PCIe RX throughput (in KB/s, as NVML reports it).", untypedT, dcgmLabels...)
	dGPUUtil     = newDef("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", gaugeT, dcgmLabels...)
	dMemCopyUtil = newDef("DCGM_FI_DEV_MEM_COPY_UTIL", "Memory utilization (in %).", gaugeT, dcgmLabels...)
	dXID         = newDef("DCGM_FI_DEV_XID_ERRORS", "Value of the last XID error encountered.", gaugeT, dcgmLabels...)
	dFBFree      = newDef("DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).", gaugeT, dcgmLabels...)
	dFBUsed      = newDef("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", gaugeT, dcgmLabels...)
	dFBReserved  = newDef("DCGM_FI_DEV_FB_RESERVED", "Framebuffer memory reserved (in MiB).", gaugeT, dcgmLabels...)
	dRemapUnc    = newDef("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "Number of remapped rows for uncorrectable errors.", untypedT, dcgmLabels...)
	dRemapCorr   = newDef("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "Number of remapped rows for correctable errors.", untypedT, dcgmLabels...)
	dRemapFail   = newDef("DCGM_FI_DEV_ROW_REMAP_FAILURE", "Whether remapping of rows has failed.", gaugeT, dcgmLabels...)
)

const mib = 1 << 20

// dcgmPoints appends the DCGM-named series of one (non-MIG) GPU.
func dcgmPoints(pts []point, d *GPUDevice, hostname string, lastXID uint64) []point {
	l := []string{strconv.Itoa(d.Index), d.UUID, d.PCIBusID, "nvidia" + strconv.Itoa(d.MinorNumber), d.Name, hostname}
	add := func(def *metricDef, v *float64, scale float64) {
		if v != nil {
			pts = append(pts, pt(def, *v*scale, l...))
		}
	}
	add(dSMClock, d.SMClockHertz, 1e-6)
	add(dMemClock, d.MemoryClockHertz, 1e-6)
	add(dGPUTemp, d.TemperatureCelsius, 1)
	add(dPower, d.PowerWatts, 1)
	add(dEnergy, d.EnergyJoules, 1000)
	add(dPCIeTx, d.PCIeTxBytesPerSecond, 1.0/1024)
	add(dPCIeRx, d.PCIeRxBytesPerSecond, 1.0/1024)
	add(dGPUUtil, d.UtilizationRatio, 100)
	add(dMemCopyUtil, d.MemoryUtilizationRatio, 100)
	if !slices.Contains(d.Unsupported, fXID) {
		pts = append(pts, pt(dXID, float64(lastXID), l...))
	}
	if d.MemoryFreeBytes != nil {
		pts = append(pts, pt(dFBFree, float64(*d.MemoryFreeBytes/mib), l...))
		pts = append(pts, pt(dFBUsed, float64(*d.MemoryUsedBytes/mib), l...))
	}
	if d.MemoryReservedBytes != nil {
		pts = append(pts, pt(dFBReserved, float64(*d.MemoryReservedBytes/mib), l...))
	}
	if d.RemappedRowsCorrectable != nil {
		pts = append(pts, pt(dRemapUnc, float64(*d.RemappedRowsUncorrectable), l...))
		pts = append(pts, pt(dRemapCorr, float64(*d.RemappedRowsCorrectable), l...))
		pts = append(pts, pt(dRemapFail, b2f(*d.RowRemapFailure), l...))
	}
	return pts
}
