package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/vigilml/vigil/agent/pluginhost"
	"github.com/vigilml/vigil/sdk"
	"github.com/vigilml/vigil/sdk/conformance"
)

func pluginsCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("plugins check", "plugins check PATH [flags]", `
Run the conformance kit (github.com/vigilml/vigil/sdk/conformance) against the
plugin binary at PATH, without an agent: launch it as the agent does (the
handshake, AutoMTLS, its SHA-256 pinned), check Info, Configure and health,
exercise every RPC of its kind with valid and invalid input, and stop it,
checking nothing is left running. Prints PASS, FAIL or SKIP (does not apply)
per check with the reason; exits 1 when a check fails.`, stdout, stderr)
	kind := fs.String("kind", "", "the `kind` the plugin must be: detector, provider or vectorstore (default: whatever it says)")
	format := fs.String("format", "text", "output `format`: text or json")
	configFile := fs.String("config", "", "JSON `file` with a configuration object to send after the empty one (for a plugin that needs settings to work)")
	timeout := fs.Duration("call-timeout", 30*time.Second, "deadline of each call into the plugin")
	var env []string
	fs.Func("env", "an environment variable `KEY=VALUE` for the plugin process, as plugins.env gives it in the agent (repeatable; the plugin inherits no other but PATH, LANG and HOME)", func(kv string) error {
		if err := pluginhost.CheckEnv(kv); err != nil {
			return err
		}
		env = append(env, kv)
		return nil
	})
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "vigil plugins check: want exactly one PATH")
		return 2
	}
	if *format != "text" && *format != "json" {
		fmt.Fprintf(stderr, "vigil plugins check: -format: %q is not text or json\n", *format)
		return 2
	}
	opts := conformance.Options{CallTimeout: *timeout, Env: env}
	switch k := sdk.Kind(*kind); k {
	case "", sdk.KindDetector, sdk.KindProvider, sdk.KindVectorStore:
		opts.Kind = k
	default:
		fmt.Fprintf(stderr, "vigil plugins check: -kind: %q is not detector, provider or vectorstore\n", *kind)
		return 2
	}
	if *configFile != "" {
		b, err := os.ReadFile(*configFile)
		if err != nil {
			fmt.Fprintf(stderr, "vigil plugins check: -config: %v\n", err)
			return 2
		}
		if err := json.Unmarshal(b, &opts.Config); err != nil || opts.Config == nil {
			fmt.Fprintf(stderr, "vigil plugins check: -config: %s must hold a JSON object: %v\n", *configFile, err)
			return 2
		}
	}
	path, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "vigil plugins check: %v\n", err)
		return 2
	}
	if _, err := os.Stat(path); err != nil {
		fmt.Fprintf(stderr, "vigil plugins check: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep := conformance.Check(ctx, path, opts)
	code := 0
	if rep.Failed() {
		code = 1
	}
	if *format == "json" {
		out := struct {
			*conformance.Report
			OK bool `json:"ok"`
		}{rep, code == 0}
		printJSON(stdout, out)
		return code
	}
	fmt.Fprintf(stdout, "%s: %s %s %s\n", rep.Path, orDash(rep.Kind), orDash(rep.Name), orDash(rep.Version))
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	var pass, fail, skip int
	for _, r := range rep.Results {
		switch r.Status {
		case conformance.Pass:
			pass++
		case conformance.Fail:
			fail++
		case conformance.Skip:
			skip++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Status, r.Name, r.Duration.Round(time.Millisecond), r.Reason)
	}
	tw.Flush()
	if fail > 0 && rep.Stderr != "" {
		fmt.Fprintf(stdout, "\nThe plugin's standard error (last lines):\n%s\n", rep.Stderr)
	}
	verdict := "conforms"
	if fail > 0 {
		verdict = "does NOT conform"
	}
	fmt.Fprintf(stdout, "\n%d passed, %d failed, %d did not apply: the plugin %s to contract v%d\n", pass, fail, skip, verdict, sdk.ContractVersion)
	return code
}
