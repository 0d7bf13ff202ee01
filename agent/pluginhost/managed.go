package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// State is where a plugin is in its life.
type State string

// Plugin states.
const (
	StateStopped   State = "stopped"   // trusted, not started yet (lazy start)
	StateStarting  State = "starting"  // launching and handshaking
	StateRunning   State = "running"   // serving calls
	StateBackoff   State = "backoff"   // crashed; waiting to restart
	StateFailed    State = "failed"    // crash budget spent, or configuration rejected; down until restarted or reloaded
	StateUntrusted State = "untrusted" // found in a plugin directory but never registered
	StateRefused   State = "refused"   // registered, but the binary changed or is outside the plugin directories
)

// managed is one plugin and its supervisor. The supervisor goroutine owns
// the process; other goroutines read the state under mu and ask for
// restarts through wake.
type managed struct {
	h     *Host
	entry Entry
	log   *slog.Logger

	mu        sync.Mutex
	state     State
	lastErr   string
	restarts  int
	crashes   []time.Time
	nextTry   time.Time
	pid       int
	startedAt time.Time
	info      *pb.InfoResponse
	client    any           // the dispensed sdk.*Client while running
	ready     chan struct{} // closed and replaced on every state change
	wake      chan struct{}
	running   bool // supervisor goroutine started
	retired   bool // replaced by a new entry: the supervisor exits
	// fileRefused: refused for its binary's file (see refusal.file).
	fileRefused bool

	// Set for instances (see Instance); fixed once created.
	instanceOf  string
	config      map[string]any
	cfgKey      string
	setBy       map[string]string // an instance's Instance.SetBy
	callTimeout time.Duration
}

func newManaged(h *Host, e Entry, state State, reason string) *managed {
	if state == StateRefused && e.Kind != "" {
		// Refused from the start, it is never supervised: its series
		// says it is down, as a plugin refused later says.
		h.m.up.WithLabelValues(e.Name, e.Kind).Set(0)
	}
	return &managed{
		h:       h,
		entry:   e,
		log:     h.logger.With("plugin", e.Name),
		state:   state,
		lastErr: reason,
		ready:   make(chan struct{}),
		wake:    make(chan struct{}, 1),
	}
}

func (m *managed) setState(s State, errMsg string) {
	// vigil_plugin_up first, the state second: whoever sees the new state
	// (a status request, a test waiting for it) finds the gauge agreeing.
	m.setUp(s)
	m.mu.Lock()
	m.state = s
	if errMsg != "" {
		m.lastErr = errMsg
	}
	close(m.ready)
	m.ready = make(chan struct{})
	m.mu.Unlock()
}

// setUp sets vigil_plugin_up for state s.
func (m *managed) setUp(s State) {
	if m.isRetired() {
		// Replaced (registered again, reloaded) or unregistered: the
		// successor under the same name owns the series; without one the
		// plugin is gone and so is its series.
		m.h.mu.Lock()
		cur := m.h.plugins[m.entry.Name]
		m.h.mu.Unlock()
		if cur == nil {
			m.h.m.up.DeleteLabelValues(m.entry.Name, m.entry.Kind)
		}
		if cur != m {
			return
		}
	}
	up := 0.0
	if s == StateRunning {
		up = 1
	}
	m.h.m.up.WithLabelValues(m.entry.Name, m.entry.Kind).Set(up)
}

// ensureRunning starts the supervisor if it is not running yet, and
// reports whether it did.
func (m *managed) ensureRunning() (started bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running || m.state == StateUntrusted || m.state == StateRefused {
		return false
	}
	m.running = true
	m.h.wg.Add(1)
	go m.supervise()
	return true
}

