// Package pluginhost launches, verifies and supervises Vigil's plugins:
// separate processes speaking the contract of github.com/vigilml/vigil/sdk
// over gRPC through hashicorp/go-plugin.
//
// Trust: a plugin runs only if its binary lies in one of plugins.dirs (or,
// in dev mode, the build's own bin/plugins directory) and its SHA-256
// matches the catalog: the agent's own catalog (vigil plugins register
// PATH), a catalog.json shipped beside packaged plugins, or, in dev mode,
// the hash of the build's plugins at start. go-plugin checks the hash again
// at every launch and the connection always uses AutoMTLS. Binaries found
// in the directories but never registered are listed as untrusted and never
// started.
//
// Supervision: each plugin has one supervisor goroutine that owns its
// process. It starts the plugin (at boot or on first use), pings it, and
// after a crash, hang or failed health check restarts it with exponential
// backoff and jitter. More than plugins.crash_budget crashes within
// plugins.crash_window mark it failed until restarted by hand; a plugin
// that rejects its configuration is failed at once (a restart would hand
// it the same configuration) until a reload or a restart. Plugins run
// in their own process group, which is killed whole when they stop, and
// the kernel kills them if the agent dies. Every call has a deadline; a call
// to a plugin that is down fails at once with an sdk.Error of class
// unavailable.
package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// Options are what the agent hands the host besides its configuration.
type Options struct {
	// CatalogPath is the bbolt file of the agent's own catalog.
	CatalogPath string
	// DevDir, when set, is trusted as is: every plugin binary in it is
	// started with the hash it has now (dev mode: the build's bin/plugins).
	DevDir     string
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Host runs the plugins.
type Host struct {
	// cfg is the configuration; Reload swaps it while plugins run, so it
	// is read through config().
	cfg    atomic.Pointer[Config]
	devDir string
	logger *slog.Logger
	cat    *catalog
	m      *metrics

	// catalogPath is the agent's own catalog file, named in errors about
	// a registered entry.
	catalogPath string

	// where says where a key of the agent's configuration was set
	// ("FILE:LINE"), for errors about a plugin's settings; see SetWhere.
	where atomic.Pointer[func(key string) string]

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	plugins   map[string]*managed
	instances []Instance
}

// SetWhere tells the host where the keys of the agent's configuration
// are set (the file and line of plugins.config.NAME.FIELD or
// gateway.providers[i]), so that a setting a plugin rejects is named with
// its place. fn returns "" for a key it does not know. Call it again with
// the new configuration's before Reload.
func (h *Host) SetWhere(fn func(key string) string) { h.where.Store(&fn) }

// whereSet is the prefix of an error about key: where it is set
// ("FILE:LINE: "), or "" when that is not known.
func (h *Host) whereSet(key string) string {
	if fn := h.where.Load(); fn != nil {
		if w := (*fn)(key); w != "" {
			return w + ": "
		}
	}
	return ""
}

// config is the configuration now in force.
func (h *Host) config() *Config { return h.cfg.Load() }

// New opens the catalog and finds the plugins; Start runs them.
func New(cfg Config, opts Options) (*Host, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	cat, err := openCatalog(opts.CatalogPath, opts.Logger)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Host{
		devDir:  opts.DevDir,
		logger:  opts.Logger,
		cat:     cat,
		m:       newMetrics(opts.Registerer),
		ctx:     ctx,
		cancel:  cancel,
		plugins: map[string]*managed{},
	}
	h.catalogPath = opts.CatalogPath
	h.cfg.Store(&cfg)
	if err := h.discover(); err != nil {
		cat.close()
		cancel()
		return nil, err
	}
	return h, nil
}

// Start launches the plugin instances (gateway.providers entries) in
// either mode, and every other trusted plugin too when plugins.start is
// boot; with lazy start those start on their first use.
//
// Instances start with the agent even when lazy: each is configured to
// serve, so its first request should not wait for a process to start
// (about a second for a Python plugin), and a configuration it rejects
// should show when the agent starts, not at that request.
//
// A plugin that runs as instances (a provider behind gateway.providers
// entries) is not started itself: its instances are its processes, and
// nothing calls the plugin under its own name, so a process of its own
// would sit idle. A call by its name still starts it.
func (h *Host) Start() {
	boot := h.config().Start == "boot"
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.plugins {
		if m.instanceOf == "" && (!boot || h.hasInstancesLocked(m.entry.Name)) {
			continue
		}
		m.ensureRunning()
	}
}

// hasInstancesLocked reports whether instances of the named plugin are
// declared. h.mu is held.
func (h *Host) hasInstancesLocked(plugin string) bool {
	for _, in := range h.instances {
		if in.Plugin == plugin {
			return true
		}
	}
	return false
}

// Close stops every plugin, killing their process groups, and closes the
// catalog.
func (h *Host) Close() error {
	h.cancel()
	h.wg.Wait()
	return h.cat.close()
}

// dirs returns the directories plugins may be launched from.
func (h *Host) dirs() []string {
	dirs := append([]string(nil), h.config().Dirs...)
	if h.devDir != "" {
		dirs = append(dirs, h.devDir)
	}
	return dirs
}

// inDirs reports whether path lies directly in one of the plugin
// directories, after resolving symbolic links.
func (h *Host) inDirs(path string) bool {
	_, ok := h.inDir(path)
	return ok
}

// inDir returns the path of the file path resolves to, in the plugin
// directory holding it as that directory is configured, and whether there
// is one.
func (h *Host) inDir(path string) (string, bool) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", false
	}
	for _, d := range h.dirs() {
		rd, err := filepath.EvalSymlinks(d)
		if err != nil {
			continue
		}
		if filepath.Dir(real) == rd {
			return filepath.Join(d, filepath.Base(real)), true
		}
	}
	return "", false
}

