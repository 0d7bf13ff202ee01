package drift

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"time"
)

// DefaultFileName is the drift file inside the data directory when
// Config.Path is empty: pinned references and the evaluation history.
const DefaultFileName = "drift.db"

// PredictionFeature is the name under which a model's predictions are
// checked for drift, like any feature. When an observation also carries an
// input feature of that name, the input feature is used and the
// prediction is not tracked.
const PredictionFeature = "prediction"

// Config is the `drift:` section of the agent configuration. A zero field
// takes its default, so a partial section is valid.
type Config struct {
	// Enabled turns drift evaluation on. Default true.
	Enabled *bool `yaml:"enabled"`
	// Path of the drift file; empty means <data_dir>/drift.db.
	Path string `yaml:"path"`
	// Interval between periodic evaluations. Default 30s.
	Interval time.Duration `yaml:"interval"`
	// CurrentWindow is the size of the current window in values per
	// feature: the last N values (a ring). Default 1000.
	CurrentWindow int `yaml:"current_window"`
	// CurrentWindowTime, when set, makes the current window time-based:
	// the values of the last CurrentWindowTime, kept as a uniform sample
	// of at most CurrentWindow values (reservoir sampling).
	CurrentWindowTime time.Duration `yaml:"current_window_time"`
	// ReferenceSize is N of the automatic reference: the first N
	// observations of a version. Default 1000.
	ReferenceSize int `yaml:"reference_size"`
	// AutoReference pins the automatic reference. Default true.
	AutoReference *bool `yaml:"auto_reference"`
	// MaxReferenceValues caps a reference window per feature (pinned from
	// a time range or uploaded). Default 100000.
	MaxReferenceValues int `yaml:"max_reference_values"`
	// MinSamples: both windows need at least this many values before a
	// feature is evaluated. Default 100.
	MinSamples int `yaml:"min_samples"`
	// Correction across a model version's p-value features: bonferroni
	// (default), benjamini-hochberg or none.
	Correction string `yaml:"correction"`
	// HistoryRetention: evaluations older than this are deleted. Default 7d.
	HistoryRetention time.Duration `yaml:"history_retention"`
	// HistoryMaxEntries caps the stored evaluations per (model, version);
	// the oldest go first. Default 1000.
	HistoryMaxEntries int `yaml:"history_max_entries"`
	// Concurrency: detector calls in flight at once. Default 4.
	Concurrency int `yaml:"concurrency"`
	// Timeout of one evaluation of one (model, version). Default 60s.
	Timeout time.Duration `yaml:"timeout"`
}

// ModelConfig is one entry of the `models:` section: the drift settings of
// one model (every version of it).
type ModelConfig struct {
	// Features maps a feature name (or "prediction") to its settings.
	Features map[string]FeatureConfig `yaml:"features"`
	// Correction overrides drift.correction for this model.
	Correction string `yaml:"correction"`
	// ReferenceSize overrides drift.reference_size for this model.
	ReferenceSize int `yaml:"reference_size"`
	// MinSamples overrides drift.min_samples for this model.
	MinSamples int `yaml:"min_samples"`
}

// FeatureConfig is models.<model>.features.<feature>.
type FeatureConfig struct {
	// Detector is the detector plugin's name (ks, psi, chisquare,
	// wasserstein, jensenshannon, or a third party's). Empty: the
	// automatic choice.
	Detector string `yaml:"detector"`
	// Method is the method asked of the plugin; default: the plugin's name
	// (what the built-in plugins offer).
	Method string `yaml:"method"`
	// Threshold overrides the method's default threshold: the p-value
	// level for p-value methods, the critical statistic otherwise.
	Threshold *float64 `yaml:"threshold"`
	// Warning is the warning level of a statistic method; default half the
	// threshold (PSI 0.1 of 0.2).
	Warning *float64 `yaml:"warning"`
	// Params are handed to the plugin (bins, epsilon, normalize, ...).
	Params map[string]any `yaml:"params"`
	// Disabled leaves the feature out of drift evaluation.
	Disabled bool `yaml:"disabled"`
}

// Models is the `models:` section, by model name.
type Models map[string]ModelConfig

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	// Two variables, not one: the config loader writes a file's or the
	// environment's value through these pointers, so a shared one would
	// make auto_reference: false turn drift off as well.
	enabled, autoRef := true, true
	return Config{
		Enabled:            &enabled,
		Interval:           30 * time.Second,
		CurrentWindow:      1000,
		ReferenceSize:      1000,
		AutoReference:      &autoRef,
		MaxReferenceValues: 100_000,
		MinSamples:         100,
		Correction:         string(Bonferroni),
		HistoryRetention:   7 * 24 * time.Hour,
		HistoryMaxEntries:  1000,
		Concurrency:        4,
		Timeout:            60 * time.Second,
	}
}

