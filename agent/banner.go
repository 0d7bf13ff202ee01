package agent

import (
	"fmt"
	"strings"
)

// printBanner tells the person who started the agent, in one block, where
// everything is and what is running.
func (a *Agent) printBanner() {
	if a.opts.Banner == nil {
		return
	}
	st := a.Status()
	a.mu.Lock()
	cfg := a.cfg
	a.mu.Unlock()

	var b strings.Builder
	mode := ""
	if st.DevMode {
		mode = " in dev mode"
	}
	fmt.Fprintf(&b, "==> Vigil agent (version %s) running%s\n\n", st.Version.Version, mode)
	row := func(k, v string) { fmt.Fprintf(&b, "%16s: %s\n", k, v) }
	row("Node name", st.NodeName)
	row("Data dir", st.DataDir)
	scheme := "http"
	if st.API.TLS {
		scheme = "https"
	}
	auth := "no tokens, loopback only"
	if st.API.Auth {
		auth = fmt.Sprintf("%d bearer token(s) required", len(cfg.API.Tokens))
	} else if cfg.API.InsecureAllowRemote {
		auth = "NO AUTH (api.insecure_allow_remote)"
	}
	for _, addr := range a.api.Addrs() {
		if addr.Network() == "unix" {
			row("API (unix)", addr.String())
			continue
		}
		row("API", fmt.Sprintf("%s://%s  (%s)", scheme, addr.String(), auth))
		row("Metrics", fmt.Sprintf("%s://%s/metrics", scheme, addr.String()))
	}
	if len(st.ConfigFiles) > 0 {
		row("Config", strings.Join(st.ConfigFiles, ", "))
	} else {
		row("Config", "embedded defaults")
	}
	row("Log", fmt.Sprintf("level %s, format %s", cfg.LogLevel, cfg.LogFormat))
	b.WriteString("\n      Subsystems:\n")
	for _, s := range st.Subsystems {
		line := fmt.Sprintf("%18s  %s", s.Name, s.State)
		if s.Reason != "" {
			line += ": " + s.Reason
		}
		b.WriteString(line + "\n")
	}
	b.WriteString("\n==> Logs follow; stop with Ctrl-C (SIGINT) or SIGTERM, reload with SIGHUP.\n")
	fmt.Fprint(a.opts.Banner, b.String())
}
