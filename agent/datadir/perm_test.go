package datadir

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
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