// supervise runs the plugin until the host stops: start, watch, and after
// a crash wait with backoff and start again, within the crash budget.
func (m *managed) supervise() {
	defer m.h.wg.Done()
	ctx := m.h.ctx
	for ctx.Err() == nil {
		m.setState(StateStarting, "")
		proc, err := m.launch(ctx)
		if err == nil {
			m.setState(StateRunning, "")
			m.log.Info("plugin started", "pid", proc.pid, "version", m.info.GetVersion())
			err = m.watch(ctx, proc)
			proc.stop(m.log)
			m.mu.Lock()
			m.client, m.pid = nil, 0
			m.mu.Unlock()
		}
		if ctx.Err() != nil || m.isRetired() {
			m.setState(StateStopped, "")
			return
		}
		if errors.Is(err, errRestartRequested) {
			// A restart by hand of a binary removed or replaced since
			// it started is refused by the launch below.
			m.log.Info("plugin restarting on request")
			continue
		}
		// What no restart can fix is refused at once rather than retried
		// as a crash until the budget is spent: a binary removed or
		// replaced since it was trusted (whether the plugin then crashed
		// or its next launch found it so), or a plugin that is not what
		// its catalog entry says.
		ref := m.binaryRefusal()
		if ref == nil {
			errors.As(err, &ref)
		}
		if ref != nil {
			m.log.Warn("plugin refused", "reason", ref.msg, "after", err)
			// Refused first, then not running: in between, a restart
			// request must neither start a second supervisor nor find
			// the plugin startable.
			m.setState(StateRefused, ref.msg)
			m.mu.Lock()
			m.running = false
			m.fileRefused = ref.file
			m.mu.Unlock()
			return
		}
		var rej *configRejection
		if errors.As(err, &rej) {
			// A restart would hand the plugin the same configuration:
			// failed now, and tried again on a reload (which may bring a
			// new configuration) or a restart by hand.
			msg := rej.msg + "; " + m.rejectionHint()
			m.log.Error("plugin failed: it rejected its configuration", "err", rej.msg)
			m.setState(StateFailed, msg)
		}
		if rej != nil || !m.crashed(err) {
			// Budget spent: stay down until a restart request.
			select {
			case <-ctx.Done():
				return
			case <-m.wake:
				if m.isRetired() {
					m.setState(StateStopped, "")
					return
				}
				m.mu.Lock()
				m.crashes = nil
				m.mu.Unlock()
				continue
			}
		}
		m.mu.Lock()
		wait := time.Until(m.nextTry)
		m.mu.Unlock()
		select {
		case <-ctx.Done():
			m.setState(StateStopped, "")
			return
		case <-time.After(wait):
		case <-m.wake:
			if m.isRetired() {
				m.setState(StateStopped, "")
				return
			}
		}
		m.h.m.restarts.WithLabelValues(m.entry.Name).Inc()
		m.mu.Lock()
		m.restarts++
		m.mu.Unlock()
	}
}

var errRestartRequested = errors.New("restart requested")

// refusal is a launch that no restart can fix: the plugin is refused
// instead of retried.
type refusal struct {
	msg string
	// file says the binary's file is the cause (removed, unreadable,
	// changed, writable by others): fixing the file lets a restart start
	// it again, unlike what the plugin says of itself.
	file bool
}

func (r *refusal) Error() string { return r.msg }

func refusalf(format string, args ...any) *refusal {
	return &refusal{msg: fmt.Sprintf(format, args...)}
}

// binaryRefusal checks the plugin's binary is still the one its catalog
// entry trusts: it returns why not (removed, unreadable, another SHA-256),
// or nil.
func (m *managed) binaryRefusal() *refusal {
	e := m.entry
	sum, err := fileSHA256(e.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &refusal{msg: fmt.Sprintf("cannot read %s: no such file or directory (removed after the agent trusted it); put it back and restart the plugin (vigil plugins restart) or reload the agent (SIGHUP)", e.Path), file: true}
	case err != nil:
		return &refusal{msg: fmt.Sprintf("cannot read %s: %v", e.Path, err), file: true}
	case sum != e.SHA256:
		return &refusal{msg: changedMessage(m.trust(), sum), file: true}
	}
	return nil
}

// trust is the catalog entry the plugin is trusted by: its own, or for an
// instance its plugin's (whose source names the catalog).
func (m *managed) trust() Entry {
	if m.instanceOf == "" {
		return m.entry
	}
	m.h.mu.Lock()
	base, ok := m.h.plugins[m.instanceOf]
	m.h.mu.Unlock()
	e := m.entry
	if ok {
		e.Source = base.entry.Source
	}
	return e
}

// catalogFile names the file (or directory) where e's trust is recorded.
func (h *Host) catalogFile(e Entry) string {
	switch e.Source {
	case "package":
		return filepath.Join(filepath.Dir(e.Path), "catalog.json")
	case "dev":
		return "the dev plugin directory " + filepath.Dir(e.Path)
	}
	return h.catalogPath
}

// kindMismatch refuses a plugin that is not the kind its catalog entry
// says.
func (m *managed) kindMismatch(got string) *refusal {
	e := m.trust()
	msg := fmt.Sprintf("plugin says it is a %q, its entry in %s says %q", got, m.h.catalogFile(e), e.Kind)
	switch e.Source {
	case "package":
		return refusalf("%s; fix the entry and reload the agent (SIGHUP)", msg)
	case "dev":
		return refusalf("%s; reload the agent (SIGHUP)", msg)
	}
	return refusalf("%s; run `vigil plugins register %s` to record what it is", msg, e.Path)
}

