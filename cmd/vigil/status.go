package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigilml/vigil/agent"
	"github.com/vigilml/vigil/agent/client"
)

// clientFlags adds the flags every command that talks to an agent takes.
// The token is read from the environment or a file, never from a flag
// value, so it does not show in `ps`.
func clientFlags(fs *flag.FlagSet) func() (*client.Client, error) {
	return agentFlags(fs, fs.Duration("timeout", 10*time.Second, "how long to wait for the agent"))
}

// agentFlags adds clientFlags' flags but -timeout, for a command whose
// -timeout means more than the wait for the agent; timeout is the wait.
func agentFlags(fs *flag.FlagSet, timeout *time.Duration) func() (*client.Client, error) {
	env, envErr := client.FromEnv()
	addr := fs.String("http-addr", env.Addr, "agent `address`: host:port, https://host:port or unix:///path (env "+client.EnvAddr+")")
	tokenFile := fs.String("token-file", "", "read the API token from this `file` (env "+client.EnvToken+" or "+client.EnvTokenFile+")")
	caFile := fs.String("ca-file", env.CAFile, "CA `file` to verify an https agent (env "+client.EnvCAFile+")")
	clientCert := fs.String("client-cert", env.ClientCert, "client certificate `file` (PEM) for an agent that requires one, with -client-key (env "+client.EnvClientCert+")")
	clientKey := fs.String("client-key", env.ClientKey, "private key `file` (PEM) of -client-cert (env "+client.EnvClientKey+")")
	return func() (*client.Client, error) {
		// FromEnv fails only on VIGIL_TOKEN_FILE, which -token-file
		// overrides.
		if envErr != nil && *tokenFile == "" {
			return nil, envErr
		}
		// The client reads 0 as its default and a negative timeout as
		// none at all: neither is what was typed.
		if *timeout <= 0 {
			return nil, fmt.Errorf("-timeout %s: want a positive duration, such as 10s", *timeout)
		}
		cfg := client.Config{Addr: *addr, Token: env.Token, CAFile: *caFile, ClientCert: *clientCert, ClientKey: *clientKey, Timeout: *timeout}
		if *tokenFile != "" {
			b, err := os.ReadFile(*tokenFile)
			if err != nil {
				return nil, fmt.Errorf("token file: %w", err)
			}
			cfg.Token = strings.TrimSpace(string(b))
			if cfg.Token == "" {
				return nil, fmt.Errorf("token file %s is empty", *tokenFile)
			}
		}
		return client.New(cfg)
	}
}

func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("status", "status [flags]", `
Show a running agent's version, node, uptime, data dir, API addresses, the
state of each subsystem, and its health checks. Exits 0 when the agent is
healthy, 1 when it answered but is unhealthy, 2 when it could not be asked.`, stdout, stderr)
	format := fs.String("format", "text", "output `format`: text or json")
	newClient := clientFlags(fs)
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if extraArgs(fs, stderr) {
		return 2
	}
	if *format != "text" && *format != "json" {
		fmt.Fprintf(stderr, "vigil status: unknown -format %q (want text or json)\n", *format)
		return 2
	}
	c, err := newClient()
	if err != nil {
		fmt.Fprintf(stderr, "vigil status: %v\n", err)
		return 2
	}
	ctx := context.Background()
	var st agent.Status
	if _, err := c.Get(ctx, "/v1/status", &st); err != nil {
		fmt.Fprintf(stderr, "vigil status: %v\n", err)
		return 2
	}
	var health struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks,omitempty"`
	}
	code, err := c.Get(ctx, "/v1/health", &health, http.StatusServiceUnavailable)
	if err != nil {
		fmt.Fprintf(stderr, "vigil status: %v\n", err)
		return 2
	}
	healthy := code == http.StatusOK

	if *format == "json" {
		b, _ := json.MarshalIndent(map[string]any{"status": st, "health": health}, "", "  ")
		fmt.Fprintln(stdout, string(b))
	} else {
		printStatus(stdout, st, health.Status, health.Checks)
	}
	if !healthy {
		return 1
	}
	return 0
}

func printStatus(w io.Writer, st agent.Status, health string, failing map[string]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	mode := ""
	if st.DevMode {
		mode = " (dev mode)"
	}
	fmt.Fprintf(tw, "Node:\t%s%s\n", st.NodeName, mode)
	fmt.Fprintf(tw, "Version:\t%s (%s)\n", st.Version.Version, st.Version.Revision)
	fmt.Fprintf(tw, "Uptime:\t%s (since %s)\n", (time.Duration(st.UptimeSeconds) * time.Second).String(), st.StartedAt.Format(time.RFC3339))
	fmt.Fprintf(tw, "Data dir:\t%s\n", st.DataDir)
	fmt.Fprintf(tw, "API:\t%s (%s)\n", strings.Join(cliAddresses(st.API), ", "), apiSecurity(st.API))
	fmt.Fprintf(tw, "Health:\t%s\n", health)
	tw.Flush()
	if len(failing) > 0 {
		names := make([]string, 0, len(failing))
		for n := range failing {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintln(w, "\nFailing checks:")
		for _, n := range names {
			fmt.Fprintf(w, "  %s: %s\n", n, failing[n])
		}
	}
	fmt.Fprintln(w, "\nSubsystems:")
	var table bytes.Buffer
	tw = tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tSTATE\tREASON")
	for _, s := range st.Subsystems {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", s.Name, s.State, s.Reason)
	}
	tw.Flush()
	// A subsystem with no reason would end its line in the padding.
	for line := range strings.Lines(table.String()) {
		fmt.Fprintln(w, strings.TrimRight(line, " \n"))
	}
}

// cliAddresses gives the API's addresses as -http-addr and VIGIL_HTTP_ADDR
// take them: /v1/status names the TCP listener tcp://host:port, which the
// CLI does not take, and would not say that it needs https://.
func cliAddresses(a agent.APIStatus) []string {
	out := make([]string, 0, len(a.Addresses))
	for _, addr := range a.Addresses {
		if hostport, ok := strings.CutPrefix(addr, "tcp://"); ok {
			scheme := "http://"
			if a.TLS {
				scheme = "https://" // TLS is on the TCP listener only
			}
			addr = scheme + hostport
		}
		out = append(out, addr)
	}
	return out
}

// apiSecurity says how the API is protected: TLS or not, and tokens, or
// without tokens whether other hosts can reach it (api.insecure_allow_remote).
func apiSecurity(a agent.APIStatus) string {
	transport := "plain HTTP"
	if a.TLS {
		transport = "TLS"
	}
	if a.Auth {
		return transport + ", bearer tokens"
	}
	for _, addr := range a.Addresses {
		hostport, ok := strings.CutPrefix(addr, "tcp://")
		if !ok {
			continue // a unix socket is local
		}
		host, _, err := net.SplitHostPort(hostport)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return transport + ", NO AUTH, reachable from other hosts"
		}
	}
	return transport + ", no auth: loopback only"
}
