package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigilml/vigil/agent/pluginhost"
)

func runPlugins(args []string, stdout, stderr io.Writer) int {
	const help = `
Manage the plugins of a running agent.

Subcommands:
  list                      every plugin: kind, version, state, PID, restarts
  register PATH [-name N]   trust the binary at PATH as it is now (its SHA-256
                            is pinned; PATH must lie in a plugin directory)
  unregister NAME           forget a plugin registered by register
  restart NAME              restart a plugin now and reset its crash budget
  check PATH [-kind K]      run the conformance kit against a plugin binary
                            (no agent needed); exit 1 when a check fails`
	if code, done := groupHelp(args, "vigil plugins <list|register|unregister|restart|check> [flags]", help, stdout, stderr); done {
		return code
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "list":
		return pluginsList(args, stdout, stderr)
	case "register":
		return pluginsRegister(args, stdout, stderr)
	case "unregister":
		return pluginsByName("unregister", http.MethodDelete, "", args, stdout, stderr)
	case "restart":
		return pluginsByName("restart", http.MethodPost, "/restart", args, stdout, stderr)
	case "check":
		return pluginsCheck(args, stdout, stderr)
	}
	fmt.Fprintf(stderr, "vigil plugins: unknown subcommand %q (want list, register, unregister, restart or check)\n", sub)
	return 2
}

func pluginsList(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("plugins list", "plugins list [flags]", `
List the plugins a running agent knows: trusted ones (from the package
catalog, the agent's own catalog or, in dev mode, the dev directory) and
binaries found in a plugin directory but not trusted.`, stdout, stderr)
	format := fs.String("format", "text", "output `format`: text or json")
	newClient := clientFlags(fs)
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if extraArgs(fs, stderr) {
		return 2
	}
	c, err := newClient()
	if err != nil {
		fmt.Fprintf(stderr, "vigil plugins list: %v\n", err)
		return 2
	}
	var out struct {
		Plugins []pluginhost.Status `json:"plugins"`
	}
	if _, err := c.Get(context.Background(), "/v1/plugins", &out); err != nil {
		fmt.Fprintf(stderr, "vigil plugins list: %v\n", err)
		return 2
	}
	if *format == "json" {
		return printJSON(stdout, out)
	}
	if len(out.Plugins) == 0 {
		fmt.Fprintln(stdout, "No plugins installed.")
		return 0
	}
	writePluginTable(stdout, out.Plugins)
	return 0
}

// writePluginTable prints one row per plugin. A last error may hold line
// breaks (a plugin's own messages come through it): they are folded so
// that each plugin stays one row.
func writePluginTable(stdout io.Writer, plugins []pluginhost.Status) {
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tVERSION\tSTATE\tPID\tUPTIME\tRESTARTS\tSOURCE\tCAPABILITIES\tLAST ERROR")
	for _, p := range plugins {
		pid, up := "-", "-"
		if p.PID > 0 {
			pid = fmt.Sprint(p.PID)
		}
		if !p.StartedAt.IsZero() {
			up = time.Since(p.StartedAt).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", p.Name, orDash(p.Kind), orDash(p.Version), p.State, pid, up, p.Restarts, orDash(p.Source),
			orDash(strings.Join(p.Capabilities, ",")), orDash(strings.Join(strings.Fields(p.LastError), " ")))
	}
	tw.Flush()
}

func pluginsRegister(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("plugins register", "plugins register PATH [flags]", `
Trust the plugin binary at PATH as it is now: the agent checks that PATH lies
in one of its plugin directories, completes the plugin handshake, records the
binary's SHA-256 in its catalog and starts it (at once with plugins.start:
boot, on first use with lazy). A later change to the binary makes the agent
refuse it until it is registered again.`, stdout, stderr)
	name := fs.String("name", "", "register under this `name` instead of the plugin's own")
	newClient := clientFlags(fs)
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "vigil plugins register: want exactly one PATH")
		return 2
	}
	path, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "vigil plugins register: %v\n", err)
		return 2
	}
	c, err := newClient()
	if err != nil {
		fmt.Fprintf(stderr, "vigil plugins register: %v\n", err)
		return 2
	}
	var e pluginhost.Entry
	in := map[string]string{"path": path, "name": *name}
	if _, err := c.Do(context.Background(), http.MethodPost, "/v1/plugins/register", in, &e); err != nil {
		fmt.Fprintf(stderr, "vigil plugins register: %v\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "Registered %s (%s %s), sha256 %s\n", e.Name, e.Kind, orDash(e.Version), e.SHA256)
	return 0
}

func pluginsByName(sub, method, suffix string, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("plugins "+sub, "plugins "+sub+" NAME [flags]", map[string]string{
		"unregister": "Forget a plugin registered with `vigil plugins register` and stop it.",
		"restart":    "Restart a plugin now and reset its crash budget; a failed plugin comes back.",
	}[sub], stdout, stderr)
	newClient := clientFlags(fs)
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "vigil plugins %s: want exactly one plugin NAME\n", sub)
		return 2
	}
	c, err := newClient()
	if err != nil {
		fmt.Fprintf(stderr, "vigil plugins %s: %v\n", sub, err)
		return 2
	}
	if _, err := c.Do(context.Background(), method, "/v1/plugins/"+url.PathEscape(fs.Arg(0))+suffix, nil, nil); err != nil {
		fmt.Fprintf(stderr, "vigil plugins %s: %v\n", sub, err)
		return 2
	}
	fmt.Fprintf(stdout, "%s: %s\n", fs.Arg(0), map[string]string{"unregister": "unregistered", "restart": "restarting"}[sub])
	return 0
}
