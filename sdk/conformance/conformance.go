// Package conformance checks that a plugin binary keeps the Vigil plugin
// contract. It launches the binary exactly as the agent does (go-plugin, the
// SDK's handshake, AutoMTLS, the binary's SHA-256 pinned, its own process
// group) and runs it through the contract's expectations: Info, Configure
// and health for every kind, then every RPC of the plugin's kind with valid
// and invalid input, and finally a clean shutdown that leaves no process
// behind.
//
// A plugin author calls it from an ordinary Go test, after building the
// plugin binary:
//
//	func TestConformance(t *testing.T) {
//		conformance.RunDetector(t, "./bin/vigil-detector-mine")
//	}
//
// Run checks whatever kind the plugin says it is; RunDetector, RunProvider
// and RunVectorStore also check the plugin is of that kind. Each check is a
// subtest, so a failure names the check and says why. The same checks run
// outside go test with `vigil plugins check PATH`, which uses Check.
//
// The kit works with a plugin in any language: it only speaks the contract.
// It needs nothing beyond the SDK's own dependencies.
package conformance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vigilml/vigil/sdk"
)

// Options adjust a run. The zero value checks whatever kind the plugin says
// it is, with the default timeouts.
type Options struct {
	// Kind, when set, is the kind the plugin must be.
	Kind sdk.Kind
	// Config, when not nil, is sent with a second Configure call after the
	// empty configuration was accepted (for a plugin that needs settings,
	// such as a provider's endpoint, for its calls to work).
	Config map[string]any
	// Args and Env are given to the plugin process, as a catalog entry's
	// args and env are by the agent. The plugin gets no other environment
	// than PATH, LANG, HOME (set to /nonexistent) and Env.
	Args []string
	Env  []string
	// StartTimeout bounds the handshake (default 20s); CallTimeout each call
	// (default 30s).
	StartTimeout time.Duration
	CallTimeout  time.Duration
}

// Status is the outcome of one check.
type Status string

// Outcomes. A check is skipped only when it does not apply to the plugin
// (a provider without an embedding model has no Embed to check).
const (
	Pass Status = "PASS"
	Fail Status = "FAIL"
	Skip Status = "SKIP"
)

