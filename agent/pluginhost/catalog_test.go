package pluginhost

import (
	"os"
	"os/exec"
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

	t.Run("gen-catalog.sh output", func(t *testing.T) {
		bin := filepath.Join(t.TempDir(), "ks")
		if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		src := t.TempDir()
		if err := os.MkdirAll(filepath.Join(src, "detectors", "ks"), 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("sh", "../../packaging/gen-catalog.sh", filepath.Dir(bin), src).Output()
		if err != nil {
			t.Fatal(err)
		}
		dir := write(t, string(out))
		got, err := readPackageCatalog(dir)
		if err != nil || len(got) != 1 || got[0].Name != "ks" || got[0].Kind != "detector" || len(got[0].SHA256) != 64 {
			t.Fatalf("gen-catalog.sh's output %s read as %+v, %v", out, got, err)
		}
	})

	t.Run("upper-case sha256", func(t *testing.T) {
		dir := write(t, `{"version": 1, "plugins": [{"name": "a", "kind": "detector", "file": "a", "sha256": "ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB"}]}`)
		got, err := readPackageCatalog(dir)
		if err != nil || len(got) != 1 || got[0].SHA256 != "abababababababababababababababababababababababababababababababab" {
			t.Fatalf("got %+v, %v; want the hash in lower case, as fileSHA256 writes it", got, err)
		}
	})

	t.Run("args and env reach the entry", func(t *testing.T) {
		dir := write(t, `{"version": 1, "plugins": [{"name": "openai", "kind": "provider", "file": "openai", "sha256": "abababababababababababababababababababababababababababababababab",
			"args": ["-v"], "env": ["GOMAXPROCS=1", "EMPTY="]}]}`)
		got, err := readPackageCatalog(dir)
		if err != nil {
			t.Fatal(err)
		}
		want := []Entry{{Name: "openai", Kind: "provider", Path: filepath.Join(dir, "openai"), SHA256: "abababababababababababababababababababababababababababababababab",
			Args: []string{"-v"}, Env: []string{"GOMAXPROCS=1", "EMPTY="}, Source: "package"}}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v\nwant %+v", got, want)
		}
	})

	for _, tc := range []struct{ name, body, wantErr string }{
		{"newer format", `{"version": 2, "plugins": []}`, "format version 2 is newer than this agent reads (1)"},
		{"unknown key", `{"plugins": [{"name": "a", "kind": "provider", "file": "a", "sha256": "abababababababababababababababababababababababababababababababab", "environment": ["X=1"]}]}`, `unknown field "environment"`},
		{"env without a value", `{"plugins": [{"name": "a", "kind": "provider", "file": "a", "sha256": "abababababababababababababababababababababababababababababababab", "env": ["GOMAXPROCS"]}]}`, `env entry "GOMAXPROCS": want KEY=VALUE`},
		{"handshake variable in env", `{"plugins": [{"name": "a", "kind": "provider", "file": "a", "sha256": SUM, "env": ["PLUGIN_MIN_PORT=1"]}]}`, `env entry "PLUGIN_MIN_PORT=1": PLUGIN_MIN_PORT is set by the plugin handshake`},
		{"bad name", `{"plugins": [{"name": "My Plugin", "kind": "provider", "file": "a", "sha256": SUM}]}`, `plugins[0].name "My Plugin" is not valid`},
		{"unknown kind", `{"plugins": [{"name": "a", "kind": "detectors", "file": "a", "sha256": SUM}]}`, `kind "detectors" is not detector, provider or vectorstore`},
		{"short sha256", `{"plugins": [{"name": "a", "kind": "provider", "file": "a", "sha256": "ab"}]}`, `sha256 "ab" is not 64 hexadecimal digits`},
		{"listed twice", `{"plugins": [{"name": "a", "kind": "provider", "file": "a", "sha256": SUM}, {"name": "a", "kind": "provider", "file": "b", "sha256": SUM}]}`, `plugin "a" is listed twice`},
		{"file outside the directory", `{"plugins": [{"name": "a", "kind": "provider", "file": "../a", "sha256": "abababababababababababababababababababababababababababababababab"}]}`, "file must be a name inside the directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := write(t, strings.ReplaceAll(tc.body, "SUM", `"abababababababababababababababababababababababababababababababab"`))
			_, err := readPackageCatalog(dir)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), filepath.Join(dir, "catalog.json")) {
				t.Fatalf("err = %v; want one naming the file and %q", err, tc.wantErr)
			}
		})
	}
}