// discover builds the plugin list from the catalog, the package catalogs
// and the dev directory, and lists unregistered binaries as untrusted.
func (h *Host) discover() error {
	entries, err := h.cat.list()
	if err != nil {
		return err
	}
	byName := map[string]Entry{}
	badCatalog := map[string]error{} // dir -> why its catalog.json was ignored
	for _, d := range h.config().Dirs {
		pkg, err := readPackageCatalog(d)
		if err != nil {
			h.logger.Error("ignoring a plugin directory's catalog.json", "dir", d, "err", err)
			badCatalog[d] = err
			continue
		}
		for _, e := range pkg {
			byName[e.Name] = e
		}
	}
	// A package's binary whose name the operator registered for another
	// file is not trusted; saying only that it is unregistered would send
	// the operator to register it, which would replace the other.
	shadowed := map[string]Entry{} // package binary's path -> the registered entry
	for _, e := range entries {
		if pe, ok := byName[e.Name]; ok && pe.Path != e.Path {
			shadowed[pe.Path] = e
		}
		byName[e.Name] = e // what the operator registered wins over the package
	}
	// Dev mode's build fills only the names nothing else trusts. A build
	// whose name is taken (a host with the package installed, say) is
	// listed as untrusted; saying it is unregistered would send the
	// developer to register it, which would replace the other by name.
	devShadowed := map[string]Entry{} // dev binary's path -> the entry that wins
	if h.devDir != "" {
		for _, e := range h.devEntries() {
			if other, ok := byName[e.Name]; !ok {
				byName[e.Name] = e
			} else if other.Path != e.Path {
				devShadowed[e.Path] = other
			}
		}
	}

	known := map[string]bool{}
	plugins := map[string]*managed{}
	for name, e := range byName {
		known[e.Path] = true
		state, reason := StateStopped, ""
		switch sum, err := fileSHA256(e.Path); {
		case err != nil:
			state, reason = StateRefused, fmt.Sprintf("cannot read %s: %v", e.Path, err)
		case !h.inDirs(e.Path):
			state, reason = StateRefused, fmt.Sprintf("%s is outside the plugin directories (%s)", e.Path, strings.Join(h.dirs(), ", "))
		case e.Source != "dev" && othersCanReplace(e.Path) != nil:
			state, reason = StateRefused, othersCanReplace(e.Path).Error()
		case sum != e.SHA256:
			state, reason = StateRefused, changedMessage(e, sum)
		}
		if state == StateRefused {
			h.logger.Warn("plugin refused", "plugin", name, "reason", reason)
		}
		plugins[name] = newManaged(h, e, state, reason)
		plugins[name].fileRefused = state == StateRefused // every check above is of the file
	}
	for _, d := range h.dirs() {
		des, err := os.ReadDir(d)
		if err != nil {
			continue // a missing directory is fine: nothing installed there
		}
		for _, de := range des {
			p := filepath.Join(d, de.Name())
			if known[p] || !isExecutable(de) {
				continue
			}
			name := "untrusted:" + p
			reason := fmt.Sprintf("not registered; run `vigil plugins register %s` to trust it", p)
			if err := badCatalog[d]; err != nil {
				// The likely cause is the package's catalog, not a
				// missing registration.
				reason = fmt.Sprintf("not trusted: the directory's catalog.json is ignored (%v); fix it, or run `vigil plugins register %s`", err, p)
			}
			if w, ok := devShadowed[p]; ok {
				if w.Source == "package" {
					reason = fmt.Sprintf("not used: plugin %q is the package's %s (catalog.json), which wins over dev mode's build; to run this build, leave %s out of plugins.dirs",
						w.Name, w.Path, filepath.Dir(w.Path))
				} else {
					reason = fmt.Sprintf("not used: plugin %q is registered as %s, which wins over dev mode's build; run `vigil plugins unregister %s` and reload the agent to run this build",
						w.Name, w.Path, w.Name)
				}
			}
			if r, ok := shadowed[p]; ok {
				reason = fmt.Sprintf("not trusted: its entry in %s names it %q, and the plugin registered under that name is %s, which wins; run `vigil plugins unregister %s` and reload the agent to trust this one",
					filepath.Join(d, "catalog.json"), r.Name, r.Path, r.Name)
			}
			plugins[name] = newManaged(h, Entry{Name: name, Path: p}, StateUntrusted, reason)
		}
	}
	h.mu.Lock()
	h.plugins = plugins
	h.addInstancesLocked("")
	h.mu.Unlock()
	return nil
}