// versionMismatch refuses a plugin that speaks another contract version.
func (m *managed) versionMismatch(got uint32) *refusal {
	return refusalf("plugin says it speaks contract version %d (Info.contract_version), this agent contract version %d; the binary trusted by %s needs a build for this agent",
		got, sdk.ContractVersion, m.h.catalogFile(m.trust()))
}

func (m *managed) isRetired() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.retired
}

func hexSum(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("invalid sha256 %q", s)
	}
	return b, nil
}

// crashed records a crash. It returns false when the crash budget is spent
// and the plugin is now failed.
func (m *managed) crashed(err error) bool {
	cfg := m.h.config()
	now := time.Now()
	m.mu.Lock()
	recent := m.crashes[:0]
	for _, t := range m.crashes {
		if now.Sub(t) < cfg.CrashWindow {
			recent = append(recent, t)
		}
	}
	m.crashes = append(recent, now)
	n := len(m.crashes)
	backoff := cfg.MinBackoff << min(n-1, 20)
	if backoff > cfg.MaxBackoff || backoff <= 0 {
		backoff = cfg.MaxBackoff
	}
	// Full jitter in the upper half keeps a fleet of agents from
	// restarting a shared upstream's plugins in lockstep.
	backoff = backoff/2 + time.Duration(rand.Int64N(int64(backoff/2)+1))
	m.nextTry = now.Add(backoff)
	m.mu.Unlock()

	if n >= cfg.CrashBudget {
		msg := fmt.Sprintf("%v; %d crashes within %s, plugin stays down until `vigil plugins restart %s`", err, n, cfg.CrashWindow, m.entry.Name)
		m.log.Error("plugin failed: crash budget spent", "err", err, "crashes", n, "window", cfg.CrashWindow.String())
		m.setState(StateFailed, msg)
		return false
	}
	m.log.Warn("plugin stopped unexpectedly; restarting after backoff", "err", err, "backoff", backoff.Round(time.Millisecond).String(), "crashes_in_window", n)
	m.setState(StateBackoff, err.Error())
	return true
}

// process is one running plugin process.
type process struct {
	client *plugin.Client
	rpc    plugin.ClientProtocol
	cmd    *exec.Cmd
	pid    int
}

// stop asks the plugin to exit, then kills its whole process group so no
// child it started outlives it. go-plugin's Kill waits until the plugin's
// output pipes close, which a child holding them would delay forever, so
// the group is killed once the graceful attempt has had its chance.
func (p *process) stop(log *slog.Logger) {
	done := make(chan struct{})
	go func() {
		p.client.Kill()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
	}
	if p.pid > 0 {
		if err := syscall.Kill(-p.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			log.Warn("could not kill plugin process group", "pgid", p.pid, "err", err)
		}
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		log.Error("plugin did not exit after its process group was killed", "pid", p.pid)
	}
}

// launch starts the binary after checking its hash, completes the
// handshake, and checks what the plugin says it is.
func (m *managed) launch(ctx context.Context) (*process, error) {
	e := m.entry
	sum, err := hexSum(e.SHA256)
	if err != nil {
		return nil, fmt.Errorf("catalog entry: %w", err)
	}
	if m.trust().Source != "dev" {
		if err := othersCanReplace(e.Path); err != nil {
			return nil, &refusal{msg: err.Error(), file: true}
		}
	}
	proc, err := m.h.spawn(e.Path, sum, e.Args, envOf(m.h.config(), e, m.instanceOf), m.log)
	if err != nil {
		return nil, err
	}
	raw, err := proc.rpc.Dispense(e.Kind)
	if err != nil {
		proc.stop(m.log)
		return nil, fmt.Errorf("plugin does not serve kind %s: %w", e.Kind, err)
	}
	base := raw.(sdk.Base)
	cctx, cancel := context.WithTimeout(ctx, m.h.config().StartTimeout)
	defer cancel()
	info, err := base.Info(cctx)
	if err != nil {
		proc.stop(m.log)
		return nil, fmt.Errorf("the plugin's Info call failed: %w", err)
	}
	if info.GetKind() != e.Kind {
		proc.stop(m.log)
		return nil, m.kindMismatch(info.GetKind())
	}
	if info.GetContractVersion() != sdk.ContractVersion {
		proc.stop(m.log)
		return nil, m.versionMismatch(info.GetContractVersion())
	}
	if conf := m.configFor(); conf != nil {
		ferrs, err := base.Configure(cctx, conf)
		if err != nil {
			proc.stop(m.log)
			if isConfigRejection(err) {
				var se *sdk.Error
				errors.As(err, &se)
				key := m.h.whereSet(m.configKey()) + m.configKey()
				if se.Field != "" {
					key = m.fieldKey(se.Field)
				}
				return nil, &configRejection{fmt.Sprintf("plugin rejected its configuration (%s); %s: %s", se.Class, key, se.Message)}
			}
			return nil, fmt.Errorf("the plugin's Configure call failed: %w", err)
		}
		if len(ferrs) > 0 {
			proc.stop(m.log)
			msg := ""
			for _, fe := range ferrs {
				if fe.Field == "" { // the configuration as a whole
					msg += fmt.Sprintf("; %s: %s", m.h.whereSet(m.configKey())+m.configKey(), fe.Message)
					continue
				}
				msg += fmt.Sprintf("; %s: %s", m.fieldKey(fe.Field), fe.Message)
			}
			return nil, &configRejection{"plugin rejected its configuration" + msg}
		}
	}
	m.mu.Lock()
	m.info, m.client, m.pid, m.startedAt = info, raw, proc.pid, time.Now()
	m.mu.Unlock()
	return proc, nil
}

