package telemetry

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// nvmlLib is the part of NVML the GPU collector uses. go-nvml's real library
// (nvml.New()) and its mock servers (pkg/nvml/mock/dgxh100 and friends) both
// satisfy it, which is how the collector is tested without a GPU and how the
// simulated backend works. Devices are go-nvml's own nvml.Device.
type nvmlLib interface {
	Init() nvml.Return
	Shutdown() nvml.Return
	SystemGetDriverVersion() (string, nvml.Return)
	SystemGetCudaDriverVersion() (int, nvml.Return)
	SystemGetProcessName(pid int) (string, nvml.Return)
	DeviceGetCount() (int, nvml.Return)
	DeviceGetHandleByIndex(index int) (nvml.Device, nvml.Return)
	EventSetCreate() (nvml.EventSet, nvml.Return)
	Extensions() nvml.ExtendedInterface
}

func newRealNVML() nvmlLib { return nvml.New() }

// initError explains a failed nvml.Init in words an operator can act on.
func initError(ret nvml.Return) error {
	switch ret {
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		return fmt.Errorf("no NVML driver found: libnvidia-ml.so.1 could not be loaded (%v); install the NVIDIA driver or set telemetry.gpu.enabled: false", ret)
	case nvml.ERROR_DRIVER_NOT_LOADED:
		return fmt.Errorf("no NVML driver found: the NVIDIA kernel driver is not loaded (%v)", ret)
	case nvml.ERROR_NO_PERMISSION:
		return fmt.Errorf("NVML init: no permission to talk to the NVIDIA driver (%v)", ret)
	default:
		return fmt.Errorf("NVML init: %v", ret)
	}
}

// cString turns NVML's fixed-size C char arrays into a Go string.
func cString(b []int8) string {
	n := 0
	for n < len(b) && b[n] != 0 {
		n++
	}
	out := make([]byte, n)
	for i := 0; i < n; i++ {
		out[i] = byte(b[i])
	}
	return string(out)
}

// cudaVersionString turns NVML's CUDA driver version (12040) into "12.4".
func cudaVersionString(v int) string {
	return fmt.Sprintf("%d.%d", v/1000, (v%1000)/10)
}
