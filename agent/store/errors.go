package store

import (
	"errors"
	"fmt"
	"syscall"

	berrors "go.etcd.io/bbolt/errors"
)

var (
	// ErrClosed is returned by calls made after Close.
	ErrClosed = errors.New("store is closed")

	// ErrDiskFull is returned (wrapped) when a commit failed because the
	// disk or the file's hard size cap is full. Nothing of the failed call
	// was stored; reads keep working.
	ErrDiskFull = errors.New("store: disk full")

	// ErrWrite is returned (wrapped) when a commit failed for another I/O
	// reason. Nothing of the failed call was stored.
	ErrWrite = errors.New("store: write failed")

	// ErrInvalidSample is wrapped by *SampleError.
	ErrInvalidSample = errors.New("invalid sample")

	// ErrTooManySeries is no longer returned: Append stores what fits and
	// drops only the samples of new series over Config.MaxSeries.
	//
	// Deprecated: kept so that code testing for it still compiles.
	ErrTooManySeries = errors.New("store: too many series")

	// ErrSchemaTooNew is wrapped by *SchemaError.
	ErrSchemaTooNew = errors.New("store file schema is newer than this agent supports")

	// ErrBadQuery is wrapped by errors describing an invalid QueryRequest.
	ErrBadQuery = errors.New("bad query")

	// ErrQueryTooLarge is returned when a query would exceed
	// Config.QueryMaxSeries or Config.QueryMaxPoints.
	ErrQueryTooLarge = errors.New("query too large")
)

// SampleError says which sample of an Append batch was refused and why. The
// whole batch is refused: nothing of it is stored.
type SampleError struct {
	Index  int    // position in the batch
	Field  string // "name", "labels", "time"
	Reason string
}

func (e *SampleError) Error() string {
	return fmt.Sprintf("sample %d: %s: %s", e.Index, e.Field, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalidSample) true.
func (e *SampleError) Unwrap() error { return ErrInvalidSample }

// SchemaError is returned by Open when the file was written by a newer
// agent with a schema this one does not know. The file is left untouched.
type SchemaError struct {
	Path      string
	Found     uint32 // version in the file
	Supported uint32 // newest version this build understands
}

func (e *SchemaError) Error() string {
	return fmt.Sprintf("%s has store schema version %d, this agent supports up to %d; "+
		"upgrade the agent or move the file away", e.Path, e.Found, e.Supported)
}

// Unwrap makes errors.Is(err, ErrSchemaTooNew) true.
func (e *SchemaError) Unwrap() error { return ErrSchemaTooNew }

// Write error reasons used as the `reason` label of
// vigil_store_write_errors_total, and (reasonSeriesLimit) of
// vigil_store_dropped_samples_total.
const (
	reasonDiskFull      = "disk_full"
	reasonIO            = "io"
	reasonInvalidSample = "invalid_sample"
	reasonSeriesLimit   = "series_limit"
)

// classifyCommitErr maps an error from a bbolt update to ErrDiskFull or
// ErrWrite, keeping the original in the chain; Append counts it by class.
func classifyCommitErr(err error) error {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	case errors.Is(err, berrors.ErrMaxSizeReached):
		return fmt.Errorf("%w (file size cap reached): %w", ErrDiskFull, err)
	default:
		return fmt.Errorf("%w: %w", ErrWrite, err)
	}
}