// configRejection is a start that failed because the plugin rejected its
// configuration (field errors from Configure, or a Configure call that
// failed with class invalid_request or auth). No restart can fix that: the
// plugin is failed at once, until a reload or a restart by hand.
type configRejection struct{ msg string }

func (r *configRejection) Error() string { return r.msg }

// isConfigRejection reports whether a failed Configure call is the
// plugin saying no to its configuration (class invalid_request or auth),
// which it would say again after a restart, rather than a failure that may
// pass (class unavailable when it crashed in the call, timeout, internal).
func isConfigRejection(err error) bool {
	var se *sdk.Error
	return errors.As(err, &se) && (se.Class == sdk.InvalidRequest || se.Class == sdk.Auth)
}

// fieldKey names one field of the plugin's configuration where the
// operator set it: plugins.config.NAME.FIELD, gateway.providers[i].FIELD,
// or for a key set under another name (api_key from api_key_env) that
// one; prefixed with the file and line that set it, when known.
func (m *managed) fieldKey(field string) string {
	key := m.configKey() + "." + field
	if k, ok := m.setBy[field]; ok {
		key = m.configKey() + "." + k
		if strings.HasSuffix(k, "."+field) {
			field = k // the same key, deeper: options.colour
		} else {
			field = fmt.Sprintf("%s (the %s it set)", k, field)
		}
	}
	return m.h.whereSet(key) + m.configKey() + "." + field
}

// rejectionHint says what to do about a rejected configuration.
func (m *managed) rejectionHint() string {
	if m.instanceOf != "" {
		// Its settings are fixed when the agent starts; what they point
		// at (an api_key_file, the upstream's account) may be fixed
		// without a restart.
		return fmt.Sprintf("not restarted, since the plugin would reject the same settings again: fix them and restart the agent, or fix what they refer to and reload the agent (SIGHUP) or run `vigil plugins restart %s`", m.entry.Name)
	}
	return fmt.Sprintf("not restarted, since the plugin would reject the same configuration again: fix it and reload the agent (SIGHUP), or fix what it refers to and run `vigil plugins restart %s`", m.entry.Name)
}

// envOf is a plugin's environment beyond the minimal one: its catalog
// entry's, then plugins.env's for the plugin and, for an instance, for
// the instance's own name (a later value of a key wins).
func envOf(cfg *Config, e Entry, instanceOf string) []string {
	var extra []string
	if instanceOf != "" {
		extra = append(extra, cfg.Env[instanceOf]...)
	}
	extra = append(extra, cfg.Env[e.Name]...)
	if len(extra) == 0 {
		return e.Env
	}
	return append(slices.Clip(e.Env), extra...)
}

// spawn launches a plugin binary through go-plugin with AutoMTLS and the
// checksum, in its own process group.
func (h *Host) spawn(path string, sum []byte, args, env []string, log *slog.Logger) (*process, error) {
	cmd := exec.Command(path, args...)
	// A plugin does not inherit the agent's environment, which may hold
	// secrets; it gets a minimal one plus what its catalog entry names.
	cmd.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/nonexistent"}, env...)
	if tz, ok := os.LookupEnv("TZ"); ok {
		cmd.Env = append(cmd.Env, "TZ="+tz)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// If the agent dies (even by SIGKILL), the kernel kills the plugin.
		Pdeathsig: syscall.SIGKILL,
	}
	stderr := &stderrLogger{logger: log}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: sdk.PluginMap(),
		Cmd:              cmd,
		SkipHostEnv:      true,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		SecureConfig:     &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()},
		AutoMTLS:         true,
		StartTimeout:     h.config().StartTimeout,
		Stderr:           stderr,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:       "go-plugin",
			Level:      hclog.Warn,
			JSONFormat: true,
			Output:     &stderrLogger{logger: log},
		}),
		GRPCDialOptions: sdk.ClientDialOptions(),
	})
	rpc, err := client.Client()
	pid := 0
	if cmd.Process != nil {
		pid = cmd.Process.Pid
	}
	proc := &process{client: client, rpc: rpc, cmd: cmd, pid: pid}
	if err != nil {
		// Once stopped, go-plugin has read all of the plugin's stderr.
		proc.stop(log)
		return nil, describeStartError(path, err, cmd.ProcessState, stderr.lastWords())
	}
	return proc, nil
}

