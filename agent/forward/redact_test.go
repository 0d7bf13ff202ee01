package forward

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRefusalQuotingCredentialsIsRedacted: a receiver (or a proxy before
// it) that quotes the credential it refused must not put it in the
// forwarder's error, which is logged and shown in the forward status to
// any read token.
func TestRefusalQuotingCredentialsIsRedacted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		msg := "refused credential: " + auth
		if u, p, ok := r.BasicAuth(); ok {
			msg += " (user " + u + ", password " + p + ")"
		}
		http.Error(w, msg, http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	write := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name    string
		set     func(*RemoteWrite)
		secrets []string
	}{
		{"bearer", func(rw *RemoteWrite) { rw.BearerTokenFile = write("token", "tok-0123456789") }, []string{"tok-0123456789"}},
		{"basic", func(rw *RemoteWrite) {
			rw.BasicAuth = BasicAuth{Username: "vigil", PasswordFile: write("pw", "s3cret-pw")}
		},
			[]string{"s3cret-pw", base64.StdEncoding.EncodeToString([]byte("vigil:s3cret-pw"))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rw := testRemoteWrite(srv.URL)
			tc.set(&rw)
			c, err := newClient(rw.withDefaults(), "vigil/test")
			if err != nil {
				t.Fatal(err)
			}
			res, _ := c.post(context.Background(), []byte("x"), time.Now())
			if res.err == nil || !strings.Contains(res.err.Error(), "401") || !strings.Contains(res.err.Error(), "[redacted]") {
				t.Fatalf("error %v; want the 401 with the credential redacted", res.err)
			}
			for _, s := range tc.secrets {
				if strings.Contains(res.err.Error(), s) {
					t.Errorf("error %q quotes the secret %q", res.err, s)
				}
			}
		})
	}
}
