// Command vigil is the Vigil agent and its command-line client: one binary,
// with `vigil agent` running the daemon and the other subcommands talking to
// a running agent or checking files.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// command is one subcommand.
type command struct {
	name     string
	synopsis string
	run      func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"agent", "Run the Vigil agent", runAgent},
		{"status", "Show a running agent's status and health", runStatus},
		{"gpu", "Show the GPUs an agent sees (a small nvidia-smi)", runGPU},
		{"host", "Show the host's CPU, memory and file systems", runHost},
		{"query", "Query the local history of a metric", runQuery},
		{"plugins", "List, register, unregister and restart plugins", runPlugins},
		{"models", "Show monitored models: latency, errors, throughput, accuracy", runModels},
		{"alerts", "List firing, pending and recently resolved alerts", runAlerts},
		{"drift", "Show a model's drift (drift MODEL), or compare two CSVs (drift compare)", runDrift},
		{"members", "List the fleet's members (gossip)", runMembers},
		{"fleet", "Ask the whole fleet (fleet stats MODEL)", runFleet},
		{"keyring", "List and rotate the fleet's gossip keys", runKeyring},
		{"keygen", "Print a new gossip encryption key", runKeygen},
		{"llm", "Show the LLM gateway's budgets and spend (llm usage)", runLLM},
		{"config", "Check configuration files (config validate PATH)", runConfig},
		{"version", "Print the version of this binary", runVersion},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "help":
		if len(args) > 1 { // "vigil help CMD" is "vigil CMD -help"
			return run(append(args[1:2:2], "-help"), stdout, stderr)
		}
		usage(stdout)
		return 0
	case "-h", "-help", "--help":
		usage(stdout)
		return 0
	case "-v", "-version", "--version":
		return runVersion(nil, stdout, stderr)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "vigil: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage: vigil <command> [flags]

Vigil is a node-local agent for GPU inference fleets: it watches the
hardware and the models on this host and serves a local API.

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "    %-10s %s\n", c.name, c.synopsis)
	}
	fmt.Fprint(w, `
Run "vigil <command> -help" for a command's flags.
Quick start: "vigil agent -dev" runs an agent on embedded defaults.
`)
}

// newFlags returns a flag set whose -help prints the command's description
// and flags to stdout.
func newFlags(name, usageLine, help string, stdout, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: vigil %s\n\n%s\n", usageLine, strings.TrimSpace(help))
		var hasFlags bool
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprint(fs.Output(), "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses args, allowing flags after positional arguments
// ("vigil query NAME -since 1h"); fs.Args() then holds the positionals. It
// returns done=true with the exit code when the command should stop here
// (-help, or a flag error).
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) (code int, done bool) {
	var positional []string
	for {
		// The flag package prints the usage itself (after the error, if
		// any) before returning; hold that text back so that -help prints
		// it once, to stdout, and a bad flag once, to the flag set's output.
		out := fs.Output()
		var msg bytes.Buffer
		fs.SetOutput(&msg)
		err := fs.Parse(args)
		fs.SetOutput(out)
		if errors.Is(err, flag.ErrHelp) {
			_, _ = stdout.Write(msg.Bytes())
			return 0, true
		}
		if err != nil {
			_, _ = out.Write(msg.Bytes())
			return 2, true
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			positional = append(positional, rest...) // everything after -- is positional
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	_ = fs.Parse(append([]string{"--"}, positional...))
	if err := checkFormat(fs); err != nil {
		fmt.Fprintf(fs.Output(), "vigil %s: %v\n", fs.Name(), err)
		return 2, true
	}
	return 0, false
}

// groupHelp answers a command group called bare (vigil plugins) or asked
// for help (vigil plugins -help): its usage line and help, on stderr with
// exit status 2 for the bare call, a usage error, and on stdout with 0 when
// asked for. done is false when args name a subcommand.
func groupHelp(args []string, usage, help string, stdout, stderr io.Writer) (code int, done bool) {
	if len(args) > 0 && args[0] != "-h" && args[0] != "-help" && args[0] != "--help" {
		return 0, false
	}
	w, code := stderr, 2
	if len(args) > 0 {
		w, code = stdout, 0
	}
	fmt.Fprintf(w, "Usage: %s\n%s\n", usage, help)
	return code, true
}

// checkFormat refuses a -format value that the flag's usage does not list
// (every command writes it as "output `format`: text, csv or json"), so that
// a typo is an error rather than the default output.
func checkFormat(fs *flag.FlagSet) error {
	f := fs.Lookup("format")
	if f == nil {
		return nil
	}
	_, list, ok := strings.Cut(f.Usage, ": ")
	if !ok {
		return nil
	}
	allowed := strings.FieldsFunc(strings.ReplaceAll(list, " or ", ","), func(r rune) bool { return r == ',' || r == ' ' })
	if slices.Contains(allowed, f.Value.String()) {
		return nil
	}
	if f.Value.String() == "table" && slices.Contains(allowed, "text") {
		// alerts' and drift's name for it; they take text in turn.
		return f.Value.Set("text")
	}
	return fmt.Errorf("-format %q: want %s", f.Value.String(), list)
}
