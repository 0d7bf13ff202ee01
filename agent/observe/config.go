package observe

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/vigilml/vigil/agent/units"
)

// DefaultFileName is the observation file inside the data directory when
// Config.Path is empty. It is a bbolt file of its own, with its own writer,
// so observation commits never queue behind telemetry samples.
const DefaultFileName = "observations.db"

// Config is the `observe:` section of the agent configuration. A zero field
// takes its default, so a partial section is valid.
type Config struct {
	// Path of the observation file; empty means <data_dir>/observations.db.
	Path string `yaml:"path"`
	// Retention: observation and label records older than this (by the
	// time the agent received them) are deleted. It also bounds how old an
	// observation's timestamp may be. Default 24h.
	Retention time.Duration `yaml:"retention"`
	// MaxBytes caps the stored records; past it the oldest go first.
	// Default 1GiB.
	MaxBytes units.Bytes `yaml:"max_bytes"`
	// MaxBatchItems caps the items of one POST. Default 10000.
	MaxBatchItems int `yaml:"max_batch_items"`
	// MaxFeatures caps the features of one observation. Default 256.
	MaxFeatures int `yaml:"max_features"`
	// MaxStringBytes caps every string value: feature values, prediction,
	// label, request_id. Default 1024.
	MaxStringBytes int `yaml:"max_string_bytes"`
	// MaxNameBytes caps model, version and feature names. Default 128.
	MaxNameBytes int `yaml:"max_name_bytes"`
	// MaxModels caps the (model, version) pairs tracked in memory. A pair
	// not seen for a whole retention is forgotten; a batch that would add
	// a pair past the cap is refused. Default 256.
	MaxModels int `yaml:"max_models"`
	// MaxFutureSkew: how far in the future (by the agent's clock) an
	// observation's timestamp may be. Default 5m.
	MaxFutureSkew time.Duration `yaml:"max_future_skew"`
	// LabelIndexSize: how many recent request_ids are remembered so that
	// POST /v1/labels can find their predictions. Default 100000.
	LabelIndexSize int `yaml:"label_index_size"`
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Retention:      24 * time.Hour,
		MaxBytes:       1 << 30,
		MaxBatchItems:  10_000,
		MaxFeatures:    256,
		MaxStringBytes: 1024,
		MaxNameBytes:   128,
		MaxModels:      256,
		MaxFutureSkew:  5 * time.Minute,
		LabelIndexSize: 100_000,
	}
}

// WithDataDir returns a copy of c whose empty Path becomes
// <dataDir>/observations.db.
func (c Config) WithDataDir(dataDir string) Config {
	if c.Path == "" {
		c.Path = filepath.Join(dataDir, DefaultFileName)
	}
	return c
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	set := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	if c.Retention == 0 {
		c.Retention = d.Retention
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = d.MaxBytes
	}
	if c.MaxFutureSkew == 0 {
		c.MaxFutureSkew = d.MaxFutureSkew
	}
	set(&c.MaxBatchItems, d.MaxBatchItems)
	set(&c.MaxFeatures, d.MaxFeatures)
	set(&c.MaxStringBytes, d.MaxStringBytes)
	set(&c.MaxNameBytes, d.MaxNameBytes)
	set(&c.MaxModels, d.MaxModels)
	set(&c.LabelIndexSize, d.LabelIndexSize)
	return c
}

// Validate names every invalid key as observe.<key>.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("observe.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Retention < 0 || (c.Retention != 0 && c.Retention < 2*time.Hour) {
		// The 1h window is rebuilt from stored records after a restart.
		bad("retention", "must be at least 2h (the 1h window is rebuilt from stored observations), got %s", c.Retention)
	}
	if c.MaxBytes < 0 || (c.MaxBytes != 0 && c.MaxBytes < 1<<20) {
		bad("max_bytes", "must be at least 1MiB, got %s", c.MaxBytes)
	}
	if c.MaxFutureSkew < 0 || c.MaxFutureSkew > time.Hour {
		bad("max_future_skew", "must be between 0 and 1h, got %s", c.MaxFutureSkew)
	}
	for _, f := range []struct {
		key    string
		v, max int
	}{
		{"max_batch_items", c.MaxBatchItems, 1_000_000},
		{"max_features", c.MaxFeatures, 10_000},
		{"max_string_bytes", c.MaxStringBytes, 1 << 20},
		{"max_name_bytes", c.MaxNameBytes, 1024},
		{"max_models", c.MaxModels, 100_000},
		{"label_index_size", c.LabelIndexSize, 100_000_000},
	} {
		if f.v < 0 || f.v > f.max {
			bad(f.key, "must be between 1 and %d, got %d", f.max, f.v)
		}
	}
	return errors.Join(errs...)
}