// changedMessage says that e's binary, whose SHA-256 is now sum, no longer
// matches the hash it is trusted by, and what to do about it.
func changedMessage(e Entry, sum string) string {
	switch e.Source {
	case "package":
		return fmt.Sprintf("%s does not match its entry in %s: SHA-256 is %s, the catalog has %s; reinstall the package, or run `vigil plugins register %s` to trust this file instead",
			e.Path, filepath.Join(filepath.Dir(e.Path), "catalog.json"), short(sum), short(e.SHA256), e.Path)
	case "dev":
		return fmt.Sprintf("%s changed since the agent read the dev plugin directory: SHA-256 is %s, it was %s; reload the agent (SIGHUP) to trust the new build", e.Path, short(sum), short(e.SHA256))
	}
	return fmt.Sprintf("%s changed since it was registered: SHA-256 is %s, the catalog has %s; run `vigil plugins register %s` if the change is intended", e.Path, short(sum), short(e.SHA256), e.Path)
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

// othersCanReplace says why a user other than root and the agent's own
// could change the binary at path (its owner, anyone for a file or a
// directory writable by every user), or nil. go-plugin checks the SHA-256
// by reading the file and then executes it by path: whoever can write
// either could swap the binary in between, so the pin would not hold.
func othersCanReplace(path string) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	st, err := os.Stat(real)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Uid != 0 && int(sys.Uid) != os.Geteuid() {
		return fmt.Errorf("%s is owned by uid %d, neither root nor the agent's user (uid %d), who could replace it between its SHA-256 check and its launch: make root its owner (install -o root -m 0755)", real, sys.Uid, os.Geteuid())
	}
	if st.Mode().Perm()&0o002 != 0 {
		return fmt.Errorf("%s is writable by every user (mode %#o), who could replace it between its SHA-256 check and its launch: chmod o-w it", real, st.Mode().Perm())
	}
	dir := filepath.Dir(real)
	if dst, err := os.Stat(dir); err == nil && dst.Mode().Perm()&0o002 != 0 && dst.Mode()&os.ModeSticky == 0 {
		return fmt.Errorf("%s is in %s, which every user may write (mode %#o, no sticky bit), so anyone could replace it between its SHA-256 check and its launch: chmod o-w the directory", real, dir, dst.Mode().Perm())
	}
	return nil
}

func isExecutable(de os.DirEntry) bool {
	info, err := de.Info()
	return err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0
}

