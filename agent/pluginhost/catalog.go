package pluginhost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vigilml/vigil/agent/store"
	"github.com/vigilml/vigil/sdk"
)

// Entry is one trusted plugin: the catalog records the binary's SHA-256,
// and a binary whose hash no longer matches is refused.
type Entry struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	// Version is what the plugin said of itself when registered.
	Version string   `json:"version,omitempty"`
	Args    []string `json:"args,omitempty"`
	// Env are extra KEY=VALUE variables; the plugin does not inherit the
	// agent's environment (which may hold secrets).
	Env          []string  `json:"env,omitempty"`
	RegisteredAt time.Time `json:"registered_at"`
	// Source says where the trust comes from: "registered" (vigil plugins
	// register), "package" (a catalog.json shipped beside the binary) or
	// "dev" (the build's own plugin directory in dev mode).
	Source string `json:"source"`
}

const catalogBucket = "catalog"

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// catalog is the durable list of registered plugins, kept in its own bbolt
// file in the data directory.
type catalog struct {
	kv *store.KV
}

func openCatalog(path string, logger *slog.Logger) (*catalog, error) {
	kv, err := store.OpenKV(path, logger)
	if err != nil {
		return nil, fmt.Errorf("open plugin catalog: %w", err)
	}
	return &catalog{kv: kv}, nil
}

func (c *catalog) put(ctx context.Context, e Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return c.kv.Put(ctx, catalogBucket, []byte(e.Name), b)
}

func (c *catalog) remove(ctx context.Context, name string) error {
	return c.kv.Delete(ctx, catalogBucket, []byte(name))
}

func (c *catalog) list() ([]Entry, error) {
	var out []Entry
	err := c.kv.ForEach(catalogBucket, func(_, v []byte) error {
		var e Entry
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("plugin catalog entry: %w", err)
		}
		out = append(out, e)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

func (c *catalog) close() error { return c.kv.Close() }

// PackageCatalog is the format of catalog.json in a plugin directory: the
// plugins a package ships, with their hashes, trusted because the directory
// is as protected as the agent binary itself.
type PackageCatalog struct {
	// Version is the format's version: 1 (packaging/gen-catalog.sh
	// writes it); a newer one is refused.
	Version int            `json:"version"`
	Plugins []PackageEntry `json:"plugins"`
}

// packageCatalogVersion is the catalog.json format this agent reads.
const packageCatalogVersion = 1

// PackageEntry is one shipped plugin; File is relative to the directory.
// Args and Env are passed to the plugin as a registered entry's are.
type PackageEntry struct {
	Name   string   `json:"name"`
	Kind   string   `json:"kind"`
	File   string   `json:"file"`
	SHA256 string   `json:"sha256"`
	Args   []string `json:"args,omitempty"`
	Env    []string `json:"env,omitempty"`
}

// readPackageCatalog reads dir/catalog.json; a missing file is no error.
func readPackageCatalog(dir string) ([]Entry, error) {
	b, err := os.ReadFile(filepath.Join(dir, "catalog.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var pc PackageCatalog
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // a misspelt key must not be dropped silently
	if err := dec.Decode(&pc); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "catalog.json"), err)
	}
	if pc.Version > packageCatalogVersion {
		return nil, fmt.Errorf("%s: format version %d is newer than this agent reads (%d)", filepath.Join(dir, "catalog.json"), pc.Version, packageCatalogVersion)
	}
	var out []Entry
	seen := map[string]bool{}
	for i, p := range pc.Plugins {
		// A bad entry would otherwise surface only at launch, as a
		// mismatch or a crash loop far from the file that caused it.
		switch {
		case !nameRE.MatchString(p.Name):
			return nil, fmt.Errorf("%s: plugins[%d].name %q is not valid (lower-case letters, digits, '.', '_', '-')", filepath.Join(dir, "catalog.json"), i, p.Name)
		case seen[p.Name]:
			return nil, fmt.Errorf("%s: plugin %q is listed twice", filepath.Join(dir, "catalog.json"), p.Name)
		case !slices.Contains(sdk.Kinds, sdk.Kind(p.Kind)):
			return nil, fmt.Errorf("%s: plugin %q: kind %q is not detector, provider or vectorstore", filepath.Join(dir, "catalog.json"), p.Name, p.Kind)
		}
		seen[p.Name] = true
		p.SHA256 = strings.ToLower(p.SHA256) // sha256sum writes lower case; accept either
		if _, err := hexSum(p.SHA256); err != nil {
			return nil, fmt.Errorf("%s: plugin %q: sha256 %q is not 64 hexadecimal digits", filepath.Join(dir, "catalog.json"), p.Name, p.SHA256)
		}
		if filepath.Base(p.File) != p.File {
			return nil, fmt.Errorf("%s: plugin %q: file must be a name inside the directory", filepath.Join(dir, "catalog.json"), p.Name)
		}
		for _, kv := range p.Env {
			// The same rules as plugins.env: the handshake's variables
			// are not the catalog's to set.
			if err := CheckEnv(kv); err != nil {
				return nil, fmt.Errorf("%s: plugin %q: env entry %q: %v", filepath.Join(dir, "catalog.json"), p.Name, kv, err)
			}
		}
		out = append(out, Entry{Name: p.Name, Kind: p.Kind, Path: filepath.Join(dir, p.File), SHA256: p.SHA256, Args: p.Args, Env: p.Env, Source: "package"})
	}
	return out, nil
}

// fileSHA256 hashes a file.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ReadPackageCatalog reads the catalog.json of a plugin directory, with the
// agent's rules (format version, names, kinds, hashes, files inside the
// directory, env entries), for commands that launch plugins without an
// agent (vigil drift compare). A missing file is no error: nil entries.
func ReadPackageCatalog(dir string) ([]Entry, error) { return readPackageCatalog(dir) }
