// Package agent wires Vigil's subsystems into the running daemon: it owns the
// data directory lock, the metrics registry and the local API, starts the
// subsystems, reports their state on /v1/status and /v1/health, applies
// SIGHUP reloads, and shuts everything down within the configured time.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigilml/vigil/agent/alert"
	"github.com/vigilml/vigil/agent/api"
	"github.com/vigilml/vigil/agent/config"
	"github.com/vigilml/vigil/agent/datadir"
	"github.com/vigilml/vigil/agent/drift"
	"github.com/vigilml/vigil/agent/fleet"
	"github.com/vigilml/vigil/agent/forward"
	"github.com/vigilml/vigil/agent/gateway"
	"github.com/vigilml/vigil/agent/logging"
	"github.com/vigilml/vigil/agent/observe"
	"github.com/vigilml/vigil/agent/pluginhost"
	"github.com/vigilml/vigil/agent/store"
	"github.com/vigilml/vigil/agent/telemetry"
	"github.com/vigilml/vigil/agent/version"
)

// State is what a subsystem reports about itself.
type State string

// Subsystem states.
const (
	// StateRunning: working as configured.
	StateRunning State = "running"
	// StateDisabled: turned off in the configuration.
	StateDisabled State = "disabled"
	// StateUnavailable: enabled, but what it needs is missing on this host
	// (no GPU driver, say). The agent runs on without it.
	StateUnavailable State = "unavailable"
	// StateDegraded: running, but something is wrong (stale data, say).
	StateDegraded State = "degraded"
	// StateFailed: it stopped working.
	StateFailed State = "failed"
)

// SubsystemStatus is one line of /v1/status's subsystems list.
type SubsystemStatus struct {
	Name   string `json:"name"`
	State  State  `json:"state"`
	Reason string `json:"reason,omitempty"`
}

// Options are what the command line hands the agent besides configuration.
type Options struct {
	// Dev marks the agent as started with -dev.
	Dev bool
	// Logger and Level are the agent's logger and its run-time level.
	Logger *slog.Logger
	Level  *slog.LevelVar
	// Banner receives the start-up banner; nil prints none.
	Banner io.Writer
	// DevPluginDir, when set, is trusted as the build's own plugin
	// directory (dev mode).
	DevPluginDir string
}

// Agent is a running Vigil agent.
type Agent struct {
	opts    Options
	logger  *slog.Logger
	dir     *datadir.Dir
	reg     *prometheus.Registry
	api     *api.Server
	started time.Time

	store     *store.Store
	sink      sinkState
	telemetry *telemetry.Telemetry
	forwarder *forward.Forwarder
	plugins   *pluginhost.Host
	observe   *observe.Service
	drift     *drift.Engine
	fleet     *fleet.Fleet
	gateway   *gateway.Gateway
	alerts    *alert.Manager
	alertKV   *store.KV // the alerts' state across restarts
	// corrupt reports the copies of the agent's files moved aside as
	// corrupt; each opener adds its file.
	corrupt corruptFiles
	// storeRefusals logs observations and labels the store refused.
	storeRefusals refusalLog
	stopBg        context.CancelFunc
	bg            sync.WaitGroup

	mu     sync.Mutex
	cfg    *config.Loaded
	status map[string]func() SubsystemStatus
	checks map[string]func(context.Context) error
}