// devEntries trusts every binary in the dev directory as it is now. Their
// kind is learned from the plugins themselves when they first start.
func (h *Host) devEntries() []Entry {
	des, err := os.ReadDir(h.devDir)
	if err != nil {
		return nil
	}
	var out []Entry
	for _, de := range des {
		if !isExecutable(de) {
			continue
		}
		p := filepath.Join(h.devDir, de.Name())
		sum, err := fileSHA256(p)
		if err != nil {
			continue
		}
		info, err := h.probe(p, sum)
		if err == nil && !nameRE.MatchString(info.name) {
			err = fmt.Errorf("plugin name %q is not valid (1-63 of lower-case letters, digits, '.', '_', '-', starting with a letter or digit)", info.name)
		}
		if err != nil {
			h.logger.Warn("dev plugin directory: skipping a binary that is not a working plugin", "path", p, "err", err)
			continue
		}
		out = append(out, Entry{Name: info.name, Kind: info.kind, Path: p, SHA256: sum, Version: info.version, Source: "dev", RegisteredAt: time.Now().UTC()})
	}
	return out
}

type probed struct{ name, kind, version string }

// probe starts a binary once to ask what it is.
func (h *Host) probe(path, sum string) (probed, error) {
	raw, err := hexSum(sum)
	if err != nil {
		return probed{}, err
	}
	proc, err := h.spawn(path, raw, nil, nil, h.logger.With("plugin", filepath.Base(path)))
	if err != nil {
		return probed{}, err
	}
	defer proc.stop(h.logger)
	// Every kind serves the Plugin service, so any kind's client can ask.
	disp, err := proc.rpc.Dispense(string(sdk.KindDetector))
	if err != nil {
		return probed{}, err
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.config().StartTimeout)
	defer cancel()
	info, err := disp.(sdk.Base).Info(ctx)
	if err != nil {
		return probed{}, fmt.Errorf("the plugin's Info call failed: %w", err)
	}
	kindOK := false
	for _, k := range sdk.Kinds {
		kindOK = kindOK || string(k) == info.GetKind()
	}
	if !kindOK {
		return probed{}, fmt.Errorf("plugin says it is of unknown kind %q", info.GetKind())
	}
	if info.GetContractVersion() != sdk.ContractVersion {
		// It would be refused at every start.
		return probed{}, fmt.Errorf("plugin says it speaks contract version %d (Info.contract_version), this agent contract version %d", info.GetContractVersion(), sdk.ContractVersion)
	}
	return probed{name: info.GetName(), kind: info.GetKind(), version: info.GetVersion()}, nil
}

// Register trusts the binary at path as it is now: it must lie in a plugin
// directory and complete the handshake. name overrides the plugin's own.
func (h *Host) Register(ctx context.Context, path, name string) (Entry, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Entry{}, err
	}
	if _, err := os.Stat(abs); err != nil {
		return Entry{}, fmt.Errorf("register %s: %w", abs, err)
	}
	// The catalog keeps the binary's path in the plugin directory, not the
	// path asked for: a symbolic link elsewhere (in /tmp, say) stays under
	// the control of whoever made it, who could point it at another binary
	// between the checksum and a launch.
	inDir, ok := h.inDir(abs)
	if !ok {
		return Entry{}, fmt.Errorf("%s is outside the plugin directories (%s): copy it into one of them, or add its directory to plugins.dirs", abs, strings.Join(h.dirs(), ", "))
	}
	abs = inDir
	if err := othersCanReplace(abs); err != nil {
		return Entry{}, err
	}
	sum, err := fileSHA256(abs)
	if err != nil {
		return Entry{}, err
	}
	info, err := h.probe(abs, sum)
	if err != nil {
		return Entry{}, err
	}
	switch {
	case name != "" && !nameRE.MatchString(name):
		return Entry{}, fmt.Errorf("plugin name %q is not valid (1-63 of lower-case letters, digits, '.', '_', '-', starting with a letter or digit)", name)
	case name == "" && !nameRE.MatchString(info.name):
		return Entry{}, fmt.Errorf("the plugin calls itself %q, which is not a valid plugin name (1-63 of lower-case letters, digits, '.', '_', '-', starting with a letter or digit): register it under another with vigil plugins register -name (the API's \"name\")", info.name)
	case name == "":
		name = info.name
	}
	e := Entry{Name: name, Kind: info.kind, Path: abs, SHA256: sum, Version: info.version, Source: "registered", RegisteredAt: time.Now().UTC()}
	if err := h.cat.put(ctx, e); err != nil {
		return Entry{}, fmt.Errorf("save plugin catalog: %w", err)
	}
	h.mu.Lock()
	old := h.plugins[name]
	delete(h.plugins, "untrusted:"+abs)
	m := newManaged(h, e, StateStopped, "")
	h.plugins[name] = m
	stale := h.addInstancesLocked(name)
	h.mu.Unlock()
	if old != nil {
		old.stopAndWait()
	}
	for _, s := range stale {
		s.stopAndWait()
	}
	h.logger.Info("plugin registered", "plugin", name, "kind", e.Kind, "path", abs, "sha256", sum)
	// With boot start, the plugin starts now, or its instances do (see
	// Start).
	h.Start()
	return e, nil
}

