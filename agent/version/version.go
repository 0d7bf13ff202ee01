// Package version reports what build of Vigil is running. The Makefile sets
// Version, Revision and BuildDate with -ldflags; a plain `go build` falls back
// to the module and VCS information the Go toolchain records.
package version

import (
	"fmt"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set at link time: -X github.com/vigilml/vigil/agent/version.Version=...
var (
	Version   = ""
	Revision  = ""
	BuildDate = ""
)

// Info describes the running build.
type Info struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"`
	BuildDate string `json:"build_date"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

// Get returns the build information, filling gaps from the binary's own
// build info.
func Get() Info {
	info := Info{
		Version:   Version,
		Revision:  Revision,
		BuildDate: BuildDate,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if info.Revision == "" {
					info.Revision = s.Value
				}
			case "vcs.time":
				if info.BuildDate == "" {
					info.BuildDate = s.Value
				}
			}
		}
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	if info.Revision == "" {
		info.Revision = "unknown"
	}
	if info.BuildDate == "" {
		info.BuildDate = "unknown"
	}
	return info
}

// String is the one-line form `vigil version` prints first.
func (i Info) String() string {
	rev := i.Revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return fmt.Sprintf("vigil %s (revision %s, built %s, %s, %s)", i.Version, rev, i.BuildDate, i.GoVersion, i.Platform)
}

// semverRE is what a plugin's Info.version must look like (the
// conformance kit checks the same).
var semverRE = regexp.MustCompile(`^\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]+)?$`)

// Plugin is the build's version as Vigil's own plugins report it in
// Info.version: a semantic version (git describe's v0.2.0-3-gabc123 as
// 0.2.0-3-gabc123, a Go pseudo-version likewise), or 0.0.0-dev for a build
// that carries none, so that every plugin of one build says the same.
func Plugin() string {
	v := strings.TrimPrefix(Get().Version, "v")
	if !semverRE.MatchString(v) {
		return "0.0.0-dev"
	}
	return v
}
