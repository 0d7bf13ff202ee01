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

// TestValidateJoinAddrs: join and retry_join entries that memberlist could
// not dial are configuration errors naming the entry, not a join failure
// found in the log after start.
func TestValidateJoinAddrs(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want string // empty: valid
	}{
		{"10.0.3.10:7946", ""},
		{"gpu-node-10.example:7946", ""},
		{"gpu-node-10", ""},     // this node's port
		{"[fd00::10]:7946", ""}, // IPv6 with a port
		{"fd00::10", ""},        // bare IPv6: this node's port
		{"10.0.3.10:79466", "the port must be a number from 1 to 65535"},
		{"10.0.3.10:gossip", "the port must be a number from 1 to 65535"},
		{":7946", "has no host"},
		{"10.0.3.10;7946", "is not one address"},
		{"10.0.3.10:7946, 10.0.3.11:7946", "is not one address"},
		{"garbage:::", "is not host:port"},
		{" ", "must not be empty"},
	} {
		for _, key := range []string{"join", "retry_join"} {
			c := DefaultConfig()
			if key == "join" {
				c.Join = []string{"10.0.3.9:7946", tc.addr}
			} else {
				c.RetryJoin = []string{"10.0.3.9:7946", tc.addr}
			}
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("%s %q: %v", key, tc.addr, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), "gossip."+key+"[1]: ") || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("%s %q: err = %v, want gossip.%s[1]: ...%s", key, tc.addr, err, key, tc.want)
			}
		}
	}
}
