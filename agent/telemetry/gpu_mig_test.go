package telemetry

import (
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// A GPU in MIG mode answers ERROR_NOT_SUPPORTED for utilisation; once MIG is
// turned off (at run time, with a GPU reset) it reports it again, and the
// collector must ask again instead of keeping the field unsupported until
// the agent restarts.
func TestGPUFieldsAskedAgainWhenMIGModeChanges(t *testing.T) {
	m := newMockNVML(1, fixedNow)
	d := m.device(0)
	mig := nvml.DEVICE_MIG_ENABLE
	d.GetMigModeFunc = func() (int, int, nvml.Return) { return mig, mig, nvml.SUCCESS }
	d.GetMaxMigDeviceCountFunc = func() (int, nvml.Return) { return 0, nvml.SUCCESS }
	good := d.GetUtilizationRatesFunc
	d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
		if mig == nvml.DEVICE_MIG_ENABLE {
			return nvml.Utilization{}, nvml.ERROR_NOT_SUPPORTED
		}
		return good()
	}
	tel := newTel(t, gpuOnly(), withNVML(m))
	tickAll(t, tel)
	if !contains(tel.GPUs().Devices[0].Unsupported, fUtilization) {
		t.Fatalf("in MIG mode: unsupported %v, want utilization listed", tel.GPUs().Devices[0].Unsupported)
	}

	mig = nvml.DEVICE_MIG_DISABLE
	tickAll(t, tel)
	dev := tel.GPUs().Devices[0]
	if contains(dev.Unsupported, fUtilization) || dev.UtilizationRatio == nil {
		t.Fatalf("after MIG was turned off: unsupported %v, utilisation %v; want it asked again", dev.Unsupported, dev.UtilizationRatio)
	}
	mfs := gather(t, tel)
	mustSeries(t, mfs, "vigil_gpu_utilization_ratio", gpuLabel(0))
	if _, ok := series(mfs, "vigil_gpu_field_unsupported", map[string]string{"gpu": "0", "field": fUtilization}); ok {
		t.Error("vigil_gpu_field_unsupported still lists utilization")
	}
}
