package store

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// corruptError marks an error that means the file's contents cannot be
// trusted (as opposed to a file we may not open: locked, no permission).
type corruptError struct{ err error }

func (e *corruptError) Error() string { return "corrupt store file: " + e.err.Error() }
func (e *corruptError) Unwrap() error { return e.err }

func corrupt(format string, args ...any) error {
	return &corruptError{fmt.Errorf(format, args...)}
}

// isCorrupt reports whether err from bolt.Open or from reading the file's
// own structures means the file is damaged. Errors about our access to the
// file (lock held, permission, read-only or full disk, missing directory)
// are not corruption: moving the file aside would not help and would lose
// data.
func isCorrupt(err error) bool {
	var ce *corruptError
	if errors.As(err, &ce) {
		return true
	}
	for _, notCorrupt := range []error{
		berrors.ErrTimeout, fs.ErrPermission, fs.ErrNotExist,
		syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EISDIR, syscall.ENOTDIR,
		syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM, syscall.EAGAIN,
	} {
		if errors.Is(err, notCorrupt) {
			return false
		}
	}
	var se *SchemaError
	return !errors.As(err, &se)
}

// lockTimeout is how long Open waits for another process's lock on the file.
const lockTimeout = 2 * time.Second

func boltOpen(path string, opts bolt.Options) (db *bolt.DB, err error) {
	// bbolt can panic on some damaged files instead of returning an error.
	defer func() {
		if p := recover(); p != nil {
			db, err = nil, corrupt("bbolt panicked opening it: %v", p)
		}
	}()
	opts.Timeout = lockTimeout
	db, err = bolt.Open(path, 0o600, &opts)
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w (is another agent using %s?)", err, path)
	}
	return db, err
}

// openFile opens the bbolt file at path and runs init on it. A corrupt file
// is renamed to <path>.corrupt-<UTC time>, logged at ERROR, and replaced by
// a fresh one; this happens at most once per call so a file that keeps
// failing cannot cause a loop. init must be safe to run on an empty file.
func openFile(path string, opts bolt.Options, log *slog.Logger, init func(*bolt.DB) error) (*bolt.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	_ = os.Remove(path + compactSuffix) // a compaction that did not finish
	db, err := openAndInit(path, opts, init)
	if err == nil {
		return db, nil
	}
	if !isCorrupt(err) {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	aside := path + ".corrupt-" + time.Now().UTC().Format("20060102T150405.000Z")
	if rerr := os.Rename(path, aside); rerr != nil {
		return nil, fmt.Errorf("open store %s: %w; moving it aside failed: %w", path, err, rerr)
	}
	syncDir(filepath.Dir(path))
	log.Error("store file is corrupt; moved it aside and started an empty one",
		"path", path, "moved_to", aside, "err", err)
	db, err2 := openAndInit(path, opts, init)
	if err2 != nil {
		return nil, fmt.Errorf("open store %s: fresh file after moving the corrupt one to %s: %w", path, aside, err2)
	}
	return db, nil
}

func openAndInit(path string, opts bolt.Options, init func(*bolt.DB) error) (db *bolt.DB, err error) {
	db, err = boltOpen(path, opts)
	if err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			err = corrupt("reading it panicked: %v", p)
		}
		if err != nil {
			_ = db.Close()
			db = nil
		}
	}()
	return db, init(db)
}

// checkFile runs bbolt's consistency check (every page is read).
func checkFile(db *bolt.DB) error {
	return db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() { // drain fully: Check's goroutine sends every error
			if len(errs) < 10 {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			return corrupt("consistency check: %w", errors.Join(errs...))
		}
		return nil
	})
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
