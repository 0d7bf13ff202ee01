package conformance_test

// These tests run the kit against real plugin processes: the repository's
// test plugin, honest and built with each of its faults, to show that every
// check passes a plugin that keeps the contract and fails one that breaks it.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilml/vigil/sdk"
	"github.com/vigilml/vigil/sdk/conformance"
)

// variant is the test plugin of one kind with one fault (set through the
// environment, TESTPLUGIN_FAULT).
type variant struct{ kind, fault string }

var built = map[variant]string{} // the honest build of each kind

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vigil-conformance-")
	if err != nil {
		panic(err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		fail []string
		sem  = make(chan struct{}, 2)
	)
	for _, kind := range []string{"detector", "provider", "vectorstore"} {
		v := variant{kind, ""}
		out := filepath.Join(dir, "test-"+v.kind)
		built[v] = out
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cmd := exec.Command("go", "build", "-ldflags", "-X main.kind="+v.kind, "-o", out, "../../test/plugins/testplugin")
			if b, err := cmd.CombinedOutput(); err != nil {
				mu.Lock()
				fail = append(fail, fmt.Sprintf("build %s: %v\n%s", out, err, b))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(fail) > 0 {
		fmt.Fprintln(os.Stderr, strings.Join(fail, "\n"))
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// The kit's own entry points, as a plugin author calls them.
func TestDetectorConforms(t *testing.T) {
	conformance.RunDetector(t, built[variant{"detector", ""}])
}

func TestProviderConforms(t *testing.T) {
	conformance.RunProvider(t, built[variant{"provider", ""}])
}

func TestVectorStoreConforms(t *testing.T) {
	conformance.RunVectorStore(t, built[variant{"vectorstore", ""}])
}

// TestEveryCheckRuns makes sure the honest plugins go through the whole
// list (a check that silently stopped running would pass the tests above).
func TestEveryCheckRuns(t *testing.T) {
	want := map[string][]string{
		"detector": {"refuses-to-run-by-hand", "handshake", "info", "configure-empty", "health",
			"detector/describe", "detector/identical/mean/numeric", "detector/shifted/mean/numeric",
			"detector/empty-sample/mean/numeric", "detector/nan-value/mean/numeric", "detector/inf-value/mean/numeric",
			"detector/identical/tvd/categorical", "detector/shifted/tvd/categorical", "detector/empty-sample/tvd/categorical",
			"detector/unknown-method", "detector/large-sample", "survives", "shutdown"},
		"provider": {"provider/models", "provider/chat", "provider/chat-stream", "provider/chat-stream-cancelled", "provider/chat-unknown-model",
			"provider/chat-no-messages", "provider/embed", "provider/embed-no-input", "provider/count-tokens", "survives", "shutdown"},
		"vectorstore": {"vectorstore/create/cosine", "vectorstore/create/dot", "vectorstore/create/l2",
			"vectorstore/upsert/cosine", "vectorstore/query-order/cosine", "vectorstore/query-order/dot", "vectorstore/query-order/l2",
			"vectorstore/filter-eq", "vectorstore/filter-range", "vectorstore/filter-and", "vectorstore/filter-or",
			"vectorstore/stats", "vectorstore/wrong-dimension", "vectorstore/nan-vector", "vectorstore/bad-k",
			"vectorstore/unknown-collection", "vectorstore/delete-ids", "vectorstore/delete-filter", "vectorstore/drop", "survives", "shutdown"},
	}
	for kind, names := range want {
		t.Run(kind, func(t *testing.T) {
			rep := conformance.Check(context.Background(), built[variant{kind, ""}], conformance.Options{Kind: sdk.Kind(kind)})
			got := map[string]conformance.Status{}
			for _, r := range rep.Results {
				got[r.Name] = r.Status
			}
			for _, n := range names {
				if got[n] != conformance.Pass {
					t.Errorf("check %s: status %q, want PASS", n, got[n])
				}
			}
			if rep.Name != "test-"+kind || rep.Kind != kind || rep.Version != "0.0.1-test" {
				t.Errorf("report identifies the plugin as %q %q %q", rep.Name, rep.Kind, rep.Version)
			}
		})
	}
}

// TestChecksFail builds the test plugin with each fault and checks that
// the check aimed at it fails, with a reason that says why.
func TestChecksFail(t *testing.T) {
	cases := []struct {
		v      variant
		check  string
		reason string
	}{
		{variant{"detector", "hang-by-hand"}, "refuses-to-run-by-hand", "did not exit within 5s"},
		{variant{"detector", "bad-version"}, "info", `version "latest" is not a semantic version`},
		{variant{"detector", "long-name"}, "info", `is not valid (1-63 of a-z`},
		{variant{"provider", "bad-capability"}, "info", `capability "tool" is not a provider capability`},
		{variant{"detector", "config-required"}, "configure-empty", "greeting: is required"},
		{variant{"detector", "orphan"}, "shutdown", "still running after it exited"},
		{variant{"detector", "bad-describe"}, "detector/describe", "must list the data types"},
		{variant{"detector", "always-drift"}, "detector/identical/mean/numeric", "identical samples reported as drifted"},
		{variant{"detector", "never-drift"}, "detector/shifted/mean/numeric", "not reported as drifted"},
		{variant{"detector", "nan"}, "detector/identical/mean/numeric", "the statistic is NaN"},
		{variant{"detector", "lax"}, "detector/empty-sample/mean/numeric", "the call succeeded; expected an error of class invalid_request"},
		{variant{"detector", "lax"}, "detector/nan-value/mean/numeric", "the call succeeded"},
		{variant{"detector", "lax"}, "detector/unknown-method", "the call succeeded"},
		{variant{"detector", "small-limit"}, "detector/large-sample", "with 100000 values per sample"},
		{variant{"detector", "crash-on-invalid"}, "survives", "exited"},
		{variant{"provider", "no-usage"}, "provider/chat-stream", "last event carries no usage"},
		{variant{"provider", "bad-embed"}, "provider/embed", "differ in dimension"},
		{variant{"provider", "untyped"}, "provider/chat-unknown-model", "got class internal"},
		{variant{"provider", "ignore-cancel"}, "provider/chat-stream-cancelled", "got no answer within the call timeout"},
		// A provider that needs settings, checked without them: the
		// failure says how to give them.
		{variant{"provider", "needs-key"}, "provider/chat", "no configuration was given: if the plugin needs settings (an API key, a base_url), give them with -config FILE (Options.Config in Go)"},
		{variant{"provider", "needs-key"}, "provider/embed", "no API key configured"}, // the hint was given once, above
		{variant{"vectorstore", "bad-order"}, "vectorstore/query-order/cosine", "not ordered best first"},
		{variant{"vectorstore", "ignore-filter"}, "vectorstore/filter-eq", "matched [r1 r2 r3 r4 r5]"},
		{variant{"vectorstore", "untyped"}, "vectorstore/unknown-collection", "got class internal"},
		// A plugin of another kind than asked for.
		{variant{"provider", ""}, "info", `kind is "provider", expected "detector"`},
	}
	reports := map[variant]*conformance.Report{}
	var mu sync.Mutex
	report := func(v variant) *conformance.Report {
		mu.Lock()
		defer mu.Unlock()
		if r, ok := reports[v]; ok {
			return r
		}
		kind := sdk.Kind(v.kind)
		if v.fault == "" {
			kind = sdk.KindDetector // the wrong-kind case
		}
		opts := conformance.Options{Kind: kind, Env: []string{"TESTPLUGIN_FAULT=" + v.fault}}
		if v.fault == "ignore-cancel" {
			// Its Chat after the cancelled stream never answers: fail
			// it sooner than the default 30s, still well above the 3s
			// its uncancelled stream takes.
			opts.CallTimeout = 10 * time.Second
		}
		r := conformance.Check(context.Background(), built[variant{v.kind, ""}], opts)
		reports[v] = r
		return r
	}
	for _, c := range cases {
		t.Run(c.v.fault+"/"+c.check, func(t *testing.T) {
			rep := report(c.v)
			if !rep.Failed() {
				t.Fatalf("the plugin with fault %q passed every check", c.v.fault)
			}
			for _, r := range rep.Results {
				if r.Name != c.check {
					continue
				}
				if r.Status != conformance.Fail {
					t.Fatalf("check %s: status %s, want FAIL", c.check, r.Status)
				}
				if !strings.Contains(r.Reason, c.reason) {
					t.Fatalf("check %s failed with %q, want a reason containing %q", c.check, r.Reason, c.reason)
				}
				return
			}
			t.Fatalf("check %s did not run; results: %+v", c.check, rep.Results)
		})
	}
}

// TestNeedsSettings: the provider that needs an API key conforms once it
// is given one, and its failures then carry no hint about settings.
// TestSettingsHintOnce: a provider run without the settings it needs
// fails every call, and the hint to give them is in the first failure
// only, not repeated on every line of the report.
func TestSettingsHintOnce(t *testing.T) {
	rep := conformance.Check(context.Background(), built[variant{"provider", ""}], conformance.Options{
		Kind: sdk.KindProvider, Env: []string{"TESTPLUGIN_FAULT=needs-key"}})
	failed, hinted := 0, 0
	for _, r := range rep.Results {
		if r.Status == conformance.Fail {
			failed++
			if strings.Contains(r.Reason, "give them with -config FILE") {
				hinted++
			}
		}
	}
	if failed < 2 || hinted != 1 {
		t.Errorf("%d failures, %d with the settings hint; want several, one", failed, hinted)
	}
}

func TestNeedsSettings(t *testing.T) {
	rep := conformance.Check(context.Background(), built[variant{"provider", ""}], conformance.Options{
		Kind: sdk.KindProvider, Env: []string{"TESTPLUGIN_FAULT=needs-key"}, Config: map[string]any{"api_key": "k"}})
	for _, r := range rep.Results {
		if r.Status == conformance.Fail {
			t.Errorf("%s failed: %s", r.Name, r.Reason)
		}
	}
}

// TestNotAPlugin: a binary that is no plugin fails the handshake, and the
// run stops there.
func TestNotAPlugin(t *testing.T) {
	hello := filepath.Join(t.TempDir(), "hello")
	if err := os.WriteFile(hello, []byte("#!/bin/sh\necho hello\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/bin/true": "exited or closed standard output without printing the handshake line",
		hello:       `printed "hello" on standard output instead of the handshake line`,
	} {
		rep := conformance.Check(context.Background(), path, conformance.Options{})
		if !rep.Failed() {
			t.Fatalf("%s passed", path)
		}
		last := rep.Results[len(rep.Results)-1]
		if last.Name != "handshake" || last.Status != conformance.Fail {
			t.Fatalf("%s: last result %+v, want a failed handshake", path, last)
		}
		// One line that says what the binary did: the report is a table.
		if !strings.Contains(last.Reason, want) || strings.Contains(last.Reason, "\n") {
			t.Errorf("%s: reason %q, want one line saying %q", path, last.Reason, want)
		}
	}
}

// TestGoExampleConforms runs the kit against the Go example detector that
// docs/plugins.md walks through.
func TestGoExampleConforms(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "mean-shift")
	if out, err := exec.Command("go", "build", "-o", bin, "../examples/meanshift").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	conformance.RunDetector(t, bin)
}

// TestPythonExampleConforms runs the kit against the Python SDK's example
// detector, packed as it would be shipped, under Debian's /usr/bin/python3.
func TestPythonExampleConforms(t *testing.T) {
	const python = "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import grpc, google.protobuf, cryptography").CombinedOutput(); err != nil {
		t.Fatalf("the Python SDK needs Debian's python3-grpcio, python3-protobuf and python3-cryptography under %s "+
			"(make test-deps as root installs them): %v: %s", python, err, out)
	}
	bin := filepath.Join(t.TempDir(), "py-mean-shift")
	if out, err := exec.Command(python, "../python/pack.py", "../python/examples/mean_shift.py", "-o", bin).CombinedOutput(); err != nil {
		t.Fatalf("pack: %v\n%s", err, out)
	}
	conformance.RunDetector(t, bin)
}

// TestPythonPlumbingFaults shows the health and shutdown checks fail: the
// Python test plugin built to answer NOT_SERVING, and to serve no
// go-plugin controller (so it has to be killed).
func TestPythonPlumbingFaults(t *testing.T) {
	const python = "/usr/bin/python3"
	bin := filepath.Join(t.TempDir(), "py-test")
	if out, err := exec.Command(python, "../python/pack.py", "../../test/plugins/pyplugin/main.py", "-o", bin).CombinedOutput(); err != nil {
		t.Fatalf("pack (needs python3-grpcio, python3-protobuf, python3-cryptography under %s): %v\n%s", python, err, out)
	}
	for _, c := range []struct{ fault, check, reason string }{
		{"unhealthy", "health", "NOT_SERVING, expected SERVING"},
		{"no-controller", "shutdown", "did not exit when asked"},
	} {
		t.Run(c.fault, func(t *testing.T) {
			rep := conformance.Check(context.Background(), bin, conformance.Options{Env: []string{"PYPLUGIN_FAULT=" + c.fault}})
			for _, r := range rep.Results {
				if r.Name == c.check {
					if r.Status != conformance.Fail || !strings.Contains(r.Reason, c.reason) {
						t.Fatalf("check %s: %s %q, want FAIL with %q", c.check, r.Status, r.Reason, c.reason)
					}
					return
				}
			}
			t.Fatalf("check %s did not run: %+v", c.check, rep.Results)
		})
	}
}
