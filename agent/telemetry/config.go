package telemetry

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Config is the telemetry section of the agent configuration
// (telemetry.gpu.*, telemetry.host.*).
type Config struct {
	GPU  GPUConfig  `yaml:"gpu" json:"gpu"`
	Host HostConfig `yaml:"host" json:"host"`
}

// GPUConfig configures the NVML collector.
type GPUConfig struct {
	// Enabled turns the GPU collector on. Default true; on a host without a
	// driver the collector reports itself down instead of failing the agent.
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Interval between samples. Default 1s.
	Interval time.Duration `yaml:"interval" json:"interval"`
	// DCGMCompatibleNames additionally exposes the dcgm-exporter default
	// metric names (DCGM_FI_DEV_*) with DCGM's units and labels.
	DCGMCompatibleNames bool `yaml:"dcgm_compatible_names" json:"dcgm_compatible_names"`
	// Simulate, when above 0, replaces NVML with that many simulated GPUs
	// (built on go-nvml's mock), marked as simulated everywhere.
	Simulate int `yaml:"simulate" json:"simulate"`
}

// HostConfig configures the host (gopsutil) collector and the model-server
// process collector.
type HostConfig struct {
	// Enabled turns the host collector on. Default true.
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Interval between samples, also used for model-server processes.
	// Default 5s.
	Interval time.Duration `yaml:"interval" json:"interval"`
	// MountPoints limits disk usage to these mount points. Empty means every
	// mount whose file system is not a pseudo file system (proc, sysfs,
	// cgroup, overlay, ...).
	MountPoints []string `yaml:"mount_points" json:"mount_points"`
	// Interfaces limits network I/O to these interfaces. Empty means every
	// interface except loopback.
	Interfaces []string `yaml:"interfaces" json:"interfaces"`
	// Processes are model-server processes to watch.
	Processes []ProcessConfig `yaml:"processes" json:"processes"`
}

// ProcessConfig names one model server and how to find its processes.
// Exactly one of Exe, PIDFile, SystemdUnit and Cgroup must be set.
type ProcessConfig struct {
	// Name is the value of the name label, e.g. "vllm".
	Name string `yaml:"name" json:"name"`
	// Exe matches processes whose executable base name or command name
	// equals this value.
	Exe string `yaml:"exe" json:"exe,omitempty"`
	// PIDFile is a file holding the main process's pid.
	PIDFile string `yaml:"pid_file" json:"pid_file,omitempty"`
	// SystemdUnit matches every process in the unit's cgroup, e.g.
	// "vllm.service" (looked up under system.slice).
	SystemdUnit string `yaml:"systemd_unit" json:"systemd_unit,omitempty"`
	// Cgroup matches every process in this cgroup, given relative to the
	// cgroup root, e.g. "/system.slice/vllm.service".
	Cgroup string `yaml:"cgroup" json:"cgroup,omitempty"`
}

// DefaultConfig returns the defaults: GPU on at 1s, host on at 5s, no DCGM
// names, no simulation, no processes.
func DefaultConfig() Config {
	return Config{
		GPU: GPUConfig{
			Enabled:  true,
			Interval: time.Second,
		},
		Host: HostConfig{
			Enabled:  true,
			Interval: 5 * time.Second,
		},
	}
}

const (
	minInterval = 100 * time.Millisecond
	maxInterval = time.Hour
	// maxSimulated bounds the simulated backend; real hosts have at most 16
	// GPUs and the simulation is for demos and benchmarks.
	maxSimulated = 64
)

var processNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// Validate checks the configuration and returns every problem found, each
// naming its field in full (telemetry.gpu.interval, ...).
func (c Config) Validate() error {
	var errs []error
	checkInterval := func(field string, d time.Duration, enabled bool) {
		if !enabled {
			return
		}
		if d < minInterval {
			errs = append(errs, fmt.Errorf("telemetry.%s: must be at least %s, got %s", field, minInterval, d))
		} else if d > maxInterval {
			errs = append(errs, fmt.Errorf("telemetry.%s: must be at most %s, got %s", field, maxInterval, d))
		}
	}
	checkInterval("gpu.interval", c.GPU.Interval, c.GPU.Enabled)
	checkInterval("host.interval", c.Host.Interval, c.Host.Enabled || len(c.Host.Processes) > 0)
	if c.GPU.Simulate < 0 || c.GPU.Simulate > maxSimulated {
		errs = append(errs, fmt.Errorf("telemetry.gpu.simulate: must be between 0 and %d, got %d", maxSimulated, c.GPU.Simulate))
	}
	for i, m := range c.Host.MountPoints {
		if m == "" || m[0] != '/' {
			errs = append(errs, fmt.Errorf("telemetry.host.mount_points[%d]: must be an absolute path, got %q", i, m))
		}
	}
	for i, n := range c.Host.Interfaces {
		if n == "" {
			errs = append(errs, fmt.Errorf("telemetry.host.interfaces[%d]: must not be empty", i))
		}
	}
	seen := map[string]bool{}
	for i, p := range c.Host.Processes {
		field := fmt.Sprintf("telemetry.host.processes[%d]", i)
		if !processNameRE.MatchString(p.Name) {
			errs = append(errs, fmt.Errorf("%s.name: must be 1 to 64 letters, digits, '.', '_' or '-', got %q", field, p.Name))
		} else if seen[p.Name] {
			errs = append(errs, fmt.Errorf("%s.name: %q is used twice", field, p.Name))
		}
		seen[p.Name] = true
		n := 0
		for _, s := range []string{p.Exe, p.PIDFile, p.SystemdUnit, p.Cgroup} {
			if s != "" {
				n++
			}
		}
		if n != 1 {
			errs = append(errs, fmt.Errorf("%s: set exactly one of exe, pid_file, systemd_unit, cgroup (got %d)", field, n))
		}
	}
	return errors.Join(errs...)
}
