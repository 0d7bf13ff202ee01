package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/vigilml/vigil/agent/version"
)

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", "version [-format text|json]", "Print the version, revision, build date and Go version of this binary.", stdout, stderr)
	format := fs.String("format", "text", "output `format`: text or json")
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if extraArgs(fs, stderr) {
		return 2
	}
	info := version.Get()
	switch *format {
	case "json":
		b, _ := json.MarshalIndent(info, "", "  ")
		fmt.Fprintln(stdout, string(b))
	case "text":
		fmt.Fprintln(stdout, info.String())
	default:
		fmt.Fprintf(stderr, "vigil version: unknown -format %q (want text or json)\n", *format)
		return 2
	}
	return 0
}