// errBinaryChanged is a launch refused because the binary's SHA-256 no
// longer matches its catalog entry: no restart can fix that.
var errBinaryChanged = errors.New("SHA-256 does not match the catalog")

// describeStartError turns go-plugin's start error into one line saying
// what the binary did. A plugin that wrote to standard error before it
// exited or hung most likely failed on its own (a Python plugin without
// python3-grpcio, a Go panic, a missing file), so the error quotes its
// last words (lastWords) and its exit status rather than calling it no
// plugin at all; the whole output is in the agent's log under its name.
func describeStartError(path string, err error, ps *os.ProcessState, lastWords string) error {
	said := ""
	if lastWords != "" {
		said = fmt.Sprintf("; its standard error ended with %q (all of it is in the agent's log under the plugin's name)", lastWords)
	}
	switch {
	case errors.Is(err, plugin.ErrChecksumsDoNotMatch):
		return fmt.Errorf("%s: %w", path, errBinaryChanged)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%s: %w", path, err)
	}
	msg := err.Error()
	const notPlugin = "; plugins are built against github.com/vigilml/vigil/sdk"
	switch {
	case strings.Contains(msg, "timeout while waiting for plugin to start"):
		return fmt.Errorf("%s did not complete the plugin handshake within plugins.start_timeout; it hangs or is not a Vigil plugin%s", path, said)
	case strings.Contains(msg, "Failed to read any lines from plugin's stdout"), strings.Contains(msg, "plugin exited before we could connect"):
		if said != "" {
			status := ""
			if ps != nil {
				status = " (" + ps.String() + ")"
			}
			return fmt.Errorf("%s exited%s without printing the plugin handshake%s", path, status, said)
		}
		return fmt.Errorf("%s is not a Vigil plugin built with this contract (handshake failed: it exited or closed standard output without printing the handshake)%s", path, notPlugin)
	case strings.HasPrefix(msg, "Unrecognized remote plugin message: "):
		// go-plugin appends a many-line diagnosis; the first line is
		// what the plugin printed, which is what its author needs.
		line, _, _ := strings.Cut(strings.TrimPrefix(msg, "Unrecognized remote plugin message: "), "\n")
		return fmt.Errorf("%s is not a Vigil plugin built with this contract (handshake failed: it printed %q on standard output instead of the handshake; a plugin logs to standard error)%s", path, line, notPlugin)
	case strings.Contains(strings.ToLower(msg), "incompatible api version"):
		// The binary is pinned by its hash, so it will never speak
		// another version: refused, not retried.
		return refusalf("%s is not a Vigil plugin built with this contract (handshake failed: %v; this agent speaks contract version %d)%s", path, err, sdk.ContractVersion, notPlugin)
	}
	return fmt.Errorf("start %s: %w", path, err)
}

// watch returns when the plugin process exits, fails its health check,
// a restart is requested, or ctx ends.
func (m *managed) watch(ctx context.Context, p *process) error {
	health := time.NewTicker(m.h.config().HealthInterval)
	defer health.Stop()
	exited := time.NewTicker(100 * time.Millisecond)
	defer exited.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.wake:
			return errRestartRequested
		case <-exited.C:
			if p.client.Exited() {
				// go-plugin has waited for the process by now, so its
				// exit status is set.
				if ps := p.cmd.ProcessState; ps != nil {
					return fmt.Errorf("plugin process exited (%s)", ps)
				}
				return errors.New("plugin process exited")
			}
		case <-health.C:
			done := make(chan error, 1)
			go func() { done <- p.rpc.Ping() }()
			select {
			case err := <-done:
				if err != nil {
					return fmt.Errorf("health check failed: %w", err)
				}
			case <-time.After(5 * time.Second):
				return errors.New("health check timed out after 5s: plugin hangs")
			}
		}
	}
}