// Result is one check's outcome.
type Result struct {
	Name     string        `json:"name"`
	Status   Status        `json:"status"`
	Reason   string        `json:"reason,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// Report is the outcome of a run.
type Report struct {
	Path    string   `json:"path"`
	Name    string   `json:"name,omitempty"`
	Kind    string   `json:"kind,omitempty"`
	Version string   `json:"version,omitempty"`
	Results []Result `json:"results"`
	// Stderr holds the last lines the plugin wrote to standard error, to
	// help explain a failure.
	Stderr string `json:"stderr,omitempty"`
}

// Failed reports whether any check failed.
func (r *Report) Failed() bool {
	for _, res := range r.Results {
		if res.Status == Fail {
			return true
		}
	}
	return false
}

// Run checks the plugin at path against the contract of whatever kind it
// says it is. Each check is a subtest of t.
func Run(t *testing.T, path string) { RunWith(t, path, Options{}) }

// RunDetector checks the plugin at path is a detector that keeps the
// contract.
func RunDetector(t *testing.T, path string) {
	RunWith(t, path, Options{Kind: sdk.KindDetector})
}

// RunProvider checks the plugin at path is a provider that keeps the
// contract.
func RunProvider(t *testing.T, path string) {
	RunWith(t, path, Options{Kind: sdk.KindProvider})
}

// RunVectorStore checks the plugin at path is a vector store that keeps
// the contract.
func RunVectorStore(t *testing.T, path string) {
	RunWith(t, path, Options{Kind: sdk.KindVectorStore})
}

// RunWith is Run with options.
func RunWith(t *testing.T, path string, opts Options) {
	t.Helper()
	rep := Check(context.Background(), path, opts)
	for _, res := range rep.Results {
		t.Run(res.Name, func(t *testing.T) {
			switch res.Status {
			case Fail:
				t.Error(res.Reason)
			case Skip:
				t.Log("does not apply:", res.Reason)
			}
		})
	}
	if rep.Failed() && rep.Stderr != "" {
		t.Logf("the plugin's standard error (last lines):\n%s", rep.Stderr)
	}
}

// Check runs every check against the plugin binary at path and reports
// each outcome. It never panics on a misbehaving plugin and always stops
// the plugin before it returns.
func Check(ctx context.Context, path string, opts Options) *Report {
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 20 * time.Second
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = 30 * time.Second
	}
	r := &runner{ctx: ctx, opts: opts, rep: &Report{Path: path}}
	r.run(path)
	r.rep.Stderr = r.stderr.tail()
	return r.rep
}

// errSkip marks a check that does not apply.
type errSkip string

func (e errSkip) Error() string { return string(e) }

type runner struct {
	ctx    context.Context
	opts   Options
	rep    *Report
	stderr tailBuffer
	logs   tailBuffer

	client *plugin.Client
	rpc    plugin.ClientProtocol
	pid    int
	// hinted: a failure already carries settingsHint (it is given once).
	hinted bool
}

// check runs one named check and records its outcome.
func (r *runner) check(name string, fn func() error) bool {
	start := time.Now()
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("the check itself panicked: %v", p)
			}
		}()
		err = fn()
	}()
	res := Result{Name: name, Status: Pass, Duration: time.Since(start)}
	var skip errSkip
	switch {
	case errors.As(err, &skip):
		res.Status, res.Reason = Skip, string(skip)
	case err != nil:
		res.Status, res.Reason = Fail, err.Error()
		if r.opts.Config == nil && !r.hinted && needsSettings(err) {
			res.Reason += "; " + settingsHint
			r.hinted = true
		}
	}
	r.rep.Results = append(r.rep.Results, res)
	return res.Status != Fail
}

// settingsHint is added to the first failure that a plugin run without
// settings may owe to their absence: a provider in front of an upstream needs its
// base_url or API key, which only Options.Config (-config) gives it.
const settingsHint = "no configuration was given: if the plugin needs settings (an API key, a base_url), give them with -config FILE (Options.Config in Go)"

// needsSettings reports whether a call failed with a class that a missing
// setting causes: auth (no key), or unavailable (no upstream at the
// default address).
func needsSettings(err error) bool {
	var e *sdk.Error
	return errors.As(err, &e) && (e.Class == sdk.Auth || e.Class == sdk.Unavailable)
}

// call bounds one call with the call timeout.
func (r *runner) call() (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.ctx, r.opts.CallTimeout)
}

func (r *runner) run(path string) {
	r.check("refuses-to-run-by-hand", func() error { return refusesByHand(path, r.opts) })
	if !r.check("handshake", func() error { return r.launch(path) }) {
		return
	}
	defer r.stopQuietly()

	var kind sdk.Kind
	ok := r.check("info", func() error {
		k, err := r.info()
		kind = k
		return err
	})
	if !ok {
		r.shutdown()
		return
	}
	r.check("configure-empty", r.configureEmpty)
	if r.opts.Config != nil {
		r.check("configure-given", r.configureGiven)
	}
	r.check("health", r.health)

	raw, err := r.rpc.Dispense(string(kind))
	if err != nil {
		r.check("dispense", func() error { return fmt.Errorf("dispense %s: %v", kind, err) })
		r.shutdown()
		return
	}
	switch kind {
	case sdk.KindDetector:
		r.detector(raw.(sdk.DetectorClient))
	case sdk.KindProvider:
		r.provider(raw.(sdk.ProviderClient))
	case sdk.KindVectorStore:
		r.vectorStore(raw.(sdk.VectorStoreClient))
	}
	r.check("survives", func() error {
		if r.client.Exited() {
			return errors.New("the plugin process exited during the checks")
		}
		c, cancel := r.call()
		defer cancel()
		if _, err := raw.(sdk.Base).Info(c); err != nil {
			return fmt.Errorf("the Info call failed after the checks: %v", err)
		}
		return nil
	})
	r.shutdown()
}

// baseEnv is the environment the agent gives a plugin.
func baseEnv(opts Options) []string {
	return append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/nonexistent"}, opts.Env...)
}

// refusesByHand runs the binary without the handshake's magic cookie: it
// must say it is a plugin and exit with a failure status, not hang or serve.
func refusesByHand(path string, opts Options) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, opts.Args...)
	cmd.Env = baseEnv(opts)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	setProcessGroup(cmd)
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	switch {
	case ctx.Err() != nil:
		return errors.New("run without the handshake cookie, the binary did not exit within 5s; a plugin must say it is started by the agent and exit")
	case err == nil:
		return errors.New("run without the handshake cookie, the binary exited with status 0; it must exit with a failure status")
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("cannot run the binary: %v", err)
	}
	if strings.TrimSpace(out.String()) == "" {
		return errors.New("run without the handshake cookie, the binary exited without saying why; it should print that it is a plugin started by the agent")
	}
	return nil
}

// launch starts the plugin as the agent does.
func (r *runner) launch(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		return err
	}
	cmd := exec.Command(path, r.opts.Args...)
	cmd.Env = baseEnv(r.opts)
	setProcessGroup(cmd)
	r.client = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: sdk.PluginMap(),
		Cmd:              cmd,
		SkipHostEnv:      true,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		SecureConfig:     &plugin.SecureConfig{Checksum: h.Sum(nil), Hash: sha256.New()},
		AutoMTLS:         true,
		StartTimeout:     r.opts.StartTimeout,
		Stderr:           &r.stderr,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:   "go-plugin",
			Level:  hclog.Warn,
			Output: &r.logs,
		}),
		GRPCDialOptions: sdk.ClientDialOptions(),
	})
	rpc, err := r.client.Client()
	if cmd.Process != nil {
		r.pid = cmd.Process.Pid
	}
	if err != nil {
		return handshakeError(err)
	}
	r.rpc = rpc
	if _, ok := rpc.(*plugin.GRPCClient); !ok {
		return fmt.Errorf("the plugin speaks %T, not gRPC", rpc)
	}
	return nil
}

var (
	// As the agent's catalog takes them (agent/pluginhost).
	nameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	semverRE = regexp.MustCompile(`^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]+)?$`)
)

func (r *runner) info() (sdk.Kind, error) {
	// Every kind serves the Plugin service; any kind's client can ask.
	raw, err := r.rpc.Dispense(string(sdk.KindDetector))
	if err != nil {
		return "", err
	}
	c, cancel := r.call()
	defer cancel()
	info, err := raw.(sdk.Base).Info(c)
	if err != nil {
		return "", fmt.Errorf("the Info call failed: %v", err)
	}
	r.rep.Name, r.rep.Kind, r.rep.Version = info.GetName(), info.GetKind(), info.GetVersion()
	var problems []string
	if !nameRE.MatchString(info.GetName()) {
		problems = append(problems, fmt.Sprintf("name %q is not valid (1-63 of a-z 0-9 . _ -, starting with a letter or digit)", info.GetName()))
	}
	kind := sdk.Kind(info.GetKind())
	known := false
	for _, k := range sdk.Kinds {
		known = known || k == kind
	}
	switch {
	case !known:
		problems = append(problems, fmt.Sprintf("kind %q is not one of detector, provider, vectorstore", info.GetKind()))
	case r.opts.Kind != "" && kind != r.opts.Kind:
		problems = append(problems, fmt.Sprintf("kind is %q, expected %q", kind, r.opts.Kind))
	}
	if !semverRE.MatchString(info.GetVersion()) {
		problems = append(problems, fmt.Sprintf("version %q is not a semantic version such as 1.2.3", info.GetVersion()))
	}
	if kind == sdk.KindProvider {
		for _, c := range info.GetCapabilities() {
			if !slices.Contains(sdk.ProviderCapabilities, c) {
				problems = append(problems, fmt.Sprintf("capability %q is not a provider capability (want any of %s): the agent never looks at it; a plugin newer than this kit may know more, then update the kit (vigil)", c, strings.Join(sdk.ProviderCapabilities, ", ")))
			}
		}
	}
	if info.GetContractVersion() != sdk.ContractVersion {
		problems = append(problems, fmt.Sprintf("contract_version is %d, expected %d", info.GetContractVersion(), sdk.ContractVersion))
	}
	if len(problems) > 0 {
		return "", errors.New(strings.Join(problems, "; "))
	}
	return kind, nil
}

func (r *runner) base() sdk.Base {
	raw, _ := r.rpc.Dispense(string(sdk.KindDetector))
	return raw.(sdk.Base)
}

func (r *runner) configureEmpty() error {
	c, cancel := r.call()
	defer cancel()
	ferrs, err := r.base().Configure(c, map[string]any{})
	if err != nil {
		return fmt.Errorf("the Configure call with an empty configuration failed: %v", err)
	}
	if len(ferrs) > 0 {
		return fmt.Errorf("an empty configuration was rejected (%s); a plugin must start with its defaults", fieldErrors(ferrs))
	}
	return nil
}

func (r *runner) configureGiven() error {
	c, cancel := r.call()
	defer cancel()
	ferrs, err := r.base().Configure(c, r.opts.Config)
	if err != nil {
		return fmt.Errorf("the Configure call failed: %v", err)
	}
	if len(ferrs) > 0 {
		return fmt.Errorf("the given configuration was rejected: %s", fieldErrors(ferrs))
	}
	return nil
}

func fieldErrors(fes []sdk.FieldError) string {
	var parts []string
	for _, fe := range fes {
		parts = append(parts, fe.Field+": "+fe.Message)
	}
	return strings.Join(parts, "; ")
}

func (r *runner) health() error {
	gc := r.rpc.(*plugin.GRPCClient)
	c, cancel := r.call()
	defer cancel()
	resp, err := grpc_health_v1.NewHealthClient(gc.Conn).Check(c, &grpc_health_v1.HealthCheckRequest{Service: plugin.GRPCServiceName})
	if err != nil {
		return fmt.Errorf("grpc.health.v1.Health/Check for service %q failed: %v", plugin.GRPCServiceName, err)
	}
	if resp.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
		return fmt.Errorf("health status of service %q is %s, expected SERVING", plugin.GRPCServiceName, resp.GetStatus())
	}
	return nil
}

// shutdown stops the plugin as the agent does and checks it went cleanly:
// it exits when asked (go-plugin's controller Shutdown), and leaves no
// process of its group behind.
func (r *runner) shutdown() {
	r.check("shutdown", func() error {
		done := make(chan struct{})
		go func() { r.client.Kill(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = killGroup(r.pid)
			return errors.New("the plugin did not exit within 10s of being told to stop")
		}
		var problems []string
		if strings.Contains(r.logs.String(), "failed to exit gracefully") {
			problems = append(problems, "the plugin did not exit when asked (go-plugin's GRPCController.Shutdown) and had to be killed")
		}
		if r.pid > 0 && groupAlive(r.pid) {
			problems = append(problems, fmt.Sprintf("processes of the plugin's process group %d were still running after it exited (killed now)", r.pid))
			_ = killGroup(r.pid)
		}
		if len(problems) > 0 {
			return errors.New(strings.Join(problems, "; "))
		}
		return nil
	})
	r.client = nil
}

// stopQuietly makes sure nothing is left running when a run stops early.
func (r *runner) stopQuietly() {
	if r.client != nil {
		r.client.Kill()
	}
	if r.pid > 0 && groupAlive(r.pid) {
		_ = killGroup(r.pid)
	}
}

// classed checks err is an *sdk.Error of one of the classes; field asks
// for a named field too.
func classed(err error, what string, field bool, classes ...sdk.Class) error {
	if err == nil {
		return fmt.Errorf("%s: the call succeeded; expected an error of class %s", what, joinClasses(classes))
	}
	var e *sdk.Error
	if !errors.As(err, &e) {
		return fmt.Errorf("%s: got an untyped error %v; expected class %s", what, err, joinClasses(classes))
	}
	ok := false
	for _, c := range classes {
		ok = ok || e.Class == c
	}
	if !ok {
		return fmt.Errorf("%s: got class %s (%s); expected %s", what, e.Class, e.Message, joinClasses(classes))
	}
	if field && e.Field == "" {
		return fmt.Errorf("%s: the %s error names no field (send the %s trailer; the SDKs do with a field error)", what, e.Class, sdk.TrailerField)
	}
	if strings.TrimSpace(e.Message) == "" {
		return fmt.Errorf("%s: the %s error has no message", what, e.Class)
	}
	return nil
}

func joinClasses(cs []sdk.Class) string {
	var s []string
	for _, c := range cs {
		s = append(s, string(c))
	}
	return strings.Join(s, " or ")
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// tailBuffer keeps the last 16 KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - 16<<10; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

func (b *tailBuffer) tail() string { return strings.TrimSpace(b.String()) }

// handshakeError says in one line what the binary did instead of the
// handshake; go-plugin's own error appends a many-line diagnosis, which
// would break the report's table.
func handshakeError(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "Failed to read any lines from plugin's stdout"), strings.Contains(msg, "plugin exited before we could connect"):
		return errors.New("go-plugin handshake failed: the plugin exited or closed standard output without printing the handshake line")
	case strings.HasPrefix(msg, "Unrecognized remote plugin message: "):
		line, _, _ := strings.Cut(strings.TrimPrefix(msg, "Unrecognized remote plugin message: "), "\n")
		return fmt.Errorf("go-plugin handshake failed: the plugin printed %q on standard output instead of the handshake line (a plugin logs to standard error)", line)
	}
	return fmt.Errorf("go-plugin handshake failed: %v", err)
}
