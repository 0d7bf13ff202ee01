package datadir

import (
	"bytes"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestWarnsOnlyWhenOthersHaveAccess checks the permission warning: the
// packages and the systemd unit (StateDirectoryMode=0750) give the vigil
// group access on purpose, so only access for other users is warned about.
func TestWarnsOnlyWhenOthersHaveAccess(t *testing.T) {
	for _, tc := range []struct {
		mode os.FileMode
		warn bool
	}{{0o700, false}, {0o750, false}, {0o755, true}, {0o701, true}} {
		path := filepath.Join(t.TempDir(), "data")
		if err := os.Mkdir(path, tc.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, tc.mode); err != nil { // past the umask
			t.Fatal(err)
		}
		var logs bytes.Buffer
		d, err := Open(path, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		d.Close()
		if got := strings.Contains(logs.String(), "accessible to other users"); got != tc.warn {
			t.Errorf("mode %#o: warned %v, want %v; logs: %s", tc.mode, got, tc.warn, logs.String())
		}
	}
}

// TestPermissionError checks the message for a data dir the agent's user
// may not write (a directory made by root for an agent that runs as vigil):
// it names the directory, what failed, who runs the agent, who owns the
// directory with its mode, and the chown that fixes it. Root may write
// anywhere, so the error is made here rather than provoked.
func TestPermissionError(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	me := userName(os.Geteuid())
	denied := &fs.PathError{Op: "open", Path: filepath.Join(dir, LockFile), Err: syscall.EACCES}
	got := permissionError(dir, "cannot create its lock file vigil.lock", denied).Error()
	for _, want := range []string{
		"data dir " + dir + ": cannot create its lock file vigil.lock: permission denied",
		"the agent runs as " + me + " but " + dir + " is owned by " + me + ", mode 0755",
		"chown -R " + me + " " + dir,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("error lacks %q:\n%s", want, got)
		}
	}
	// A directory still to be made: the owner is the nearest one that exists.
	sub := filepath.Join(dir, "a", "b")
	got = permissionError(sub, "cannot create it", &fs.PathError{Op: "mkdir", Path: filepath.Join(dir, "a"), Err: syscall.EACCES}).Error()
	if !strings.Contains(got, "but "+dir+" is owned by") {
		t.Errorf("missing directory: error does not name the nearest existing one %s:\n%s", dir, got)
	}
}

// TestPermissionErrorNamesTheRefusedFile: when the refused path exists (a
// lock file left by an agent run as root), its owner is named, not the
// directory's, which may well belong to the agent's user.
func TestPermissionErrorNamesTheRefusedFile(t *testing.T) {
	dir := t.TempDir()
	lock := filepath.Join(dir, LockFile)
	if err := os.WriteFile(lock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	me := userName(os.Geteuid())
	got := permissionError(dir, "cannot open its lock file vigil.lock", &fs.PathError{Op: "open", Path: lock, Err: syscall.EACCES}).Error()
	if want := "but " + lock + " is owned by " + me + ", mode 0600"; !strings.Contains(got, want) {
		t.Errorf("error lacks %q:\n%s", want, got)
	}
}

// TestWarnsWhenRootRunsInAnotherUsersDir checks the warning for root
// running the agent in a data dir that another user owns (vigil's
// /var/lib/vigil), whose files would then be root's; and none for the
// owner itself.
func TestWarnsWhenRootRunsInAnotherUsersDir(t *testing.T) {
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		if err := os.Chown(dir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	warnRootInOthersDir(logger, dir, st, 0)
	if !strings.Contains(logs.String(), "running as root in a data dir owned by") || !strings.Contains(logs.String(), "run the agent as") {
		t.Errorf("root in another user's dir: no warning; logs: %s", logs.String())
	}
	logs.Reset()
	warnRootInOthersDir(logger, dir, st, int(st.Sys().(*syscall.Stat_t).Uid))
	if logs.Len() != 0 {
		t.Errorf("the owner itself was warned: %s", logs.String())
	}
}