// stopAndWait is used when an entry is replaced: it asks the old
// supervisor to stop by cancelling nothing global; the old process is
// killed by a restart request that finds the plugin gone.
func (m *managed) stopAndWait() {
	m.mu.Lock()
	running := m.running
	m.mu.Unlock()
	if !running {
		return
	}
	// Mark it so the supervisor exits after stopping the process.
	m.mu.Lock()
	m.retired = true
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// ErrNoPlugin matches the error of Unregister and Restart for a name the
// host does not know; their other errors are about a plugin's state.
var ErrNoPlugin = errors.New("no such plugin")

type noPluginError string

func (e noPluginError) Error() string        { return fmt.Sprintf("no plugin %q", string(e)) }
func (e noPluginError) Is(target error) bool { return target == ErrNoPlugin }

// Unregister removes a plugin from the agent's catalog and stops it. A
// plugin trusted by a package catalog or the dev directory comes back as
// such on the next reload.
func (h *Host) Unregister(ctx context.Context, name string) error {
	h.mu.Lock()
	m, ok := h.plugins[name]
	h.mu.Unlock()
	if !ok {
		return noPluginError(name)
	}
	if m.entry.Source != "registered" {
		return fmt.Errorf("plugin %q is trusted by its %s, not by the agent's catalog; remove the binary instead", name, m.entry.Source)
	}
	if err := h.cat.remove(ctx, name); err != nil {
		return fmt.Errorf("save plugin catalog: %w", err)
	}
	h.mu.Lock()
	delete(h.plugins, name)
	if info, err := os.Stat(m.entry.Path); err == nil && info.Mode().IsRegular() && h.inDirs(m.entry.Path) {
		// The binary is still there: list it as untrusted again.
		u := "untrusted:" + m.entry.Path
		h.plugins[u] = newManaged(h, Entry{Name: u, Path: m.entry.Path}, StateUntrusted,
			fmt.Sprintf("not registered; run `vigil plugins register %s` to trust it", m.entry.Path))
	}
	h.mu.Unlock()
	m.stopAndWait()
	// A supervisor still running drops the series when it stops; one that
	// has ended (a refused plugin's) or never ran cannot.
	h.m.up.DeleteLabelValues(name, m.entry.Kind)
	h.logger.Info("plugin unregistered", "plugin", name)
	return nil
}

// Restart restarts a plugin now, resetting its crash budget; a failed
// plugin comes back.
func (h *Host) Restart(name string) error {
	h.mu.Lock()
	m, ok := h.plugins[name]
	h.mu.Unlock()
	if !ok {
		return noPluginError(name)
	}
	m.mu.Lock()
	state, fileRefused := m.state, m.fileRefused
	m.crashes = nil
	m.mu.Unlock()
	if state == StateRefused && fileRefused {
		// Refused for its binary's file, which the operator may have
		// fixed since (a file mode, the trusted binary put back): look at
		// the plugins again, as a reload does, rather than repeat the old
		// reason until a SIGHUP. What the plugin says of itself (its
		// contract, its kind) cannot change without a new binary.
		h.Reload(*h.config())
		h.mu.Lock()
		m, ok = h.plugins[name]
		h.mu.Unlock()
		if !ok {
			return noPluginError(name)
		}
		state = m.stateNow()
	}
	switch state {
	case StateUntrusted, StateRefused:
		return fmt.Errorf("plugin %q is %s: %s", name, state, m.lastErrLocked())
	}
	if m.ensureRunning() {
		// A plugin not started yet (lazy start) starts now; a wake
		// would make its new supervisor restart it at once.
		return nil
	}
	select {
	case m.wake <- struct{}{}:
	default:
	}
	return nil
}

func (m *managed) lastErrLocked() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastErr
}

