package pluginhost

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Config is the plugins section of the agent configuration.
type Config struct {
	// Dirs are the directories plugins are launched from. A binary outside
	// them is never started. A catalog.json file in a directory (written by
	// the package build) pre-registers the plugins shipped there.
	Dirs []string `yaml:"dirs"`
	// Start is "boot" (start every trusted plugin with the agent) or "lazy"
	// (start a plugin on its first use).
	Start string `yaml:"start"`
	// StartTimeout bounds the go-plugin handshake of one start.
	StartTimeout time.Duration `yaml:"start_timeout"`
	// CallTimeout is the deadline of one call into a plugin unless the
	// caller's context has a shorter one.
	CallTimeout time.Duration `yaml:"call_timeout"`
	// HealthInterval is how often a running plugin is pinged.
	HealthInterval time.Duration `yaml:"health_interval"`
	// MinBackoff and MaxBackoff bound the wait before a crashed plugin is
	// restarted; the wait doubles with each crash in a row, with jitter.
	MinBackoff time.Duration `yaml:"min_backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// CrashBudget crashes within CrashWindow mark a plugin failed: it stays
	// down until `vigil plugins restart NAME` or a reload.
	CrashBudget int           `yaml:"crash_budget"`
	CrashWindow time.Duration `yaml:"crash_window"`
	// Config holds each plugin's own configuration, by plugin name, handed
	// to the plugin's Configure call after every start.
	Config map[string]map[string]any `yaml:"config"`
	// Env adds environment variables ("KEY=VALUE") to a plugin's process,
	// by plugin name, after those of its catalog entry (a key in both
	// takes this value): a plugin does not inherit the agent's
	// environment. A change restarts the plugin on reload.
	Env map[string][]string `yaml:"env"`
}

// DefaultDirs are where packaged and operator-installed plugins live.
var DefaultDirs = []string{"/usr/lib/vigil/plugins", "/etc/vigil/plugins.d"}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		Dirs:           append([]string(nil), DefaultDirs...),
		Start:          "lazy",
		StartTimeout:   10 * time.Second,
		CallTimeout:    30 * time.Second,
		HealthInterval: 10 * time.Second,
		MinBackoff:     time.Second,
		MaxBackoff:     time.Minute,
		CrashBudget:    5,
		CrashWindow:    5 * time.Minute,
	}
}

// Validate returns every problem, one "plugins.<key>: message" per line.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("plugins.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Start != "boot" && c.Start != "lazy" {
		bad("start", "%q is not boot or lazy", c.Start)
	}
	for i, d := range c.Dirs {
		if d == "" || d[0] != '/' {
			bad(fmt.Sprintf("dirs[%d]", i), "must be an absolute path, got %q", d)
		}
	}
	positive := map[string]time.Duration{
		"start_timeout": c.StartTimeout, "call_timeout": c.CallTimeout, "health_interval": c.HealthInterval,
		"min_backoff": c.MinBackoff, "max_backoff": c.MaxBackoff, "crash_window": c.CrashWindow,
	}
	for _, k := range []string{"start_timeout", "call_timeout", "health_interval", "min_backoff", "max_backoff", "crash_window"} {
		if positive[k] <= 0 {
			bad(k, "must be positive")
		}
	}
	if c.MaxBackoff < c.MinBackoff {
		bad("max_backoff", "%s is shorter than plugins.min_backoff %s", c.MaxBackoff, c.MinBackoff)
	}
	if c.CrashBudget < 1 {
		bad("crash_budget", "must be at least 1")
	}
	for _, name := range slices.Sorted(maps.Keys(c.Env)) {
		for i, kv := range c.Env[name] {
			if err := CheckEnv(kv); err != nil {
				bad(fmt.Sprintf("env.%s[%d]", name, i), "%v", err)
			}
		}
	}
	return errors.Join(errs...)
}

// CheckEnv checks one KEY=VALUE for a plugin's environment (plugins.env, a
// catalog entry's env, vigil plugins check -env).
func CheckEnv(kv string) error {
	key, _, ok := strings.Cut(kv, "=")
	switch {
	case !ok || key == "":
		return errors.New("want KEY=VALUE, with a name before the =")
	case strings.ContainsAny(key, " \t\n\x00"):
		return fmt.Errorf("variable name %q has whitespace in it", key)
	case strings.Contains(kv, "\x00"):
		return fmt.Errorf("the value of %s has a NUL byte", key)
	case strings.HasPrefix(key, "PLUGIN_") || key == "VIGIL_PLUGIN":
		return fmt.Errorf("%s is set by the plugin handshake and cannot be configured", key)
	}
	return nil
}
