package pluginhost

// Host ↔ Python plugin: the SDK in sdk/python, its example detector and a
// Python test plugin (test/plugins/pyplugin), packed into single-file
// executables with sdk/python/pack.py and run as real processes under
// Debian's /usr/bin/python3, through go-plugin with AutoMTLS.

import (
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// PythonInterpreter is the Python that has Debian's grpcio.
const pythonInterpreter = "/usr/bin/python3"

var (
	pyOnce  sync.Once
	pyBuilt map[string]string
	pyErr   error
)

// pythonPlugins packs the Python plugins once per test binary.
func pythonPlugins(t *testing.T) map[string]string {
	t.Helper()
	pyOnce.Do(func() {
		out, err := exec.Command(pythonInterpreter, "-c", "import grpc, google.protobuf, cryptography").CombinedOutput()
		if err != nil {
			pyErr = errors.New("the Python SDK needs Debian's python3-grpcio, python3-protobuf and python3-cryptography under " +
				pythonInterpreter + " (run `make test-deps` as root, or apt-get install python3-grpcio python3-protobuf python3-cryptography): " +
				err.Error() + ": " + strings.TrimSpace(string(out)))
			return
		}
		dir, err := os.MkdirTemp("", "vigil-pyplugins-")
		if err != nil {
			pyErr = err
			return
		}
		pyBuilt = map[string]string{}
		for name, src := range map[string]string{
			"py-mean-shift": "../../sdk/python/examples/mean_shift.py",
			"py-test":       "../../test/plugins/pyplugin/main.py",
			"py-openai":     "../../sdk/python/examples/openai_compat.py",
		} {
			bin := filepath.Join(dir, name)
			if out, err := exec.Command(pythonInterpreter, "../../sdk/python/pack.py", src, "-o", bin).CombinedOutput(); err != nil {
				pyErr = errors.New("pack " + src + ": " + err.Error() + ": " + string(out))
				return
			}
			pyBuilt[name] = bin
		}
	})
	if pyErr != nil {
		t.Fatal(pyErr)
	}
	return pyBuilt
}

// pyHost runs a host with the named Python plugin registered.
func pyHost(t *testing.T, name string, cfg func(*Config)) (*Host, string) {
	t.Helper()
	bins := pythonPlugins(t)
	dir := t.TempDir()
	copyFile(t, bins[name], filepath.Join(dir, name))
	c := testConfig(dir)
	// A Python plugin starts an interpreter, unpacks its zipapp and makes
	// a certificate: on a loaded 2-core machine that took over the 5 s
	// the Go plugins' tests allow.
	c.StartTimeout = 30 * time.Second
	if cfg != nil {
		cfg(&c)
	}
	h := newHost(t, c, "")
	e, err := h.Register(context.Background(), filepath.Join(dir, name), "")
	if err != nil {
		t.Fatal(err)
	}
	kind := "detector"
	if name == "py-openai" {
		kind = "provider"
	}
	if e.Name != name || e.Kind != kind {
		t.Fatalf("registered %+v", e)
	}
	return h, dir
}

func pyDetect(h *Host, name string, req *sdk.DetectRequest) (*pb.DetectResponse, error) {
	var resp *pb.DetectResponse
	err := h.WithDetector(context.Background(), name, "Detect", func(ctx context.Context, c sdk.DetectorClient) error {
		var err error
		resp, err = c.Detect(ctx, req)
		return err
	})
	return resp, err
}

func wantFieldError(t *testing.T, err error, field string) {
	t.Helper()
	var e *sdk.Error
	if !errors.As(err, &e) || e.Class != sdk.InvalidRequest || e.Field != field {
		t.Errorf("error %v: want invalid_request naming field %q", err, field)
	}
}

func TestPythonDetectorRoundTrip(t *testing.T) {
	h, _ := pyHost(t, "py-mean-shift", func(c *Config) {
		c.Config = map[string]map[string]any{"py-mean-shift": {"min_samples": 10}}
	})
	ctx := context.Background()

	// Info and Configure happen at start.
	var info *pb.InfoResponse
	var desc *pb.DescribeResponse
	err := h.WithDetector(ctx, "py-mean-shift", "Describe", func(ctx context.Context, c sdk.DetectorClient) error {
		var err error
		if info, err = c.Info(ctx); err != nil {
			return err
		}
		if ferrs, err := c.Configure(ctx, map[string]any{"min_samples": 1.5, "colour": "red"}); err != nil || len(ferrs) != 2 {
			t.Errorf("Configure with two bad keys: %v, %+v", err, ferrs)
		}
		if ferrs, err := c.Configure(ctx, map[string]any{"min_samples": 10}); err != nil || len(ferrs) != 0 {
			t.Errorf("Configure with a good config: %v, %+v", err, ferrs)
		}
		desc, err = c.Describe(ctx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if info.GetName() != "py-mean-shift" || info.GetKind() != "detector" || info.GetVersion() != "1.0.0" ||
		info.GetContractVersion() != 1 || len(info.GetCapabilities()) != 1 {
		t.Errorf("Info = %v", info)
	}
	if s := status(t, h, "py-mean-shift"); s.Version != "1.0.0" || s.State != StateRunning {
		t.Errorf("status = %+v", s)
	}
	if len(desc.GetMethods()) != 2 {
		t.Fatalf("Describe = %v", desc)
	}
	welch := desc.GetMethods()[1]
	if welch.GetName() != "welch_t" || !welch.GetHasPValue() || welch.GetDirection() != pb.Direction_P_VALUE_BELOW ||
		welch.GetDefaultThreshold() != 0.01 || len(welch.GetDataTypes()) != 1 || welch.GetDataTypes()[0] != pb.DataType_NUMERIC {
		t.Errorf("welch_t = %v", welch)
	}

	// Detect: both methods, default and explicit thresholds, details.
	ref, cur := normal(5000, 0, 1), normal(5000, 1, 2)
	resp, err := pyDetect(h, "py-mean-shift", &sdk.DetectRequest{Method: "mean_shift", DataType: pb.DataType_NUMERIC, ReferenceNumeric: ref, CurrentNumeric: cur})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.GetDrifted() || math.Abs(resp.GetStatistic()-1) > 0.1 || resp.GetThreshold() != 0.5 ||
		resp.GetDirection() != pb.Direction_STATISTIC_ABOVE || resp.PValue != nil || resp.GetMethod() != "mean_shift" {
		t.Errorf("mean_shift = %v", resp)
	}
	if n := resp.GetDetails().GetFields()["n_current"].GetNumberValue(); n != 5000 {
		t.Errorf("details = %v", resp.GetDetails())
	}
	thr := 2.0
	resp, err = pyDetect(h, "py-mean-shift", &sdk.DetectRequest{Method: "mean_shift", DataType: pb.DataType_NUMERIC, ReferenceNumeric: ref, CurrentNumeric: cur, Threshold: &thr})
	if err != nil || resp.GetDrifted() || resp.GetThreshold() != 2 {
		t.Errorf("mean_shift with threshold 2: %v, %v", resp, err)
	}
	resp, err = pyDetect(h, "py-mean-shift", &sdk.DetectRequest{Method: "welch_t", DataType: pb.DataType_NUMERIC, ReferenceNumeric: ref, CurrentNumeric: ref})
	if err != nil || resp.PValue == nil || resp.GetPValue() != 1 || resp.GetDrifted() || resp.GetDirection() != pb.Direction_P_VALUE_BELOW {
		t.Errorf("welch_t on identical samples: %v, %v", resp, err)
	}

	// A million values a side crosses many chunks.
	big := normal(1_000_000, 0, 3)
	resp, err = pyDetect(h, "py-mean-shift", &sdk.DetectRequest{Method: "mean_shift", DataType: pb.DataType_NUMERIC, ReferenceNumeric: big, CurrentNumeric: normal(1_000_000, 0.2, 4)})
	if err != nil {
		t.Fatal(err)
	}
	if n := resp.GetDetails().GetFields()["n_reference"].GetNumberValue(); n != 1_000_000 || resp.GetDrifted() {
		t.Errorf("10^6 values: %v", resp)
	}

	// Bad input: typed errors naming the field, across languages.
	_, err = pyDetect(h, "py-mean-shift", &sdk.DetectRequest{Method: "mean_shift", DataType: pb.DataType_NUMERIC, ReferenceNumeric: ref})
	wantFieldError(t, err, "current")
	nan := append([]float64(nil), cur...)
	nan[5] = math.NaN()
	_, err = pyDetect(h, "py-mean-shift", &sdk.DetectRequest{Method: "mean_shift", DataType: pb.DataType_NUMERIC, ReferenceNumeric: ref, CurrentNumeric: nan})
	wantFieldError(t, err, "current[5]")
	_, err = pyDetect(h, "py-mean-shift", &sdk.DetectRequest{Method: "median", DataType: pb.DataType_NUMERIC, ReferenceNumeric: ref, CurrentNumeric: cur})
	wantFieldError(t, err, "method")
	_, err = pyDetect(h, "py-mean-shift", &sdk.DetectRequest{Method: "mean_shift", DataType: pb.DataType_NUMERIC, ReferenceNumeric: ref[:5], CurrentNumeric: cur})
	wantFieldError(t, err, "reference") // min_samples 10 from the configuration
	_, err = pyDetect(h, "py-mean-shift", &sdk.DetectRequest{Method: "mean_shift", DataType: pb.DataType_CATEGORICAL, ReferenceCategorical: []string{"a"}, CurrentCategorical: []string{"b"}})
	wantFieldError(t, err, "data_type")
	_, err = pyDetect(h, "py-mean-shift", &sdk.DetectRequest{Method: "mean_shift", DataType: pb.DataType_NUMERIC, ReferenceNumeric: ref, CurrentCategorical: []string{"b"}})
	wantFieldError(t, err, "data_type")
}

func TestPythonConfigureRejected(t *testing.T) {
	h, _ := pyHost(t, "py-mean-shift", func(c *Config) {
		c.Config = map[string]map[string]any{"py-mean-shift": {"min_samples": 1}}
	})
	_, err := pyDetect(h, "py-mean-shift", &sdk.DetectRequest{Method: "mean_shift"})
	if classOf(t, err) != sdk.Unavailable {
		t.Fatalf("call to a plugin that rejected its config: %v", err)
	}
	s := status(t, h, "py-mean-shift")
	if !strings.Contains(s.LastError, "plugins.config.py-mean-shift.min_samples: must be a whole number of at least 2") {
		t.Errorf("last error %q does not name the field", s.LastError)
	}
}

func TestPythonTypedErrors(t *testing.T) {
	h, _ := pyHost(t, "py-test", nil)
	do := func(what string) error {
		_, err := pyDetect(h, "py-test", &sdk.DetectRequest{Method: "echo", DataType: pb.DataType_NUMERIC,
			ReferenceNumeric: []float64{1}, CurrentNumeric: []float64{2}, Params: map[string]any{"do": what}})
		return err
	}
	var e *sdk.Error
	if err := do("rate_limited"); !errors.As(err, &e) || e.Class != sdk.RateLimited || e.RetryAfter != 1500*time.Millisecond || e.Message != "slow down" {
		t.Errorf("rate_limited: %#v", err)
	}
	if err := do("overloaded"); !errors.As(err, &e) || e.Class != sdk.Overloaded || e.RetryAfter != 250*time.Millisecond {
		t.Errorf("overloaded: %#v", err)
	}
	pid := status(t, h, "py-test").PID
	if err := do("bug"); !errors.As(err, &e) || e.Class != sdk.Internal || !strings.Contains(e.Message, "ZeroDivisionError") {
		t.Errorf("a Python exception: %#v", err)
	}
	if err := do("nan"); !errors.As(err, &e) || e.Class != sdk.Internal || !strings.Contains(e.Message, "invalid result: statistic nan") {
		t.Errorf("a NaN statistic: %#v", err)
	}
	// The plugin survives its own bugs.
	resp, err := pyDetect(h, "py-test", &sdk.DetectRequest{Method: "echo", DataType: pb.DataType_CATEGORICAL,
		ReferenceCategorical: []string{"a"}, CurrentCategorical: []string{"a", "b", "b"}})
	if err != nil || resp.GetStatistic() != 2 || !resp.GetDrifted() {
		t.Errorf("categorical echo: %v, %v", resp, err)
	}
	if s := status(t, h, "py-test"); s.PID != pid || s.Restarts != 0 {
		t.Errorf("plugin restarted after handled errors: %+v (pid was %d)", s, pid)
	}
	// A call that outlives the deadline is a timeout, on the Go side.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = h.WithDetector(ctx, "py-test", "Detect", func(ctx context.Context, c sdk.DetectorClient) error {
		_, err := c.Detect(ctx, &sdk.DetectRequest{Method: "echo", DataType: pb.DataType_NUMERIC, ReferenceNumeric: []float64{1},
			CurrentNumeric: []float64{1}, Params: map[string]any{"do": "sleep", "seconds": 2.0}})
		return err
	})
	if classOf(t, err) != sdk.Timeout {
		t.Errorf("slow call: %v", err)
	}
}

func TestPythonKill9DuringCalls(t *testing.T) {
	h, _ := pyHost(t, "py-test", func(c *Config) { c.Start = "boot" })
	before := waitState(t, h, "py-test", StateRunning)
	req := &sdk.DetectRequest{Method: "echo", DataType: pb.DataType_NUMERIC, ReferenceNumeric: normal(20_000, 0, 1), CurrentNumeric: normal(20_000, 0, 2)}
	var (
		wg      sync.WaitGroup
		stop    = make(chan struct{})
		mu      sync.Mutex
		classes = map[sdk.Class]int{}
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := pyDetect(h, "py-test", req)
				mu.Lock()
				if err != nil {
					classes[sdk.ClassOf(err)]++
					if sdk.ClassOf(err) != sdk.Unavailable {
						t.Logf("call failed: %v", err)
					}
				} else {
					classes["ok"]++
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	if err := syscall.Kill(before.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	after := waitRestarted(t, h, "py-test", before.PID)
	// Keep calling until the new process has answered some calls.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		ok := classes["ok"]
		mu.Unlock()
		if _, err := pyDetect(h, "py-test", req); err == nil && ok > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	for c, n := range classes {
		if c != "ok" && c != sdk.Unavailable {
			t.Errorf("%d calls failed with class %s; only unavailable is expected", n, c)
		}
	}
	if classes["ok"] == 0 || classes[sdk.Unavailable] == 0 {
		t.Errorf("calls by outcome = %v; want successes and unavailable around the kill", classes)
	}
	if alive(before.PID) {
		t.Errorf("killed plugin %d still alive", before.PID)
	}
	if after.Restarts != 1 {
		t.Errorf("restarts = %d, want 1", after.Restarts)
	}
}

// TestPythonConfigureWithoutOverride: a Python plugin that does not
// override configure names each key it is given, as a Go one does.
func TestPythonConfigureWithoutOverride(t *testing.T) {
	h, _ := pyHost(t, "py-test", func(c *Config) {
		c.Config = map[string]map[string]any{"py-test": {"colour": "red", "alpha": 0.1}}
	})
	_, err := pyDetect(h, "py-test", &sdk.DetectRequest{Method: "mean"})
	for _, want := range []string{"plugins.config.py-test.alpha: this plugin takes no configuration", "plugins.config.py-test.colour: this plugin takes no configuration"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("configuration given to a Python plugin that takes none: %v; want %q", err, want)
		}
	}
}

// TestPythonCheckFinite: vp.check_finite answers every value that is not
// a finite number with a FieldError naming it, strings included (a
// categorical sample given to a numeric method), as its docstring says;
// a TypeError would reach the agent as class internal.
func TestPythonCheckFinite(t *testing.T) {
	pythonPlugins(t) // Debian's grpcio is there
	script := `
import math, sys
import vigil_plugin as vp
for values, want in [([1.0, 2, -3.5], None), ([], "current"), ([1.0, math.nan], "current[1]"),
                     ([math.inf], "current[0]"), (["DE", "FR"], "current[0]"), ([1.0, True], "current[1]"),
                     ([1.0, None], "current[1]")]:
    try:
        vp.check_finite("current", values)
        got = None
    except vp.FieldError as e:
        got = e.field
    except Exception as e:
        got = "%s: %s" % (type(e).__name__, e)
    if got != want:
        print("check_finite(%r): got %r, want a FieldError naming %r" % (values, got, want))
        sys.exit(1)
`
	cmd := exec.Command(pythonInterpreter, "-c", script)
	cmd.Env = append(os.Environ(), "PYTHONPATH=../../sdk/python")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%v: %s", err, out)
	}
}
