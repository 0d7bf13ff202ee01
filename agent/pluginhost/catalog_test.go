package pluginhost

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestReadPackageCatalog(t *testing.T) {
	write := func(t *testing.T, body string) string {
		t.Helper()
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "catalog.json"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}

	t.Run("missing file", func(t *testing.T) {
		got, err := readPackageCatalog(t.TempDir())
		if err != nil || got != nil {
			t.Fatalf("got %v, %v; want nothing and no error", got, err)
		}
	})

	t.Run("args and env reach the entry", func(t *testing.T) {
		dir := write(t, `{"plugins": [{"name": "openai", "kind": "provider", "file": "openai", "sha256": "ab",
			"args": ["-v"], "env": ["GOMAXPROCS=1", "EMPTY="]}]}`)
		got, err := readPackageCatalog(dir)
		if err != nil {
			t.Fatal(err)
		}
		want := []Entry{{Name: "openai", Kind: "provider", Path: filepath.Join(dir, "openai"), SHA256: "ab",
			Args: []string{"-v"}, Env: []string{"GOMAXPROCS=1", "EMPTY="}, Source: "package"}}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v\nwant %+v", got, want)
		}
	})

	t.Run("version 1, as gen-catalog.sh writes it", func(t *testing.T) {
		dir := write(t, `{"version": 1, "plugins": [{"name": "a", "kind": "provider", "file": "a", "sha256": "ab"}]}`)
		if got, err := readPackageCatalog(dir); err != nil || len(got) != 1 {
			t.Fatalf("got %v, %v", got, err)
		}
	})

	for _, tc := range []struct{ name, body, wantErr string }{
		{"a newer version", `{"version": 2, "plugins": []}`, "version 2 is newer"},
		{"unknown key", `{"plugins": [{"name": "a", "kind": "provider", "file": "a", "sha256": "ab", "environment": ["X=1"]}]}`, `unknown field "environment"`},
		{"env without a value", `{"plugins": [{"name": "a", "kind": "provider", "file": "a", "sha256": "ab", "env": ["GOMAXPROCS"]}]}`, `env entry "GOMAXPROCS" is not KEY=VALUE`},
		{"file outside the directory", `{"plugins": [{"name": "a", "kind": "provider", "file": "../a", "sha256": "ab"}]}`, "file must be a name inside the directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := write(t, tc.body)
			_, err := readPackageCatalog(dir)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), filepath.Join(dir, "catalog.json")) {
				t.Fatalf("err = %v; want one naming the file and %q", err, tc.wantErr)
			}
		})
	}
}
