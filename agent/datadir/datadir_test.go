package datadir

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestOpenCreatesPrivateDirAndLocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "data")
	d, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o700 {
		t.Errorf("mode = %#o, want 0700", perm)
	}
	b, _ := os.ReadFile(filepath.Join(path, LockFile))
	if strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("lock file holds %q, want our pid", b)
	}

	// flock locks belong to open file descriptions, so a second Open in the
	// same process conflicts just as another process would.
	_, err = Open(path, nil)
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("second Open: err = %v, want *LockedError", err)
	}
	if le.PID != os.Getpid() || !strings.Contains(err.Error(), "in use by another vigil agent (pid ") {
		t.Errorf("error = %v", err)
	}

	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d2, err := Open(path, nil)
	if err != nil {
		t.Fatalf("reopen after Close: %v", err)
	}
	d2.Close()
}

func TestOpenRejectsFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, nil, 0o600)
	if _, err := Open(p, nil); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("err = %v", err)
	}
}
