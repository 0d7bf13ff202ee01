package test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// npmPackage returns a directory holding the Node packages pinned by
// src/package-lock.json (src relative to test/), installed with npm ci
// into the user's cache directory on first use, so the npm registry is
// needed only then. probe is a package whose presence marks a finished
// install; script, a file of src, is copied beside node_modules (ES
// modules resolve packages from their own directory). what says which
// test needs it, for the error messages.
func npmPackage(t *testing.T, src, probe, script, what string) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: %s needs Node.js 20 or later with npm (Debian: apt-get install nodejs npm; `make test-deps` as root does it)", tool, what)
		}
	}
	out, err := exec.Command("node", "-p", "process.versions.node.split('.')[0]").Output()
	if major, aerr := strconv.Atoi(strings.TrimSpace(string(out))); err != nil || aerr != nil || major < 20 {
		t.Fatalf("Node.js %q is too old or broken for %s: install Node.js 20 or later (%v)", out, what, err)
	}
	lock, err := os.ReadFile(filepath.Join(src, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lock)
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "vigil-test", probe+"-"+hex.EncodeToString(sum[:6]))
	if _, err := os.Stat(filepath.Join(dir, "node_modules", probe, "package.json")); err != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"package.json", "package-lock.json"} {
			b, err := os.ReadFile(filepath.Join(src, f))
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, f), string(b))
		}
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = dir
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s (installs the pinned %s from the npm registry): %v\n%s", dir, probe, err, b)
		}
	}
	// The script, and the modules beside it that it may import (every
	// .mjs file), each written to a temporary name and renamed into
	// place: tests running at once share dir.
	mods, _ := filepath.Glob(filepath.Join(src, "*.mjs"))
	if !slices.Contains(mods, filepath.Join(src, script)) {
		t.Fatalf("%s: no %s in %s", what, script, src)
	}
	for _, m := range mods {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		tmp, err := os.CreateTemp(dir, ".mjs-*")
		if err != nil {
			t.Fatal(err)
		}
		_, werr := tmp.Write(b)
		if cerr := tmp.Close(); werr != nil || cerr != nil {
			t.Fatal(werr, cerr)
		}
		if err := os.Rename(tmp.Name(), filepath.Join(dir, filepath.Base(m))); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