// New prepares an agent: it locks the data directory and opens the API
// listeners, so that a conflict fails here, before anything runs.
func New(cfg *config.Loaded, opts Options) (*Agent, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Level == nil {
		opts.Level = new(slog.LevelVar)
	}
	a := &Agent{
		opts:    opts,
		logger:  opts.Logger,
		cfg:     cfg,
		started: time.Now(),
		status:  map[string]func() SubsystemStatus{},
		checks:  map[string]func(context.Context) error{},
	}
	dir, err := datadir.Open(cfg.DataDir, a.logger)
	if err != nil {
		return nil, err
	}
	a.dir = dir

	a.reg = prometheus.NewRegistry()
	info := version.Get()
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "vigil_build_info",
		Help: "Always 1; the labels say which build of the Vigil agent is running.",
	}, []string{"version", "revision", "goversion", "build_date"})
	buildInfo.WithLabelValues(info.Version, info.Revision, info.GoVersion, info.BuildDate).Set(1)
	a.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo,
		&a.corrupt,
	)

	a.api = api.New(cfg.API, a.logger.With("subsystem", "api"), a.reg)
	a.routes()
	if err := a.openStore(); err != nil {
		dir.Close()
		return nil, err
	}
	fail := func(err error) (*Agent, error) {
		if a.gateway != nil {
			a.gateway.Close()
		}
		if a.plugins != nil {
			a.plugins.Close()
		}
		a.closeDrift()
		a.closeAlerts()
		if a.observe != nil {
			a.observe.Close()
		}
		if a.fleet != nil {
			a.fleet.Shutdown()
		}
		a.store.Close()
		dir.Close()
		return nil, err
	}
	if err := a.startTelemetry(); err != nil {
		return fail(err)
	}
	if err := a.openForwarder(); err != nil {
		return fail(err)
	}
	if err := a.openPlugins(); err != nil {
		return fail(err)
	}
	if err := a.openObserve(); err != nil {
		return fail(err)
	}
	if err := a.openDrift(); err != nil {
		return fail(err)
	}
	if err := a.openFleet(); err != nil {
		return fail(err)
	}
	if err := a.openGateway(); err != nil {
		return fail(err)
	}
	if err := a.openAlerts(); err != nil {
		return fail(err)
	}
	if err := a.api.Listen(); err != nil {
		return fail(err)
	}
	a.setStatus("api", func() SubsystemStatus { return SubsystemStatus{Name: "api", State: StateRunning} })
	a.addCheck("data_dir", a.checkDataDir)
	return a, nil
}

func (a *Agent) routes() {
	a.api.HandleFunc("GET /v1/health", api.Read, a.handleHealth)
	a.api.HandleFunc("GET /v1/status", api.Read, a.handleStatus)
	a.api.HandleFunc("GET /v1/gpus", api.Read, a.handleGPUs)
	a.api.HandleFunc("GET /v1/host", api.Read, a.handleHost)
	a.api.HandleFunc("GET /v1/query", api.Read, a.handleQuery)
	a.api.Handle("GET /metrics", api.Read, promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      a.reg,
	}))
	a.pprofRoutes()
}

// setStatus registers a function that reports a subsystem's state.
func (a *Agent) setStatus(name string, fn func() SubsystemStatus) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.status[name] = fn
}

// addCheck registers a health check; an error fails /v1/health with 503.
func (a *Agent) addCheck(name string, fn func(context.Context) error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.checks[name] = fn
}

// checkDataDir fails when the data directory is gone or no longer writable,
// since nothing durable can then be acknowledged.
func (a *Agent) checkDataDir(context.Context) error {
	if err := syscall.Access(a.dir.Path, 0x2 /* W_OK */); err != nil {
		return fmt.Errorf("data dir %s is not writable: %w", a.dir.Path, err)
	}
	return nil
}

// Subsystems returns every subsystem's state, sorted by name.
func (a *Agent) Subsystems() []SubsystemStatus {
	a.mu.Lock()
	fns := make([]func() SubsystemStatus, 0, len(a.status))
	for _, fn := range a.status {
		fns = append(fns, fn)
	}
	a.mu.Unlock()
	out := make([]SubsystemStatus, 0, len(fns))
	for _, fn := range fns {
		out = append(out, fn())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Health runs every check and returns the failing ones by name.
func (a *Agent) Health(ctx context.Context) map[string]string {
	failing := map[string]string{}
	for name, err := range a.health(ctx) {
		failing[name] = err.Error()
	}
	return failing
}

// health runs every check and returns the errors of the failing ones.
func (a *Agent) health(ctx context.Context) map[string]error {
	a.mu.Lock()
	checks := make(map[string]func(context.Context) error, len(a.checks))
	for k, v := range a.checks {
		checks[k] = v
	}
	a.mu.Unlock()
	failing := map[string]error{}
	for name, check := range checks {
		if err := check(ctx); err != nil {
			failing[name] = err
		}
	}
	return failing
}

func (a *Agent) handleHealth(w http.ResponseWriter, r *http.Request) {
	failing := a.Health(r.Context())
	if len(failing) == 0 {
		api.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return
	}
	api.WriteJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "failing", "checks": failing})
}

// Status is the body of GET /v1/status.
type Status struct {
	Version       version.Info      `json:"version"`
	NodeName      string            `json:"node_name"`
	DevMode       bool              `json:"dev_mode"`
	StartedAt     time.Time         `json:"started_at"`
	UptimeSeconds float64           `json:"uptime_seconds"`
	DataDir       string            `json:"data_dir"`
	ConfigFiles   []string          `json:"config_files"`
	API           APIStatus         `json:"api"`
	Subsystems    []SubsystemStatus `json:"subsystems"`
}

