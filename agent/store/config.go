package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/vigilml/vigil/agent/units"
)

// DefaultFileName is the name of the sample store file inside the agent's
// data directory when Config.Path is empty.
const DefaultFileName = "vigil.db"

// Config configures the sample store. It is decoded from the `store:` section
// of the agent configuration; the zero value of every field means "use the
// default" so that a partial YAML section is valid.
type Config struct {
	// Path is the bbolt file holding samples. Empty means
	// <data_dir>/vigil.db; the caller resolves it with WithDataDir before Open.
	Path string `yaml:"path"`

	// Retention is how long samples are kept, measured from the sample's own
	// timestamp. Whole partitions older than this are dropped. Default 24h.
	Retention time.Duration `yaml:"retention"`

	// MaxBytes caps the live data in the file. When it is exceeded the
	// oldest partitions are dropped first (and, if only the newest partition
	// is left, its oldest records). The file itself may briefly exceed the
	// cap by bbolt's growth step before compaction shrinks it. Default 1GiB.
	MaxBytes units.Bytes `yaml:"max_bytes"`

	// Partition is the time span of one partition: the unit that eviction
	// drops whole. Smaller partitions evict more precisely; larger ones keep
	// fewer buckets. Must divide 24h evenly and be at least 1m. Default 1h.
	Partition time.Duration `yaml:"partition"`

	// MaxSeries bounds the series index (and the memory it takes). An Append
	// that brings new series beyond it stores everything else and drops only
	// the samples of those new series. Series whose data retention or
	// MaxBytes dropped are removed at maintenance, freeing their slots.
	// Default 100000.
	MaxSeries int `yaml:"max_series"`

	// QueueSize bounds how many Append calls may wait for the writer; further
	// calls block (respecting their context) until there is room.
	// Default 4096.
	QueueSize int `yaml:"queue_size"`

	// CommitDelay bounds how long the writer waits to gather more appends
	// before a commit. It waits only when the previous commit served more
	// callers than have arrived yet (they are usually about to resubmit), so
	// a lone writer never waits. Default 1ms; at most 1s.
	CommitDelay time.Duration `yaml:"commit_delay"`

	// QueryMaxSeries and QueryMaxPoints bound one Query. Defaults 10000 and
	// 5000000.
	QueryMaxSeries int `yaml:"query_max_series"`
	QueryMaxPoints int `yaml:"query_max_points"`

	// CompactMinBytes: the file is compacted (copied into a fresh file and
	// renamed over the old one) only when it is at least this large and more
	// than half of it is free pages. Default 64MiB.
	CompactMinBytes units.Bytes `yaml:"compact_min_bytes"`

	// CheckOnOpen runs bbolt's full consistency check when the file is
	// opened. It reads every page, so it costs seconds on a large file;
	// without it, corruption is still detected when bbolt refuses the file or
	// the series index cannot be loaded. Default false.
	CheckOnOpen bool `yaml:"check_on_open"`
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		Retention:       24 * time.Hour,
		MaxBytes:        1 << 30,
		Partition:       time.Hour,
		MaxSeries:       100_000,
		QueueSize:       4096,
		QueryMaxSeries:  10_000,
		QueryMaxPoints:  5_000_000,
		CompactMinBytes: 64 << 20,
		CommitDelay:     time.Millisecond,
	}
}

// WithDataDir returns a copy of c whose Path defaults to
// <dataDir>/vigil.db when it is empty. A relative Path is kept as it is.
func (c Config) WithDataDir(dataDir string) Config {
	if c.Path == "" {
		c.Path = filepath.Join(dataDir, DefaultFileName)
	}
	return c
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Retention == 0 {
		c.Retention = d.Retention
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = d.MaxBytes
	}
	if c.Partition == 0 {
		c.Partition = d.Partition
	}
	if c.MaxSeries == 0 {
		c.MaxSeries = d.MaxSeries
	}
	if c.QueueSize == 0 {
		c.QueueSize = d.QueueSize
	}
	if c.QueryMaxSeries == 0 {
		c.QueryMaxSeries = d.QueryMaxSeries
	}
	if c.QueryMaxPoints == 0 {
		c.QueryMaxPoints = d.QueryMaxPoints
	}
	if c.CompactMinBytes == 0 {
		c.CompactMinBytes = d.CompactMinBytes
	}
	if c.CommitDelay == 0 {
		c.CommitDelay = d.CommitDelay
	}
	return c
}

// minMaxBytes is the smallest accepted MaxBytes: below it bbolt's own
// overhead (meta pages, freelist, series index) dominates.
const minMaxBytes = 1 << 20

// Validate reports every invalid field, naming it as it appears in the
// agent configuration (store.retention, ...). Zero fields are valid: they
// take their defaults. Path may be empty here; Open requires it.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("store.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Retention < 0 {
		bad("retention", "must not be negative, got %s", c.Retention)
	} else if c.Retention != 0 && c.Retention < time.Minute {
		bad("retention", "must be at least 1m, got %s", c.Retention)
	}
	if c.MaxBytes < 0 {
		bad("max_bytes", "must not be negative, got %d", int64(c.MaxBytes))
	} else if c.MaxBytes != 0 && c.MaxBytes < minMaxBytes {
		bad("max_bytes", "must be at least 1MiB, got %s", c.MaxBytes)
	}
	if c.Partition < 0 {
		bad("partition", "must not be negative, got %s", c.Partition)
	} else if c.Partition != 0 {
		switch {
		case c.Partition < time.Minute:
			bad("partition", "must be at least 1m, got %s", c.Partition)
		case (24*time.Hour)%c.Partition != 0:
			bad("partition", "must divide 24h evenly, got %s", c.Partition)
		case c.Partition%time.Millisecond != 0:
			bad("partition", "must be a whole number of milliseconds, got %s", c.Partition)
		}
	}
	if c.Retention > 0 && c.Partition > 0 && c.Partition > c.Retention {
		bad("partition", "%s is longer than store.retention %s", c.Partition, c.Retention)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"max_series", c.MaxSeries}, {"queue_size", c.QueueSize}, {"query_max_series", c.QueryMaxSeries}, {"query_max_points", c.QueryMaxPoints}} {
		if f.v < 0 {
			bad(f.name, "must not be negative, got %d", f.v)
		}
	}
	if c.CommitDelay < 0 || c.CommitDelay > time.Second {
		bad("commit_delay", "must be between 0 and 1s, got %s", c.CommitDelay)
	}
	if c.CompactMinBytes < 0 {
		bad("compact_min_bytes", "must not be negative, got %d", int64(c.CompactMinBytes))
	}
	return errors.Join(errs...)
}
