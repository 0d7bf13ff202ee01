// Package datadir opens the agent's data directory and holds an exclusive
// lock on it for the life of the process, so that two agents never share
// state. The lock is an flock(2) on a file inside the directory: the kernel
// releases it when the process dies, so a crash never leaves a stale lock.
package datadir

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFile is the name of the lock file inside the data directory. It also
// holds the PID of the agent that owns the directory.
const LockFile = "vigil.lock"

// Dir is an open, locked data directory.
type Dir struct {
	Path string
	lock *os.File
}

// LockedError says another process holds the directory.
type LockedError struct {
	Path string
	PID  int // 0 when the holder's PID could not be read
}

func (e *LockedError) Error() string {
	who := "another vigil agent"
	if e.PID > 0 {
		who = fmt.Sprintf("another vigil agent (pid %d)", e.PID)
	}
	return fmt.Sprintf("data dir %s is in use by %s; stop that agent or choose another data dir (-data-dir or data_dir)", e.Path, who)
}

// Open creates path with mode 0700 if needed, and locks it. The path is made
// absolute so logs and the status API show where data really is.
func Open(path string, logger *slog.Logger) (*Dir, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", path, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("data dir %s exists and is not a directory", abs)
	}
	// Group access is how the packages share the dir with the vigil group
	// (StateDirectoryMode=0750); only other users' access is a concern.
	if perm := st.Mode().Perm(); perm&0o007 != 0 && logger != nil {
		logger.Warn("data dir is accessible to other users; vigil creates it with mode 0700 (the packages 0750)", "path", abs, "mode", fmt.Sprintf("%#o", perm))
	}
	lockPath := filepath.Join(abs, LockFile)
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &LockedError{Path: abs, PID: readPID(lockPath)}
		}
		return nil, fmt.Errorf("lock data dir %s: %w", abs, err)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		if err == nil {
			err = f.Sync()
		}
		if err != nil && logger != nil {
			logger.Warn("could not record pid in lock file", "path", lockPath, "err", err)
		}
	}
	return &Dir{Path: abs, lock: f}, nil
}

func readPID(lockPath string) int {
	b, err := os.ReadFile(lockPath)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

// Join returns a path inside the directory.
func (d *Dir) Join(elem ...string) string {
	return filepath.Join(append([]string{d.Path}, elem...)...)
}

// Close releases the lock. The lock file stays; its content is stale but
// harmless, since only the flock counts.
func (d *Dir) Close() error {
	if d.lock == nil {
		return nil
	}
	err := d.lock.Close()
	d.lock = nil
	return err
}
