package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/vigilml/vigil/agent"
	"github.com/vigilml/vigil/agent/config"
	"github.com/vigilml/vigil/agent/logging"
)

func runAgent(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("agent", "agent (-dev | -config PATH) [flags]", `
Run the Vigil agent in the foreground until SIGINT or SIGTERM.

  -dev          runs on embedded defaults: data in ./.vigil-dev, the API on
                127.0.0.1:7070, single node, one log line per request.
  -config PATH  reads a YAML file, or every *.yaml or *.yml file of a
                directory in name order, over the production defaults (with
                -dev, over the dev defaults). See docs/configuration.md.

VIGIL_* environment variables override file settings (VIGIL_LOG_LEVEL,
VIGIL_API_ADDR, ...); the flags below override both. SIGHUP re-reads the
configuration: the log level, API tokens, access log, TLS certificate
and client CA (renewed in place), gossip role, plugin settings, alert
rules and receivers, and most drift and per-model settings change at
once; other changes are logged as needing a restart (the list is in
docs/configuration.md, "Reloading"). A SIGHUP received while the agent
starts becomes a reload once it runs.`, stdout, stderr)
	dev := fs.Bool("dev", false, "run on embedded development defaults")
	cfgPath := fs.String("config", "", "configuration `path`: a YAML file or a directory of *.yaml or *.yml files")
	dataDir := fs.String("data-dir", "", "data `directory` (overrides data_dir)")
	httpAddr := fs.String("http-addr", "", "API listen `address` host:port (overrides api.addr)")
	logLevel := fs.String("log-level", "", "log `level`: debug, info, warn or error (overrides log_level)")
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vigil agent: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if !*dev && *cfgPath == "" {
		fmt.Fprintln(stderr, "vigil agent: no configuration: pass -config /etc/vigil/vigil.yaml, or -dev to run on embedded defaults")
		return 2
	}

	opts := config.Options{
		Path: *cfgPath,
		Dev:  *dev,
		Override: func(c *config.Config) {
			if *dataDir != "" {
				c.DataDir = *dataDir
			}
			if *httpAddr != "" {
				c.API.Addr = *httpAddr
			}
			if *logLevel != "" {
				c.LogLevel = *logLevel
			}
		},
	}
	// SIGHUP is caught from here on: Go's default action would kill an
	// agent that is asked to reload while it loads its configuration, opens
	// its store or boots its plugins (systemctl reload, a configuration
	// management run). One received during start-up waits in hups and is
	// handled as a reload once the agent runs. SIGINT and SIGTERM keep
	// their default action until then, so that they stop a start that
	// hangs.
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	defer signal.Stop(hups)

	cfg, err := config.Load(opts)
	if err != nil {
		fmt.Fprintf(stderr, "vigil agent: configuration is not valid:\n%s\n", indent(err.Error()))
		return 1
	}

	level := new(slog.LevelVar)
	lvl, _ := logging.ParseLevel(cfg.LogLevel) // validated by Load
	level.Set(lvl)
	logger := logging.New(stderr, cfg.LogFormat, level)
	if names := config.UnknownEnv(os.Environ(), cfg.Config); len(names) > 0 {
		logger.Warn("ignoring VIGIL_* environment variables that set nothing (a typo? lists are set in files only)", "names", names)
	}
	for _, w := range cfg.SecretWarnings() {
		logger.Warn("a secret is readable by every user of this host", "where", w)
	}

	aopts := agent.Options{Dev: *dev, Logger: logger, Level: level, Banner: stdout}
	if *dev {
		aopts.DevPluginDir = agent.DevPluginDir()
	}
	a, err := agent.New(cfg, aopts)
	if err != nil {
		fmt.Fprintf(stderr, "vigil agent: %v\n", err)
		return 1
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stops := make(chan os.Signal, 2)
	signal.Notify(stops, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(stops)
	reload := func() {
		next, err := config.Load(opts)
		if err != nil {
			logger.Error("reload failed; keeping the running configuration", "err", err.Error())
			return
		}
		a.Reload(next)
	}
	go func() {
		select {
		case <-hups:
			logger.Info("SIGHUP received during start-up; reloading the configuration now that the agent runs")
			reload()
		default:
		}
		stopping := false
		for {
			select {
			case <-hups:
				reload()
			case sig := <-stops:
				if stopping {
					logger.Warn("second signal received; exiting without draining", "signal", sig.String())
					os.Exit(1)
				}
				stopping = true
				logger.Info("signal received; draining", "signal", sig.String())
				cancel()
			}
		}
	}()

	if err := a.Run(ctx); err != nil {
		logger.Error("agent stopped with errors", "err", err.Error())
		return 1
	}
	return 0
}