// WithDataDir returns a copy of c whose empty Path becomes
// <dataDir>/drift.db.
func (c Config) WithDataDir(dataDir string) Config {
	if c.Path == "" {
		c.Path = filepath.Join(dataDir, DefaultFileName)
	}
	return c
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Enabled == nil {
		c.Enabled = d.Enabled
	}
	if c.AutoReference == nil {
		c.AutoReference = d.AutoReference
	}
	if c.Interval == 0 {
		c.Interval = d.Interval
	}
	if c.Correction == "" {
		c.Correction = d.Correction
	}
	if c.HistoryRetention == 0 {
		c.HistoryRetention = d.HistoryRetention
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	set := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	set(&c.CurrentWindow, d.CurrentWindow)
	set(&c.ReferenceSize, d.ReferenceSize)
	set(&c.MaxReferenceValues, d.MaxReferenceValues)
	set(&c.MinSamples, d.MinSamples)
	set(&c.HistoryMaxEntries, d.HistoryMaxEntries)
	set(&c.Concurrency, d.Concurrency)
	return c
}

// Validate names every invalid key as drift.<key>, one per line.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("drift.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Interval < 0 || (c.Interval != 0 && c.Interval < time.Second) {
		bad("interval", "must be at least 1s, got %s", c.Interval)
	}
	if c.CurrentWindowTime < 0 || (c.CurrentWindowTime != 0 && c.CurrentWindowTime < time.Second) {
		bad("current_window_time", "must be 0 (count window) or at least 1s, got %s", c.CurrentWindowTime)
	}
	if c.HistoryRetention < 0 || (c.HistoryRetention != 0 && c.HistoryRetention < time.Minute) {
		bad("history_retention", "must be at least 1m, got %s", c.HistoryRetention)
	}
	if c.Timeout < 0 || (c.Timeout != 0 && c.Timeout < time.Second) {
		bad("timeout", "must be at least 1s, got %s", c.Timeout)
	}
	if _, err := ParseCorrection(c.Correction); err != nil {
		bad("correction", "%v", err)
	}
	for _, f := range []struct {
		key    string
		v, max int
	}{
		{"current_window", c.CurrentWindow, 1_000_000},
		{"reference_size", c.ReferenceSize, 1_000_000},
		{"max_reference_values", c.MaxReferenceValues, 10_000_000},
		{"min_samples", c.MinSamples, 1_000_000},
		{"history_max_entries", c.HistoryMaxEntries, 1_000_000},
		{"concurrency", c.Concurrency, 256},
	} {
		if f.v < 0 || f.v > f.max {
			bad(f.key, "must be between 1 and %d, got %d", f.max, f.v)
		}
	}
	return errors.Join(errs...)
}

// Validate names every invalid key as models.<model>.<key>, one per line,
// in name order.
func (m Models) Validate() error {
	var errs []error
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		mc := m[name]
		bad := func(key, format string, args ...any) {
			errs = append(errs, fmt.Errorf("models.%s.%s: %s", name, key, fmt.Sprintf(format, args...)))
		}
		if name == "" {
			errs = append(errs, errors.New("models: a model name is empty"))
			continue
		}
		if mc.Correction != "" {
			if _, err := ParseCorrection(mc.Correction); err != nil {
				bad("correction", "%v", err)
			}
		}
		if mc.ReferenceSize < 0 || mc.ReferenceSize > 1_000_000 {
			bad("reference_size", "must be between 1 and 1000000, got %d", mc.ReferenceSize)
		}
		if mc.MinSamples < 0 || mc.MinSamples > 1_000_000 {
			bad("min_samples", "must be between 1 and 1000000, got %d", mc.MinSamples)
		}
		fnames := make([]string, 0, len(mc.Features))
		for f := range mc.Features {
			fnames = append(fnames, f)
		}
		sort.Strings(fnames)
		for _, f := range fnames {
			fc := mc.Features[f]
			key := "features." + f
			if fc.Method != "" && fc.Detector == "" {
				bad(key+".method", "needs a detector (the plugin that offers the method)")
			}
			method := fc.Method
			if method == "" {
				method = fc.Detector
			}
			if fc.Threshold != nil {
				t := *fc.Threshold
				switch {
				case math.IsNaN(t) || math.IsInf(t, 0) || t <= 0:
					bad(key+".threshold", "must be a positive number, got %v", t)
				case (method == "ks" || method == "chisquare") && t >= 1:
					bad(key+".threshold", "is a p-value level for %s and must be below 1, got %v", method, t)
				}
			}
			if fc.Warning != nil {
				w := *fc.Warning
				switch {
				case math.IsNaN(w) || math.IsInf(w, 0) || w <= 0:
					bad(key+".warning", "must be a positive number, got %v", w)
				case method == "ks" || method == "chisquare":
					bad(key+".warning", "applies to statistic methods (psi, wasserstein, jensenshannon); %s's warning is a raw p-value below the threshold that the correction does not confirm", method)
				case fc.Threshold != nil && w > *fc.Threshold:
					bad(key+".warning", "must not exceed the threshold %v, got %v", *fc.Threshold, w)
				}
			}
			if fc.Detector == "wasserstein" && fc.Threshold == nil {
				if n, ok := fc.Params["normalize"].(bool); ok && !n {
					bad(key+".threshold", "is required with params.normalize: false (the raw distance is in the feature's units)")
				}
			}
		}
	}
	return errors.Join(errs...)
}