// Reload applies a new configuration: per-plugin config, timeouts and the
// crash budget apply from the next start; a plugin whose plugins.env
// changed is restarted; the catalog and directories are read again, and
// failed plugins get another chance.
func (h *Host) Reload(cfg Config) {
	oldCfg := h.cfg.Swap(&cfg)
	// Plugins already known keep their supervisors; new ones are added.
	old := h.snapshot()
	if err := h.discover(); err != nil {
		h.logger.Error("plugin catalog reload failed", "err", err)
		return
	}
	h.mu.Lock()
	for name, m := range old {
		if nm, ok := h.plugins[name]; ok && nm.entry.SHA256 == m.entry.SHA256 && nm.entry.Path == m.entry.Path && m.stateNow() != StateRefused &&
			slices.Equal(envOf(oldCfg, m.entry, m.instanceOf), envOf(&cfg, m.entry, m.instanceOf)) {
			h.plugins[name] = m // keep the running one
		} else {
			m.stopAndWait()
		}
	}
	h.mu.Unlock()
	for _, m := range h.snapshot() {
		if m.stateNow() == StateFailed {
			h.Restart(m.entry.Name)
		}
	}
	h.Start()
}

func (h *Host) snapshot() map[string]*managed {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]*managed, len(h.plugins))
	for k, v := range h.plugins {
		out[k] = v
	}
	return out
}

func (m *managed) stateNow() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}