// APIStatus describes how the API is served.
type APIStatus struct {
	Addresses []string `json:"addresses"`
	TLS       bool     `json:"tls"`
	Auth      bool     `json:"auth"`
}

// Status returns the agent's status.
func (a *Agent) Status() Status {
	a.mu.Lock()
	cfg := a.cfg
	a.mu.Unlock()
	st := Status{
		Version:       version.Get(),
		NodeName:      cfg.NodeName,
		DevMode:       a.opts.Dev,
		StartedAt:     a.started.UTC(),
		UptimeSeconds: time.Since(a.started).Seconds(),
		DataDir:       a.dir.Path,
		ConfigFiles:   append([]string{}, cfg.Files...),
		API:           APIStatus{TLS: cfg.API.TLS.Enabled(), Auth: a.api.AuthEnabled()},
		Subsystems:    a.Subsystems(),
	}
	for _, addr := range a.api.Addrs() {
		st.API.Addresses = append(st.API.Addresses, addr.Network()+"://"+addr.String())
	}
	return st
}

func (a *Agent) handleStatus(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, a.Status())
}

// Run serves until ctx is cancelled, then shuts down within the configured
// shutdown_timeout.
func (a *Agent) Run(ctx context.Context) error {
	bgCtx, stop := context.WithCancel(context.Background())
	a.stopBg = stop
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		a.telemetry.Run(bgCtx)
	}()
	if a.forwarder != nil {
		a.bg.Add(1)
		go func() {
			defer a.bg.Done()
			a.forwarder.Run(bgCtx)
		}()
	}
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		a.runObserve(bgCtx)
	}()
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		a.runDrift(bgCtx)
	}()
	a.plugins.Start()
	a.startFleet(bgCtx)
	a.startAlerts(bgCtx)
	a.api.Serve()
	a.waitFirstTicks(3 * time.Second)
	sd := notifySystemd(a.logger, a.watchdogHealth) // READY=1, then watchdog pings
	a.printBanner()
	a.logger.Info("agent started", "node", a.cfg.NodeName, "data_dir", a.dir.Path, "version", version.Get().Version)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-a.api.Err():
		a.logger.Error("API server failed; shutting down", "err", runErr)
	}
	sd.Stopping() // STOPPING=1
	return errors.Join(runErr, a.shutdown())
}

func (a *Agent) shutdown() error {
	a.mu.Lock()
	timeout := a.cfg.ShutdownTimeout
	a.mu.Unlock()
	a.logger.Info("shutting down", "timeout", timeout.String())
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	var errs []error
	// The API drains first (in-flight writes finish), then the collectors
	// stop, then the store closes with nothing left writing to it.
	if err := a.api.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("API did not drain within %s: %w", timeout, err))
	}
	// Leave the fleet gracefully, so others see "left", not "failed".
	if err := a.leaveFleet(ctx); err != nil {
		errs = append(errs, err)
	}
	if a.stopBg != nil {
		a.stopBg()
	}
	done := make(chan struct{})
	go func() { a.bg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("collectors did not stop within %s", timeout))
	}
	if a.gateway != nil {
		if err := a.gateway.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close gateway cache: %w", err))
		}
	}
	if err := a.plugins.Close(); err != nil {
		errs = append(errs, fmt.Errorf("stop plugins: %w", err))
	}
	if err := a.closeDrift(); err != nil {
		errs = append(errs, fmt.Errorf("close drift: %w", err))
	}
	if err := a.closeAlerts(); err != nil {
		errs = append(errs, fmt.Errorf("close alert state: %w", err))
	}
	if err := a.observe.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close observations: %w", err))
	}
	if err := a.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close store: %w", err))
	}
	if err := a.dir.Close(); err != nil {
		errs = append(errs, fmt.Errorf("release data dir: %w", err))
	}
	if len(errs) == 0 {
		a.logger.Info("agent stopped", "took", time.Since(start).Round(time.Millisecond).String())
	}
	return errors.Join(errs...)
}

// reloadable lists the keys a SIGHUP applies; any other change is logged as
// needing a restart.
var reloadable = map[string]bool{
	"log_level":      true,
	"api.tokens":     true,
	"api.access_log": true,
	"gossip.role":    true,
}

