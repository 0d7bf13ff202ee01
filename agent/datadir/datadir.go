// Package datadir opens the agent's data directory and holds an exclusive
// lock on it for the life of the process, so that two agents never share
// state. The lock is an flock(2) on a file inside the directory: the kernel
// releases it when the process dies, so a crash never leaves a stale lock.
package datadir

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
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
		if errors.Is(err, fs.ErrPermission) {
			return nil, permissionError(abs, "cannot create it", err)
		}
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("data dir %s exists and is not a directory", abs)
	}
	warnRootInOthersDir(logger, abs, st, os.Geteuid())
	// Group access is how the packages share the dir with the vigil group
	// (StateDirectoryMode=0750); only other users' access is a concern.
	if perm := st.Mode().Perm(); perm&0o007 != 0 && logger != nil {
		logger.Warn("data dir is accessible to other users; vigil creates it with mode 0700 (the packages 0750)", "path", abs, "mode", fmt.Sprintf("%#o", perm))
	}
	lockPath := filepath.Join(abs, LockFile)
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, permissionError(abs, "cannot open its lock file "+LockFile, err)
		}
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

// permissionError explains a data dir this process may not write: who runs
// the agent, who owns the directory (or the nearest one that exists), and
// what to do. The common case is a directory made by root for an agent
// that runs as vigil.
func permissionError(dir, what string, err error) error {
	// The path refused (a lock file a root-run agent left), or the
	// nearest directory of it that exists.
	owner := dir
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path != "" {
		owner = pe.Path
	}
	for {
		if _, serr := os.Stat(owner); serr == nil || filepath.Dir(owner) == owner {
			break
		}
		owner = filepath.Dir(owner)
	}
	me := userName(os.Geteuid())
	msg := fmt.Sprintf("data dir %s: %s: %v; the agent runs as %s", dir, what, unwrapPath(err), me)
	if st, serr := os.Stat(owner); serr == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			msg += fmt.Sprintf(" but %s is owned by %s, mode %#o", owner, userName(int(sys.Uid)), st.Mode().Perm())
		}
	}
	return errors.New(msg + fmt.Sprintf("; give the directory to the agent's user (chown -R %s %s) or choose another data dir (-data-dir or data_dir)", me, dir))
}

// warnRootInOthersDir warns when root runs the agent in a data dir that
// another user owns (the packaged /var/lib/vigil, owned by vigil): the
// files it creates are root's, and the agent run as that user later cannot
// open them. A warning, not a refusal: a container may run as root on a
// volume owned by someone else on purpose.
func warnRootInOthersDir(logger *slog.Logger, dir string, st fs.FileInfo, euid int) {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if logger == nil || euid != 0 || !ok || sys.Uid == 0 {
		return
	}
	owner := userName(int(sys.Uid))
	logger.Warn(fmt.Sprintf("running as root in a data dir owned by %s: files created now belong to root, and an agent run as %s later cannot open them; run the agent as %s", owner, owner, owner),
		"path", dir)
}

// userName is uid's login name, or the number when it has none.
func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return "uid " + strconv.Itoa(uid)
}

// unwrapPath drops the operation and path that a *fs.PathError repeats.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
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