// Status describes one plugin for /v1/plugins and `vigil plugins list`.
type Status struct {
	Name      string    `json:"name"`
	Kind      string    `json:"kind,omitempty"`
	Version   string    `json:"version,omitempty"`
	Path      string    `json:"path"`
	SHA256    string    `json:"sha256,omitempty"`
	Source    string    `json:"source,omitempty"`
	State     State     `json:"state"`
	PID       int       `json:"pid,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
	Restarts  int       `json:"restarts"`
	LastError string    `json:"last_error,omitempty"`
	// Capabilities are what the plugin declared when it last started.
	Capabilities []string `json:"capabilities,omitempty"`
}

// Capabilities returns what the named plugin or instance declared when it
// last started; known is false when it never started (or is unknown).
func (h *Host) Capabilities(name string) (caps []string, known bool) {
	h.mu.Lock()
	m, ok := h.plugins[name]
	h.mu.Unlock()
	if !ok {
		return nil, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.info == nil {
		return nil, false
	}
	return m.info.GetCapabilities(), true
}

// List returns every plugin, sorted by name.
func (h *Host) List() []Status {
	var out []Status
	all := h.snapshot()
	// A plugin that runs only as instances (see Start) has not started
	// itself: what it declares is what its instances, the same binary,
	// declared.
	learned := map[string]*pb.InfoResponse{}
	for _, m := range all {
		m.mu.Lock()
		if m.instanceOf != "" && m.info != nil {
			learned[m.instanceOf+"\x00"+m.entry.SHA256] = m.info
		}
		m.mu.Unlock()
	}
	for _, m := range all {
		m.mu.Lock()
		s := Status{
			Name: m.entry.Name, Kind: m.entry.Kind, Version: m.entry.Version, Path: m.entry.Path,
			SHA256: m.entry.SHA256, Source: m.entry.Source, State: m.state, PID: m.pid,
			StartedAt: m.startedAt, Restarts: m.restarts, LastError: m.lastErr,
		}
		info := m.info
		if info == nil && m.instanceOf == "" {
			info = learned[m.entry.Name+"\x00"+m.entry.SHA256]
		}
		if info != nil {
			s.Capabilities = info.GetCapabilities()
		}
		if info != nil && info.GetVersion() != "" {
			s.Version = info.GetVersion()
		}
		if m.state != StateRunning {
			s.StartedAt = time.Time{}
		}
		m.mu.Unlock()
		if s.State == StateUntrusted {
			// An untrusted binary has no plugin name yet (it gets one
			// when registered). Its file name would be ambiguous: a
			// trusted plugin, or an instance, may have that name, and so
			// may a file in another plugin directory. Its path contains
			// a '/', which no name of a plugin or instance does.
			s.Name = s.Path
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// client returns the running plugin's client, starting it if need be and
// waiting up to the start timeout.
func (h *Host) client(ctx context.Context, name string, kind sdk.Kind) (any, error) {
	h.mu.Lock()
	m, ok := h.plugins[name]
	h.mu.Unlock()
	if !ok {
		return nil, sdk.Errorf(sdk.NotFound, "no plugin %q is registered", name)
	}
	// An instance of a missing plugin has no kind; it is refused below.
	if m.entry.Kind != string(kind) && (m.instanceOf == "" || m.entry.Kind != "") {
		return nil, sdk.Errorf(sdk.InvalidRequest, "plugin %q is a %s, not a %s", name, m.entry.Kind, kind)
	}
	// Fast path: a running plugin needs no start-up bookkeeping (this is
	// on every call's path).
	m.mu.Lock()
	if m.state == StateRunning && m.client != nil {
		c := m.client
		m.mu.Unlock()
		return c, nil
	}
	m.mu.Unlock()
	m.ensureRunning()
	deadline := time.NewTimer(h.config().StartTimeout + time.Second)
	defer deadline.Stop()
	for {
		m.mu.Lock()
		state, c, ready, lastErr, next := m.state, m.client, m.ready, m.lastErr, m.nextTry
		m.mu.Unlock()
		switch state {
		case StateRunning:
			if c != nil {
				return c, nil
			}
		case StateBackoff:
			return nil, &sdk.Error{Class: sdk.Unavailable, Message: fmt.Sprintf("plugin %q is restarting after a failure (%s)", name, lastErr), RetryAfter: time.Until(next)}
		case StateFailed, StateRefused, StateUntrusted:
			return nil, sdk.NotServing(sdk.Errorf(sdk.Unavailable, "plugin %q is %s: %s", name, state, lastErr))
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, sdk.Errorf(sdk.Timeout, "waiting for plugin %q to start: %v", name, ctx.Err())
		case <-deadline.C:
			return nil, sdk.Errorf(sdk.Unavailable, "plugin %q did not start in time", name)
		}
	}
}

// call runs fn against a plugin with the call deadline, and records it.
func call[T any](ctx context.Context, h *Host, name string, kind sdk.Kind, method string, fn func(context.Context, T) error) error {
	raw, err := h.client(ctx, name, kind)
	if err != nil {
		h.m.errors.WithLabelValues(name, method, string(sdk.ClassOf(err))).Inc()
		return err
	}
	c, ok := raw.(T)
	if !ok {
		return sdk.Errorf(sdk.Internal, "plugin %q: unexpected client type %T", name, raw)
	}
	// The call deadline, unless the caller's own ends sooner (the gateway's
	// per-request deadline usually does): a second timer and context per
	// call would change nothing but the allocations.
	if timeout := h.callTimeout(name); !deadlineWithin(ctx, timeout) {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	start := time.Now()
	err = fn(ctx, c)
	h.m.calls.WithLabelValues(name, method).Observe(time.Since(start).Seconds())
	if err != nil {
		var se *sdk.Error
		switch {
		case ctx.Err() != nil:
			// The deadline passed or the caller gave up: whatever the
			// transport said, this is a timeout.
			err = &sdk.Error{Class: sdk.Timeout, Message: fmt.Sprintf("%s call to plugin %q did not finish: %v", method, name, ctx.Err())}
		case !errors.As(err, &se):
			err = &sdk.Error{Class: sdk.ClassOf(err), Message: err.Error()}
		}
		h.m.errors.WithLabelValues(name, method, string(sdk.ClassOf(err))).Inc()
	}
	return err
}

// deadlineWithin reports whether ctx already ends within d from now.
func deadlineWithin(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) <= d
}

// WithDetector calls fn with the named detector plugin's client, within
// the call deadline. method names the call in metrics.
func (h *Host) WithDetector(ctx context.Context, name, method string, fn func(context.Context, sdk.DetectorClient) error) error {
	return call(ctx, h, name, sdk.KindDetector, method, fn)
}

// WithProvider calls fn with the named provider plugin's client.
func (h *Host) WithProvider(ctx context.Context, name, method string, fn func(context.Context, sdk.ProviderClient) error) error {
	return call(ctx, h, name, sdk.KindProvider, method, fn)
}

// WithVectorStore calls fn with the named vector store plugin's client.
func (h *Host) WithVectorStore(ctx context.Context, name, method string, fn func(context.Context, sdk.VectorStoreClient) error) error {
	return call(ctx, h, name, sdk.KindVectorStore, method, fn)
}
