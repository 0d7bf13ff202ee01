package telemetry

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if !c.GPU.Enabled || c.GPU.Interval != time.Second || c.GPU.DCGMCompatibleNames || c.GPU.Simulate != 0 {
		t.Errorf("gpu defaults %+v", c.GPU)
	}
	if !c.Host.Enabled || c.Host.Interval != 5*time.Second || len(c.Host.Processes) != 0 {
		t.Errorf("host defaults %+v", c.Host)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Config)
		want   []string // substrings of the error; none means valid
	}{
		{"defaults", func(*Config) {}, nil},
		{"gpu interval too short", func(c *Config) { c.GPU.Interval = 10 * time.Millisecond },
			[]string{"telemetry.gpu.interval: must be at least 100ms"}},
		{"gpu interval zero", func(c *Config) { c.GPU.Interval = 0 }, []string{"telemetry.gpu.interval"}},
		{"disabled gpu interval ignored", func(c *Config) { c.GPU.Enabled = false; c.GPU.Interval = 0 }, nil},
		{"host interval too long", func(c *Config) { c.Host.Interval = 2 * time.Hour },
			[]string{"telemetry.host.interval: must be at most 1h0m0s"}},
		{"simulate negative", func(c *Config) { c.GPU.Simulate = -1 }, []string{"telemetry.gpu.simulate"}},
		{"simulate too many", func(c *Config) { c.GPU.Simulate = 65 }, []string{"telemetry.gpu.simulate"}},
		{"simulate 8", func(c *Config) { c.GPU.Simulate = 8 }, nil},
		{"relative mount", func(c *Config) { c.Host.MountPoints = []string{"data"} }, []string{"telemetry.host.mount_points[0]"}},
		{"empty interface", func(c *Config) { c.Host.Interfaces = []string{""} }, []string{"telemetry.host.interfaces[0]"}},
		{"process ok", func(c *Config) { c.Host.Processes = []ProcessConfig{{Name: "vllm", Exe: "python3"}} }, nil},
		{"process no matcher", func(c *Config) { c.Host.Processes = []ProcessConfig{{Name: "vllm"}} },
			[]string{"telemetry.host.processes[0]: set exactly one of"}},
		{"process two matchers", func(c *Config) {
			c.Host.Processes = []ProcessConfig{{Name: "vllm", Exe: "python3", PIDFile: "/run/vllm.pid"}}
		}, []string{"telemetry.host.processes[0]: set exactly one of"}},
		{"process bad name", func(c *Config) { c.Host.Processes = []ProcessConfig{{Name: "a b", Exe: "x"}} },
			[]string{"telemetry.host.processes[0].name"}},
		{"process duplicate", func(c *Config) {
			c.Host.Processes = []ProcessConfig{{Name: "a", Exe: "x"}, {Name: "a", Exe: "y"}}
		}, []string{"telemetry.host.processes[1].name: \"a\" is used twice"}},
		{"several problems reported together", func(c *Config) { c.GPU.Interval = 0; c.GPU.Simulate = -3 },
			[]string{"telemetry.gpu.interval", "telemetry.gpu.simulate"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.change(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %v", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
			if _, err := New(c, nil); err == nil {
				t.Error("New accepted an invalid config")
			}
		})
	}
}
