package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/vigilml/vigil/agent/config"
)

func runConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		w := stderr
		if len(args) > 0 {
			w = stdout
		}
		fmt.Fprint(w, `Usage: vigil config validate [-dev] PATH

Subcommands:
    validate   Check a configuration file or directory the way the agent
               would load it: strict keys, types, durations, values, and
               that secret files and variables can be read.
`)
		if len(args) == 0 {
			return 2 // a usage error, as for the other commands: 1 means an invalid configuration
		}
		return 0
	}
	if args[0] != "validate" {
		fmt.Fprintf(stderr, "vigil config: unknown subcommand %q (want validate)\n", args[0])
		return 2
	}
	fs := newFlags("config validate", "config validate [-dev] PATH", `
Check PATH, a YAML file or a directory of *.yaml or *.yml files merged in
name order, the way "vigil agent -config PATH" would load it, environment
overrides (VIGIL_*) included. Prints every problem with its file, line and key, and
exits 1 if there is any.`, stdout, stderr)
	dev := fs.Bool("dev", false, "check on top of the dev-mode defaults, as \"vigil agent -dev -config PATH\" would")
	if code, done := parseFlags(fs, args[1:], stdout); done {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "vigil config validate: give exactly one PATH (a file or a directory)")
		return 2
	}
	l, err := config.Load(config.Options{Path: fs.Arg(0), Dev: *dev})
	if err == nil {
		err = l.CheckFiles(nil)
	}
	if err != nil {
		fmt.Fprintf(stderr, "Configuration is not valid:\n%s\n", indent(err.Error()))
		return 1
	}
	if names := config.UnknownEnv(os.Environ(), l.Config); len(names) > 0 {
		fmt.Fprintf(stderr, "Warning: these VIGIL_* environment variables set nothing and are ignored (a typo? lists are set in files only): %s\n", strings.Join(names, ", "))
	}
	for _, w := range l.SecretWarnings() {
		fmt.Fprintf(stderr, "Warning: %s\n", w)
	}
	fmt.Fprintf(stdout, "Configuration is valid (%s).\n", strings.Join(l.Files, ", "))
	return 0
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