// Reload applies a new configuration: what can change at run time changes,
// and every other difference is logged as needing a restart.
func (a *Agent) Reload(next *config.Loaded) {
	a.mu.Lock()
	prev := a.cfg
	a.mu.Unlock()
	if err := config.CheckReload(prev.Config, next.Config); err != nil {
		a.logger.Error("reload failed; keeping the running configuration", "err", err.Error())
		return
	}

	changed := config.Diff(prev.Config, next.Config)
	// The API's TLS files first: a new path is applied when its file
	// loads (see reloadTLS), and is then no change needing a restart.
	tlsApplied := a.reloadTLS(prev.API.TLS, next.API.TLS)
	alertsApplied := a.reloadAlerts(changed, next.Alerts)
	driftApplied := a.reloadDrift(changed, next.Config)
	applied := []string{} // logged as [], not null, when nothing changed
	var ignored []string
	for _, key := range changed {
		if reloadable[key] || tlsApplied[key] || strings.HasPrefix(key, "plugins.") || (alertsApplied && strings.HasPrefix(key, "alerts.")) ||
			(driftApplied && driftReloadable(key)) {
			applied = append(applied, key)
		} else {
			ignored = append(ignored, key)
		}
	}
	if lvl, err := logging.ParseLevel(next.LogLevel); err == nil {
		a.opts.Level.Set(lvl)
	}
	a.api.Reload(next.API)
	a.plugins.SetWhere(next.Where)
	a.plugins.Reload(next.Plugins)
	a.reloadFleet(*next)

	// Keep the settings that were not applied, so /v1/status keeps telling
	// the truth about what runs.
	kept := *prev.Config
	kept.LogLevel = next.LogLevel
	kept.API.Tokens = next.API.Tokens
	kept.API.AccessLog = next.API.AccessLog
	if files := a.api.TLSFiles(); files.Enabled() { // TLS is served: its files as reloaded
		kept.API.TLS.CertFile, kept.API.TLS.KeyFile, kept.API.TLS.ClientCAFile = files.CertFile, files.KeyFile, files.ClientCAFile
	}
	kept.Plugins = next.Plugins
	kept.Gossip.Role = next.Gossip.Role
	if alertsApplied {
		kept.Alerts = next.Alerts
	}
	if driftApplied {
		keepShape := kept.Drift
		kept.Drift, kept.Models = next.Drift, next.Models
		kept.Drift.Enabled, kept.Drift.Path = keepShape.Enabled, keepShape.Path
		kept.Drift.CurrentWindow, kept.Drift.CurrentWindowTime = keepShape.CurrentWindow, keepShape.CurrentWindowTime
	}
	a.mu.Lock()
	a.cfg = &config.Loaded{Config: &kept, Files: next.Files}
	a.mu.Unlock()

	a.logger.Info("configuration reloaded", "applied", applied)
	if len(ignored) > 0 {
		a.logger.Warn("some configuration changes need a restart to take effect; the agent keeps the running values", "keys", ignored)
	}
}

// reloadTLS reads the API's TLS certificate and client CA again, from the
// paths of the new configuration: a renewed certificate written over the
// running files or to new ones, a rotated CA. It returns the api.tls path
// keys it applied. A file that does not load leaves the running
// certificate (or CA) and its path in place. Turning TLS or client
// certificates on or off still takes a restart.
func (a *Agent) reloadTLS(prev, next config.TLS) map[string]bool {
	applied := map[string]bool{}
	if changed, err := a.api.ReloadCertificate(next); err != nil {
		a.logger.Error("reload: cannot read the API TLS certificate; still serving the running one", "cert_file", next.CertFile, "key_file", next.KeyFile, "err", err.Error())
	} else {
		if files := a.api.TLSFiles(); prev.Enabled() && next.Enabled() {
			applied["api.tls.cert_file"] = files.CertFile == next.CertFile
			applied["api.tls.key_file"] = files.KeyFile == next.KeyFile
		}
		if changed {
			a.logger.Info("API TLS certificate reloaded", "cert_file", next.CertFile)
		}
	}
	if changed, err := a.api.ReloadClientCA(next); err != nil {
		a.logger.Error("reload: cannot read the API's client CA; still verifying clients against the running one", "client_ca_file", next.ClientCAFile, "err", err.Error())
	} else {
		if prev.ClientCAFile != "" && next.ClientCAFile != "" {
			applied["api.tls.client_ca_file"] = a.api.TLSFiles().ClientCAFile == next.ClientCAFile
		}
		if changed {
			a.logger.Info("API TLS client CA reloaded", "client_ca_file", next.ClientCAFile)
		}
	}
	return applied
}

// Registry is the agent's metrics registry, for subsystems to register with.
func (a *Agent) Registry() *prometheus.Registry { return a.reg }

// API is the agent's API server, for subsystems to register routes with.
func (a *Agent) API() *api.Server { return a.api }
