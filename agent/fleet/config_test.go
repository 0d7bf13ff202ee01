package fleet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateEncryptKeyFile: a key file that is missing or holds a bad key
// is a configuration error naming gossip.encrypt_key_file and the file, as
// an inline key is, not a surprise at start.
func TestValidateEncryptKeyFile(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short.key")
	good := filepath.Join(dir, "good.key")
	if err := os.WriteFile(short, []byte("c2hvcnQ=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(good, []byte(" "+newKey(t)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file    string
		enabled bool
		want    string // empty: valid
	}{
		{short, true, "gossip.encrypt_key_file: " + short + ": the key is 5 bytes"},
		{filepath.Join(dir, "missing.key"), true, "gossip.encrypt_key_file: cannot read the key: open " + filepath.Join(dir, "missing.key")},
		{good, true, ""},
		{short, false, ""}, // gossip off: the file is not used
	} {
		c := DefaultConfig()
		c.Enabled = tc.enabled
		c.EncryptKeyFile = tc.file
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s (enabled %v): %v", tc.file, tc.enabled, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err = %v, want %q", tc.file, err, tc.want)
		}
	}
}
