package pluginhost

// These tests run real plugin processes: the test plugin in
// test/plugins/testplugin, built once per kind in TestMain, launched through
// go-plugin with AutoMTLS exactly as the agent does.

import (
	"context"
	"errors"
	"fmt"
	vtest "github.com/vigilml/vigil/internal/testutil"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

var builtPlugins = map[string]string{} // kind -> binary

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vigil-plugins-")
	if err != nil {
		panic(err)
	}
	for _, kind := range []string{"detector", "provider", "vectorstore"} {
		out := filepath.Join(dir, "test-"+kind)
		cmd := exec.Command("go", "build", "-ldflags", "-X main.kind="+kind, "-o", out, "../../test/plugins/testplugin")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build test plugin:", err)
			os.Exit(1)
		}
		builtPlugins[kind] = out
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testConfig is fast enough for tests: short backoffs and timeouts.
func testConfig(dir string) Config {
	c := DefaultConfig()
	c.Dirs = []string{dir}
	c.StartTimeout = 5 * time.Second
	c.CallTimeout = 10 * time.Second
	c.HealthInterval = 200 * time.Millisecond
	c.MinBackoff = 50 * time.Millisecond
	c.MaxBackoff = 200 * time.Millisecond
	c.CrashBudget = 3
	c.CrashWindow = time.Minute
	return c
}

// install copies the built plugins into a fresh plugin directory.
func install(t *testing.T, kinds ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, k := range kinds {
		copyFile(t, builtPlugins[k], filepath.Join(dir, "test-"+k))
	}
	return dir
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func newHost(t *testing.T, cfg Config, devDir string) *Host {
	t.Helper()
	return newHostLogging(t, cfg, devDir, slog.New(slog.DiscardHandler))
}

// newHostLogging is newHost with the host's log going to logger. Closing
// the host at the test's end must leave no plugin process alive.
func newHostLogging(t *testing.T, cfg Config, devDir string, logger *slog.Logger) *Host {
	t.Helper()
	h, err := New(cfg, Options{CatalogPath: filepath.Join(t.TempDir(), "plugins.db"), DevDir: devDir, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pids := h.pids()
		h.Close()
		for _, pid := range pids {
			if alive(pid) {
				t.Errorf("plugin process %d still alive after Close", pid)
			}
		}
	})
	return h
}

func (h *Host) pids() []int {
	var out []int
	for _, s := range h.List() {
		if s.PID > 0 {
			out = append(out, s.PID)
		}
	}
	return out
}

// alive reports whether a process exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state is the field after the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}

func status(t *testing.T, h *Host, name string) Status {
	t.Helper()
	for _, s := range h.List() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no plugin %q in %+v", name, h.List())
	return Status{}
}

func waitState(t *testing.T, h *Host, name string, want State) Status {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if s := status(t, h, name); s.State == want {
			return s
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("plugin %q never reached state %s; now %+v", name, want, status(t, h, name))
	return Status{}
}

// waitRestarted waits until the plugin runs again in a new process.
func waitRestarted(t *testing.T, h *Host, name string, oldPID int) Status {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if s := status(t, h, name); s.State == StateRunning && s.PID != oldPID && s.PID != 0 {
			return s
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("plugin %q did not come back in a new process; now %+v", name, status(t, h, name))
	return Status{}
}

func classOf(t *testing.T, err error) sdk.Class {
	t.Helper()
	var e *sdk.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *sdk.Error", err, err)
	}
	return e.Class
}

func detect(h *Host, req *sdk.DetectRequest) (*pb.DetectResponse, error) {
	var resp *pb.DetectResponse
	err := h.WithDetector(context.Background(), "test-detector", "Detect", func(ctx context.Context, c sdk.DetectorClient) error {
		var err error
		resp, err = c.Detect(ctx, req)
		return err
	})
	return resp, err
}

func normal(n int, mean float64, seed uint64) []float64 {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]float64, n)
	for i := range out {
		out[i] = r.NormFloat64() + mean
	}
	return out
}

func TestDetectorRoundTrip(t *testing.T) {
	dir := install(t, "detector")
	h := newHost(t, testConfig(dir), "")
	e, err := h.Register(context.Background(), filepath.Join(dir, "test-detector"), "")
	if err != nil {
		t.Fatal(err)
	}
	if e.Name != "test-detector" || e.Kind != "detector" || len(e.SHA256) != 64 {
		t.Errorf("entry = %+v", e)
	}

	var desc *pb.DescribeResponse
	err = h.WithDetector(context.Background(), "test-detector", "Describe", func(ctx context.Context, c sdk.DetectorClient) error {
		var err error
		desc, err = c.Describe(ctx)
		return err
	})
	if err != nil || len(desc.GetMethods()) != 2 || desc.GetMethods()[0].GetDirection() != pb.Direction_STATISTIC_ABOVE {
		t.Fatalf("Describe = %v, %v", desc, err)
	}

	tests := []struct {
		name    string
		req     *sdk.DetectRequest
		drifted bool
		class   sdk.Class
		field   string
	}{
		{"no drift", &sdk.DetectRequest{Method: "mean", DataType: pb.DataType_NUMERIC, ReferenceNumeric: normal(1000, 0, 1), CurrentNumeric: normal(1000, 0, 2)}, false, "", ""},
		{"drift", &sdk.DetectRequest{Method: "mean", DataType: pb.DataType_NUMERIC, ReferenceNumeric: normal(1000, 0, 1), CurrentNumeric: normal(1000, 1, 2)}, true, "", ""},
		{"a million values, chunked", &sdk.DetectRequest{Method: "mean", DataType: pb.DataType_NUMERIC, ReferenceNumeric: normal(1_000_000, 0, 3), CurrentNumeric: normal(1_000_000, 2, 4)}, true, "", ""},
		{"categorical", &sdk.DetectRequest{Method: "tvd", DataType: pb.DataType_CATEGORICAL, ReferenceCategorical: []string{"a", "a", "b"}, CurrentCategorical: []string{"b", "b", "b"}}, true, "", ""},
		{"empty sample", &sdk.DetectRequest{Method: "mean", DataType: pb.DataType_NUMERIC, CurrentNumeric: []float64{1}}, false, sdk.InvalidRequest, "reference"},
		{"NaN", &sdk.DetectRequest{Method: "mean", DataType: pb.DataType_NUMERIC, ReferenceNumeric: []float64{1, 2}, CurrentNumeric: []float64{1, 2, 3, math.NaN()}}, false, sdk.InvalidRequest, "current[3]"},
		{"unknown method", &sdk.DetectRequest{Method: "nope", ReferenceNumeric: []float64{1}, CurrentNumeric: []float64{1}}, false, sdk.InvalidRequest, "method"},
		{"panic in the plugin", &sdk.DetectRequest{Method: "mean", Params: map[string]any{"panic": true}}, false, sdk.Internal, ""},
	}
	pid := status(t, h, "test-detector").PID
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := detect(h, tt.req)
			if tt.class != "" {
				if err == nil {
					t.Fatalf("Detect succeeded: %v", resp)
				}
				if got := classOf(t, err); got != tt.class {
					t.Errorf("class = %s, want %s (%v)", got, tt.class, err)
				}
				// A panic's stack trace goes to the plugin's log, not to
				// the caller (and from there to API clients).
				if strings.Contains(err.Error(), "goroutine ") {
					t.Errorf("the plugin's stack trace reached the caller: %v", err)
				}
				var e *sdk.Error
				errors.As(err, &e)
				if e.Field != tt.field {
					t.Errorf("field = %q, want %q", e.Field, tt.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetDrifted() != tt.drifted {
				t.Errorf("drifted = %v (statistic %v), want %v", resp.GetDrifted(), resp.GetStatistic(), tt.drifted)
			}
		})
	}
	// Bad input, even a panic, never took the plugin down.
	if s := status(t, h, "test-detector"); s.PID != pid || s.State != StateRunning || s.Restarts != 0 {
		t.Errorf("plugin restarted after bad input: %+v (pid was %d)", s, pid)
	}
	resp, err := detect(h, tests[4].req)
	_ = resp
	if err == nil {
		t.Fatal("expected an error")
	}
	got, err := detect(h, &sdk.DetectRequest{Method: "mean", DataType: pb.DataType_NUMERIC, ReferenceNumeric: []float64{0, 1, 2}, CurrentNumeric: []float64{10, 11, 12}, Threshold: ptr(100.0)})
	if err != nil || got.GetDrifted() || got.GetThreshold() != 100 {
		t.Errorf("threshold override: %v %v", got, err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestProviderRoundTrip(t *testing.T) {
	dir := install(t, "provider")
	h := newHost(t, testConfig(dir), "")
	if _, err := h.Register(context.Background(), filepath.Join(dir, "test-provider"), "echo"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	with := func(fn func(ctx context.Context, c sdk.ProviderClient) error) error {
		return h.WithProvider(ctx, "echo", "test", fn)
	}
	if caps, known := h.Capabilities("echo"); known || caps != nil {
		t.Fatalf("capabilities known before the first start: %v", caps)
	}
	err := with(func(ctx context.Context, c sdk.ProviderClient) error {
		if caps, known := h.Capabilities("echo"); !known || !slices.Equal(caps, []string{"chat", "stream", "embeddings"}) {
			return fmt.Errorf("Capabilities once started = %v, %v", caps, known)
		}
		models, err := c.Models(ctx)
		if err != nil || len(models.GetModels()) != 1 || models.GetModels()[0].GetId() != "echo" {
			return fmt.Errorf("Models = %v, %v", models, err)
		}
		chat, err := c.Chat(ctx, &pb.ChatRequest{Model: "echo", Messages: []*pb.Message{{Role: "user", Content: "hello there"}}})
		if err != nil || chat.GetContent() != "echo: hello there" || chat.GetUsage().GetCompletionTokens() != 3 {
			return fmt.Errorf("Chat = %v, %v", chat, err)
		}
		var deltas []string
		var final *pb.ChatEvent
		err = c.ChatStream(ctx, &pb.ChatRequest{Model: "echo", Messages: []*pb.Message{{Role: "user", Content: "a b c"}}}, func(ev *pb.ChatEvent) error {
			if ev.GetFinishReason() != "" {
				final = ev
			} else {
				deltas = append(deltas, ev.GetDelta())
			}
			return nil
		})
		if err != nil || strings.Join(deltas, "") != "echo: a b c" || final.GetUsage().GetCompletionTokens() != 4 {
			return fmt.Errorf("ChatStream = %q, %v, %v", deltas, final, err)
		}
		emb, err := c.Embed(ctx, &pb.EmbedRequest{Model: "echo", Input: []string{"x y", "z"}})
		if err != nil || len(emb.GetEmbeddings()) != 2 || len(emb.GetEmbeddings()[0].GetValues()) != 8 {
			return fmt.Errorf("Embed = %v, %v", emb, err)
		}
		n, err := c.CountTokens(ctx, &pb.CountTokensRequest{Model: "echo", Text: "one two three"})
		if err != nil || n.GetTokens() != 3 {
			return fmt.Errorf("CountTokens = %v, %v", n, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Typed errors cross the process boundary with their class and details.
	tests := []struct {
		model      string
		class      sdk.Class
		retryAfter time.Duration
	}{
		{"ratelimited", sdk.RateLimited, 1500 * time.Millisecond},
		{"overloaded", sdk.Overloaded, 0},
		{"too-long", sdk.ContextLengthExceeded, 0},
		{"no-such-model", sdk.InvalidRequest, 0},
	}
	for _, tt := range tests {
		err := with(func(ctx context.Context, c sdk.ProviderClient) error {
			_, err := c.Chat(ctx, &pb.ChatRequest{Model: tt.model, Messages: []*pb.Message{{Role: "user", Content: "x"}}})
			return err
		})
		var e *sdk.Error
		if !errors.As(err, &e) || e.Class != tt.class || e.RetryAfter != tt.retryAfter {
			t.Errorf("model %s: err = %#v, want class %s retry-after %s", tt.model, err, tt.class, tt.retryAfter)
		}
		// Streams carry the class too.
		err = with(func(ctx context.Context, c sdk.ProviderClient) error {
			return c.ChatStream(ctx, &pb.ChatRequest{Model: tt.model}, func(*pb.ChatEvent) error { return nil })
		})
		if got := classOf(t, err); got != tt.class {
			t.Errorf("stream, model %s: class %s, want %s", tt.model, got, tt.class)
		}
	}
	// Calling a provider as a detector is refused before any call.
	err = h.WithDetector(ctx, "echo", "Detect", func(context.Context, sdk.DetectorClient) error { return nil })
	if classOf(t, err) != sdk.InvalidRequest {
		t.Errorf("kind mismatch: %v", err)
	}
}

func TestVectorStoreRoundTrip(t *testing.T) {
	dir := install(t, "vectorstore")
	h := newHost(t, testConfig(dir), "")
	if _, err := h.Register(context.Background(), filepath.Join(dir, "test-vectorstore"), "mem"); err != nil {
		t.Fatal(err)
	}
	md := func(m map[string]any) *structpb.Struct { s, _ := structpb.NewStruct(m); return s }
	num := func(f float64) *structpb.Value { return structpb.NewNumberValue(f) }
	err := h.WithVectorStore(context.Background(), "mem", "test", func(ctx context.Context, c sdk.VectorStoreClient) error {
		if _, err := c.CreateCollection(ctx, &pb.CreateCollectionRequest{Name: "docs", Dimension: 2, Distance: pb.Distance_COSINE}); err != nil {
			return err
		}
		_, err := c.Upsert(ctx, &pb.UpsertRequest{Collection: "docs", Records: []*pb.Record{
			{Id: "a", Vector: []float32{1, 0}, Text: "alpha", Metadata: md(map[string]any{"lang": "en", "year": 2020})},
			{Id: "b", Vector: []float32{0.9, 0.1}, Text: "beta", Metadata: md(map[string]any{"lang": "de", "year": 2024})},
			{Id: "c", Vector: []float32{0, 1}, Text: "gamma", Metadata: md(map[string]any{"lang": "en", "year": 2025})},
		}})
		if err != nil {
			return err
		}
		q, err := c.Query(ctx, &pb.QueryRequest{Collection: "docs", Vector: []float32{1, 0}, K: 2})
		if err != nil || len(q.GetMatches()) != 2 || q.GetMatches()[0].GetRecord().GetId() != "a" || q.GetMatches()[1].GetRecord().GetId() != "b" {
			return fmt.Errorf("Query = %v, %v", q, err)
		}
		// lang = en AND year >= 2021  ->  only c
		f := &pb.Filter{Kind: &pb.Filter_And{And: &pb.FilterList{Filters: []*pb.Filter{
			{Kind: &pb.Filter_Condition{Condition: &pb.Condition{Field: "lang", Op: pb.Condition_EQ, Value: structpb.NewStringValue("en")}}},
			{Kind: &pb.Filter_Condition{Condition: &pb.Condition{Field: "year", Op: pb.Condition_GTE, Value: num(2021)}}},
		}}}}
		q, err = c.Query(ctx, &pb.QueryRequest{Collection: "docs", Vector: []float32{1, 0}, K: 10, Filter: f})
		if err != nil || len(q.GetMatches()) != 1 || q.GetMatches()[0].GetRecord().GetId() != "c" {
			return fmt.Errorf("filtered Query = %v, %v", q, err)
		}
		d, err := c.Delete(ctx, &pb.DeleteRequest{Collection: "docs", Ids: []string{"a"}, Filter: &pb.Filter{Kind: &pb.Filter_Condition{Condition: &pb.Condition{Field: "lang", Op: pb.Condition_EQ, Value: structpb.NewStringValue("de")}}}})
		if err != nil || d.GetDeleted() != 2 {
			return fmt.Errorf("Delete = %v, %v", d, err)
		}
		st, err := c.Stats(ctx, &pb.StatsRequest{Collection: "docs"})
		if err != nil || st.GetCount() != 1 || st.GetDimension() != 2 {
			return fmt.Errorf("Stats = %v, %v", st, err)
		}
		_, err = c.Upsert(ctx, &pb.UpsertRequest{Collection: "docs", Records: []*pb.Record{{Id: "x", Vector: []float32{1, 2, 3}}}})
		var e *sdk.Error
		if !errors.As(err, &e) || e.Class != sdk.InvalidRequest || e.Field != "records[0].vector" {
			return fmt.Errorf("wrong dimension: %#v", err)
		}
		_, err = c.Query(ctx, &pb.QueryRequest{Collection: "nope", Vector: []float32{1, 0}, K: 1})
		if !errors.As(err, &e) || e.Class != sdk.NotFound {
			return fmt.Errorf("unknown collection: %#v", err)
		}
		_, err = c.DropCollection(ctx, &pb.DropCollectionRequest{Name: "docs"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestChecksumMismatchRefused(t *testing.T) {
	dir := install(t, "detector")
	cfg := testConfig(dir)
	catalog := filepath.Join(t.TempDir(), "plugins.db")
	h, err := New(cfg, Options{CatalogPath: catalog, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "test-detector")
	if _, err := h.Register(context.Background(), path, ""); err != nil {
		t.Fatal(err)
	}
	h.Close()

	// Someone replaces the binary.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte("tampered"))
	f.Close()

	h2, err := New(cfg, Options{CatalogPath: catalog, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	s := status(t, h2, "test-detector")
	if s.State != StateRefused || !strings.Contains(s.LastError, "changed since it was registered") {
		t.Errorf("status = %+v", s)
	}
	_, err = detect(h2, &sdk.DetectRequest{Method: "mean"})
	if classOf(t, err) != sdk.Unavailable || !strings.Contains(err.Error(), "refused") {
		t.Errorf("call to a refused plugin: %v", err)
	}
}

// TestBinarySwappedWhileTrusted replaces a registered binary while the
// agent runs: the next launch is refused (state refused, both hashes
// named), not retried as a crash until the budget is spent.
func TestBinarySwappedWhileTrusted(t *testing.T) {
	dir := install(t, "detector")
	h := newHost(t, testConfig(dir), "")
	path := filepath.Join(dir, "test-detector")
	e, err := h.Register(context.Background(), path, "")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte("tampered"))
	f.Close()
	sum, _ := fileSHA256(path)

	_, err = detect(h, &sdk.DetectRequest{Method: "mean"})
	if classOf(t, err) != sdk.Unavailable {
		t.Errorf("call to a swapped plugin: %v", err)
	}
	s := waitState(t, h, "test-detector", StateRefused)
	for _, want := range []string{path, sum[:12], e.SHA256[:12], "vigil plugins register"} {
		if !strings.Contains(s.LastError, want) {
			t.Errorf("last error %q does not name %q", s.LastError, want)
		}
	}
	if s.Restarts != 0 {
		t.Errorf("a refused binary was restarted: %+v", s)
	}
	_, err = detect(h, &sdk.DetectRequest{Method: "mean"})
	if classOf(t, err) != sdk.Unavailable || !strings.Contains(err.Error(), "refused") {
		t.Errorf("second call to a swapped plugin: %v", err)
	}
	// Marked so that the gateway moves on without retrying it.
	if !errors.Is(err, sdk.ErrNotServing) {
		t.Errorf("a refused plugin's error is not sdk.ErrNotServing: %v", err)
	}
}

// TestBrokenPackageCatalogNamed: the binaries of a directory whose
// catalog.json is ignored say so, not merely that they are unregistered.
func TestBrokenPackageCatalogNamed(t *testing.T) {
	dir := install(t, "detector")
	os.WriteFile(filepath.Join(dir, "catalog.json"), []byte(`{"version": 1, "plugins": [{"name": "test-detector", "kind": "detectors", "file": "test-detector", "sha256": "`+strings.Repeat("ab", 32)+`"}]}`), 0o644)
	h := newHost(t, testConfig(dir), "")
	s := status(t, h, filepath.Join(dir, "test-detector"))
	if s.State != StateUntrusted || !strings.Contains(s.LastError, "catalog.json is ignored") || !strings.Contains(s.LastError, `kind "detectors"`) {
		t.Errorf("binary of a directory with a broken catalog.json: %+v", s)
	}
}

// TestPackageEntryShadowedByRegistered: a package's binary whose name the
// operator registered for another file says so, instead of sending the
// operator to register it (which would replace the other).
func TestPackageEntryShadowedByRegistered(t *testing.T) {
	// Two copies of the test detector, which calls itself test-detector:
	// one named so by the package's catalog.json, the other registered
	// under its own name.
	dir := t.TempDir()
	copyFile(t, builtPlugins["detector"], filepath.Join(dir, "own-detector"))
	copyFile(t, builtPlugins["detector"], filepath.Join(dir, "pkg-detector"))
	sum, err := fileSHA256(filepath.Join(dir, "pkg-detector"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "catalog.json"), []byte(`{"version": 1, "plugins": [{"name": "test-detector", "kind": "detector", "file": "pkg-detector", "sha256": "`+sum+`"}]}`), 0o644)
	cfg := testConfig(dir)
	h := newHost(t, cfg, "")
	if s := status(t, h, "test-detector"); s.Source != "package" || s.Path != filepath.Join(dir, "pkg-detector") {
		t.Fatalf("before registering: %+v", s)
	}
	if _, err := h.Register(context.Background(), filepath.Join(dir, "own-detector"), ""); err != nil {
		t.Fatal(err)
	}
	h.Reload(cfg)
	if s := status(t, h, "test-detector"); s.Source != "registered" || s.Path != filepath.Join(dir, "own-detector") {
		t.Errorf("the registered plugin does not win: %+v", s)
	}
	s := status(t, h, filepath.Join(dir, "pkg-detector"))
	want := `its entry in ` + filepath.Join(dir, "catalog.json") + ` names it "test-detector", and the plugin registered under that name is ` + filepath.Join(dir, "own-detector")
	if s.State != StateUntrusted || !strings.Contains(s.LastError, want) || !strings.Contains(s.LastError, "vigil plugins unregister test-detector") {
		t.Errorf("shadowed package binary: %+v; want a last error saying %q", s, want)
	}
}

func TestUntrustedAndOutsideDirs(t *testing.T) {
	dir := install(t, "detector")
	h := newHost(t, testConfig(dir), "")
	s := status(t, h, filepath.Join(dir, "test-detector"))
	if s.State != StateUntrusted || !strings.Contains(s.LastError, "vigil plugins register") {
		t.Errorf("unregistered binary: %+v", s)
	}
	_, err := h.Register(context.Background(), builtPlugins["detector"], "")
	if err == nil || !strings.Contains(err.Error(), "outside the plugin directories") {
		t.Errorf("register outside dirs: %v", err)
	}
}

func TestBrokenBinariesFailClearly(t *testing.T) {
	dir := t.TempDir()
	scripts := map[string]string{
		"not-a-plugin": "#!/bin/sh\necho hello\n",
		"exits":        "#!/bin/sh\nexit 3\n",
		"wrong-proto":  "#!/bin/sh\necho '1|7|unix|/nonexistent|grpc|'\n",
		// The handshake never comes; the child sleep must die with it.
		"hangs": "#!/bin/sh\necho 'waiting for /models/m.bin' >&2\nsleep 301.25 &\nsleep 301.5\n",
		// What a zipapp plugin prints under a Python without Debian's
		// python3-grpcio.
		"python-no-grpc": "#!/bin/sh\ncat >&2 <<'EOF'\nTraceback (most recent call last):\n  File \"/p/vigil_plugin/_errors.py\", line 3, in <module>\nModuleNotFoundError: No module named 'grpc'\nEOF\nexit 1\n",
		// A Go panic before Serve: the panic line, not the stack trace's last.
		"go-panic": "#!/bin/sh\ncat >&2 <<'EOF'\npanic: open /etc/mine.yaml: no such file or directory\n\ngoroutine 1 [running]:\nmain.main()\n\t/src/main.go:12 +0x1d\nEOF\nexit 2\n",
		// A structured log line: its message.
		"slog-error": "#!/bin/sh\necho '{\"time\":\"2026-11-27T21:00:00Z\",\"level\":\"ERROR\",\"msg\":\"cannot start: token missing\"}' >&2\nexit 1\n",
	}
	for name, body := range scripts {
		os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755)
	}
	cfg := testConfig(dir)
	cfg.StartTimeout = time.Second
	h := newHost(t, cfg, "")
	// Each error is one line (it is shown in `vigil plugins list`) that
	// says what the binary did.
	for name, want := range map[string]string{
		"not-a-plugin": `printed "hello" on standard output instead of the handshake`,
		"exits":        "without printing the handshake",
		"wrong-proto":  "this agent speaks contract version 1",
	} {
		_, err := h.Register(context.Background(), filepath.Join(dir, name), "")
		if err == nil || !strings.Contains(err.Error(), "not a Vigil plugin") || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v; want one line saying %q", name, err, want)
		}
	}
	// A plugin that fails on its own before the handshake is quoted:
	// its author needs its error, not to hear it is no plugin.
	for name, want := range map[string]string{
		"python-no-grpc": `exited (exit status 1) without printing the plugin handshake; its standard error ended with "ModuleNotFoundError: No module named 'grpc'"`,
		"go-panic":       `exited (exit status 2) without printing the plugin handshake; its standard error ended with "panic: open /etc/mine.yaml: no such file or directory"`,
		"slog-error":     `exited (exit status 1) without printing the plugin handshake; its standard error ended with "cannot start: token missing"`,
	} {
		_, err := h.Register(context.Background(), filepath.Join(dir, name), "")
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "not a Vigil plugin") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v; want one line saying %s", name, err, want)
		}
	}
	start := time.Now()
	_, err := h.Register(context.Background(), filepath.Join(dir, "hangs"), "")
	if err == nil || !strings.Contains(err.Error(), "did not complete the plugin handshake") || !strings.Contains(err.Error(), `its standard error ended with "waiting for /models/m.bin"`) {
		t.Errorf("hanging binary: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("hanging binary took %s to fail", took)
	}
	// No leaked processes: neither the script nor its children.
	deadline := time.Now().Add(3 * time.Second)
	for {
		left := processesMatching("sleep 301.")
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("leaked processes: %v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processesMatching lists live processes whose command line contains s.
func processesMatching(s string) []int {
	var out []int
	des, _ := os.ReadDir("/proc")
	for _, de := range des {
		var pid int
		if _, err := fmt.Sscanf(de.Name(), "%d", &pid); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", de.Name(), "cmdline"))
		if err == nil && strings.Contains(strings.ReplaceAll(string(b), "\x00", " "), s) && alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// bootDetector installs the test detector, starts a host that launches
// plugins at boot, and registers the detector; it returns the host, the
// binary's path and its catalog entry.
func bootDetector(t *testing.T) (*Host, string, Entry) {
	t.Helper()
	dir := install(t, "detector")
	cfg := testConfig(dir)
	cfg.Start = "boot"
	h := newHost(t, cfg, "")
	path := filepath.Join(dir, "test-detector")
	e, err := h.Register(context.Background(), path, "")
	if err != nil {
		t.Fatal(err)
	}
	return h, path, e
}

func TestCrashRestartAndBudget(t *testing.T) {
	h, _, _ := bootDetector(t)
	ok := &sdk.DetectRequest{Method: "mean", DataType: pb.DataType_NUMERIC, ReferenceNumeric: []float64{1, 2}, CurrentNumeric: []float64{1, 2}}
	crash := &sdk.DetectRequest{Method: "mean", Params: map[string]any{"crash": true}}
	for i := 1; i <= 2; i++ {
		first := waitState(t, h, "test-detector", StateRunning)
		_, err := detect(h, crash)
		if c := classOf(t, err); c != sdk.Unavailable {
			t.Errorf("crash %d: class %s (%v), want unavailable", i, c, err)
		}
		s := waitRestarted(t, h, "test-detector", first.PID)
		if s.Restarts != i {
			t.Errorf("after crash %d: %+v (first pid %d)", i, s, first.PID)
		}
		if _, err := detect(h, ok); err != nil {
			t.Errorf("call after restart: %v", err)
		}
	}
	// The third crash within the window spends the budget.
	detect(h, crash)
	s := waitState(t, h, "test-detector", StateFailed)
	if !strings.Contains(s.LastError, "vigil plugins restart test-detector") {
		t.Errorf("failed state does not say how to recover: %q", s.LastError)
	}
	_, err := detect(h, ok)
	if classOf(t, err) != sdk.Unavailable || !strings.Contains(err.Error(), "failed") {
		t.Errorf("call to a failed plugin: %v", err)
	}
	if err := h.Restart("test-detector"); err != nil {
		t.Fatal(err)
	}
	waitState(t, h, "test-detector", StateRunning)
	if _, err := detect(h, ok); err != nil {
		t.Errorf("call after manual restart: %v", err)
	}
}

// TestUpGaugeAfterReRegister registers a running plugin again: the old
// supervisor stopping after its successor started must not set
// vigil_plugin_up to 0 for the running plugin, and an unregistered
// plugin's series goes away.
func TestUpGaugeAfterReRegister(t *testing.T) {
	h, path, _ := bootDetector(t)
	first := waitState(t, h, "test-detector", StateRunning)
	old := h.snapshot()["test-detector"]
	if _, err := h.Register(context.Background(), path, ""); err != nil {
		t.Fatal(err)
	}
	waitRestarted(t, h, "test-detector", first.PID)
	// However late the old supervisor reports its stop, the series is the
	// new one's.
	old.setState(StateStopped, "")
	if got := testutil.ToFloat64(h.m.up.WithLabelValues("test-detector", "detector")); got != 1 {
		t.Errorf("vigil_plugin_up = %v for a running plugin after it was registered again", got)
	}
	if err := h.Unregister(context.Background(), "test-detector"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); testutil.CollectAndCount(h.m.up) != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("vigil_plugin_up still has %d series after the plugin was unregistered", testutil.CollectAndCount(h.m.up))
		}
	}
}

// TestRestartOfStoppedPluginStartsItOnce restarts a plugin that lazy
// start has not started yet: it starts once, not once and then again.
func TestRestartOfStoppedPluginStartsItOnce(t *testing.T) {
	dir := install(t, "detector")
	var logs vtest.SyncBuffer
	h, err := New(testConfig(dir), Options{CatalogPath: filepath.Join(t.TempDir(), "plugins.db"), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Register(context.Background(), filepath.Join(dir, "test-detector"), ""); err != nil {
		t.Fatal(err)
	}
	if s := status(t, h, "test-detector"); s.State != StateStopped {
		t.Fatalf("lazy plugin after register: %+v", s)
	}
	if err := h.Restart("test-detector"); err != nil {
		t.Fatal(err)
	}
	waitState(t, h, "test-detector", StateRunning)
	ok := &sdk.DetectRequest{Method: "mean", DataType: pb.DataType_NUMERIC, ReferenceNumeric: []float64{1, 2}, CurrentNumeric: []float64{1, 2}}
	if _, err := detect(h, ok); err != nil {
		t.Fatal(err)
	}
	h.Close()
	if n := strings.Count(logs.String(), "msg=\"plugin started\""); n != 1 || strings.Contains(logs.String(), "restarting on request") {
		t.Errorf("plugin started %d times:\n%s", n, logs.String())
	}
}

// TestCrashNamesExitStatus checks a crashed plugin's last error says how
// its process ended.
func TestCrashNamesExitStatus(t *testing.T) {
	dir := install(t, "detector")
	cfg := testConfig(dir)
	cfg.HealthInterval = time.Hour // the exit, not a failed ping, must notice the crash
	h := newHost(t, cfg, "")
	if _, err := h.Register(context.Background(), filepath.Join(dir, "test-detector"), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := detect(h, &sdk.DetectRequest{Method: "mean", Params: map[string]any{"crash": true}}); err == nil {
		t.Fatal("a crashing call succeeded")
	}
	deadline := time.Now().Add(15 * time.Second)
	for s := status(t, h, "test-detector"); !strings.Contains(s.LastError, "plugin process exited (exit status 3)"); s = status(t, h, "test-detector") {
		if time.Now().After(deadline) {
			t.Fatalf("last error %q does not give the exit status", s.LastError)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestKill9DuringCalls kills the plugin while calls are in flight: calls
// fail with a typed error, never hang or crash the host, and the plugin
// comes back.
func TestKill9DuringCalls(t *testing.T) {
	h, _, _ := bootDetector(t)
	before := waitState(t, h, "test-detector", StateRunning)
	req := &sdk.DetectRequest{Method: "mean", DataType: pb.DataType_NUMERIC, ReferenceNumeric: normal(50_000, 0, 1), CurrentNumeric: normal(50_000, 0, 2)}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var mu sync.Mutex
	classes := map[sdk.Class]int{}
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
				_, err := detect(h, req)
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
	time.Sleep(200 * time.Millisecond)
	syscall.Kill(before.PID, syscall.SIGKILL)
	waitRestarted(t, h, "test-detector", before.PID)
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	for c, n := range classes {
		if c != "ok" && c != sdk.Unavailable {
			t.Errorf("%d calls failed with class %s; only unavailable is expected", n, c)
		}
	}
	if classes["ok"] == 0 || classes[sdk.Unavailable] == 0 {
		t.Errorf("calls by outcome = %v; want successes before and after, and unavailable around the kill", classes)
	}
	if alive(before.PID) {
		t.Errorf("killed plugin %d still alive", before.PID)
	}
}

func TestCallDeadline(t *testing.T) {
	dir := install(t, "detector")
	cfg := testConfig(dir)
	cfg.CallTimeout = 300 * time.Millisecond
	h := newHost(t, cfg, "")
	if _, err := h.Register(context.Background(), filepath.Join(dir, "test-detector"), ""); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := detect(h, &sdk.DetectRequest{Method: "mean", Params: map[string]any{"hang_ms": 3000.0}})
	if classOf(t, err) != sdk.Timeout {
		t.Errorf("hung call: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("hung call returned after %s; the deadline is 300ms", took)
	}
}

func TestConfigureRejected(t *testing.T) {
	dir := install(t, "detector")
	cfg := testConfig(dir)
	cfg.Config = map[string]map[string]any{"test-detector": {"greeting": 5.0}}
	h := newHost(t, cfg, "")
	if _, err := h.Register(context.Background(), filepath.Join(dir, "test-detector"), ""); err != nil {
		t.Fatal(err)
	}
	_, err := detect(h, &sdk.DetectRequest{Method: "mean"})
	if err == nil || !strings.Contains(err.Error(), "plugins.config.test-detector.greeting: must be a string") {
		t.Errorf("bad plugin config: %v", err)
	}
}

// TestConfigureErrorsNamed: a rejected configuration names each key where
// the operator set it, also for a plugin that takes none (a Go SDK plugin
// without sdk.Configurer given a gateway entry's base_url), and an error
// about no one key names the section without a dangling dot.
func TestConfigureErrorsNamed(t *testing.T) {
	dir := install(t, "detector", "provider")
	cfg := testConfig(dir)
	cfg.Config = map[string]map[string]any{"test-detector": {"reject_whole": true}}
	h := newHost(t, cfg, "")
	for _, k := range []string{"detector", "provider"} {
		if _, err := h.Register(context.Background(), filepath.Join(dir, "test-"+k), ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.SetInstances([]Instance{
		{Name: "prov-a", Plugin: "test-provider", ConfigKey: "gateway.providers[0]",
			Config: map[string]any{"base_url": "http://127.0.0.1:1/v1", "timeout": "5s"}},
		{Name: "prov-b", Plugin: "test-provider", ConfigKey: "gateway.providers[1]",
			Config: map[string]any{"api_key": "sk-1"}, SetBy: map[string]string{"api_key": "api_key_env"}},
	}); err != nil {
		t.Fatal(err)
	}
	_, err := detect(h, &sdk.DetectRequest{Method: "mean"})
	if want := "plugins.config.test-detector: rejects the configuration as a whole"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("whole configuration rejected: %v; want %q", err, want)
	}
	err = h.WithProvider(context.Background(), "prov-a", "Models", func(ctx context.Context, c sdk.ProviderClient) error {
		_, err := c.Models(ctx)
		return err
	})
	for _, want := range []string{"gateway.providers[0].base_url: this plugin takes no configuration", "gateway.providers[0].timeout: this plugin takes no configuration"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("configuration given to a plugin that takes none: %v; want %q", err, want)
		}
	}
	// A key the operator set under another name is named by that one.
	err = h.WithProvider(context.Background(), "prov-b", "Models", func(ctx context.Context, c sdk.ProviderClient) error {
		_, err := c.Models(ctx)
		return err
	})
	if want := "gateway.providers[1].api_key_env (the api_key it set): this plugin takes no configuration"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("a key set through api_key_env rejected: %v; want %q", err, want)
	}
}

// TestDevDirAndBootStart: in dev mode the build's plugin directory is
// trusted as it is, and boot start runs every plugin without a call.
func TestDevDirAndBootStart(t *testing.T) {
	dev := install(t, "detector", "provider", "vectorstore")
	cfg := testConfig(t.TempDir())
	cfg.Start = "boot"
	h := newHost(t, cfg, dev)
	h.Start()
	for _, name := range []string{"test-detector", "test-provider", "test-vectorstore"} {
		s := waitState(t, h, name, StateRunning)
		if s.Source != "dev" || s.PID == 0 {
			t.Errorf("%s: %+v", name, s)
		}
	}
}

// TestDevBuildShadowedByPackage: in dev mode on a host where the package
// is installed, a plugin name the package's catalog.json trusts keeps the
// packaged binary, and the dev build of that name says so rather than
// sending the developer to register it (which would replace the package's
// plugin by name).
func TestDevBuildShadowedByPackage(t *testing.T) {
	dev := install(t, "detector")
	pkg := t.TempDir()
	copyFile(t, builtPlugins["detector"], filepath.Join(pkg, "pkg-detector"))
	sum, err := fileSHA256(filepath.Join(pkg, "pkg-detector"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(pkg, "catalog.json"), []byte(`{"version": 1, "plugins": [{"name": "test-detector", "kind": "detector", "file": "pkg-detector", "sha256": "`+sum+`"}]}`), 0o644)
	h := newHost(t, testConfig(pkg), dev)
	if s := status(t, h, "test-detector"); s.Source != "package" || s.Path != filepath.Join(pkg, "pkg-detector") {
		t.Fatalf("the package's plugin does not keep its name: %+v", s)
	}
	s := status(t, h, filepath.Join(dev, "test-detector"))
	want := `plugin "test-detector" is the package's ` + filepath.Join(pkg, "pkg-detector") + ` (catalog.json), which wins over dev mode's build`
	if s.State != StateUntrusted || !strings.Contains(s.LastError, want) || strings.Contains(s.LastError, "vigil plugins register") {
		t.Errorf("shadowed dev build: %+v; want a last error saying %q and no advice to register it", s, want)
	}
}

// TestInstances runs two instances of one plugin binary, each with its own
// configuration and process, beside an instance of a plugin that is not
// installed.
func TestInstances(t *testing.T) {
	dir := install(t, "detector")
	cfg := testConfig(dir)
	h := newHost(t, cfg, "")
	if _, err := h.Register(context.Background(), filepath.Join(dir, "test-detector"), ""); err != nil {
		t.Fatal(err)
	}
	if err := h.SetInstances([]Instance{{Name: "test-detector", Plugin: "test-detector"}}); err == nil {
		t.Fatal("an instance named like an installed plugin was accepted")
	}
	err := h.SetInstances([]Instance{
		{Name: "det-a", Plugin: "test-detector", Config: map[string]any{"greeting": "hi"}, CallTimeout: 300 * time.Millisecond},
		{Name: "det-b", Plugin: "test-detector", Config: map[string]any{"greeting": 5.0}, ConfigKey: "gateway.providers[1]"},
		{Name: "det-c", Plugin: "missing"},
	})
	if err != nil {
		t.Fatal(err)
	}
	call := func(name string, params map[string]any) error {
		return h.WithDetector(context.Background(), name, "Detect", func(ctx context.Context, c sdk.DetectorClient) error {
			_, err := c.Detect(ctx, &sdk.DetectRequest{Method: "mean", DataType: pb.DataType_NUMERIC, ReferenceNumeric: []float64{1, 2, 3}, CurrentNumeric: []float64{1, 2, 3}, Params: params})
			return err
		})
	}
	if err := call("det-a", nil); err != nil {
		t.Fatalf("det-a: %v", err)
	}
	if err := call("test-detector", nil); err != nil {
		t.Fatalf("the plugin itself: %v", err)
	}
	a, base := status(t, h, "det-a"), status(t, h, "test-detector")
	if a.PID == 0 || a.PID == base.PID || a.Source != "instance:test-detector" {
		t.Fatalf("det-a is not its own process: %+v vs %+v", a, base)
	}
	if err := call("det-b", nil); err == nil || !strings.Contains(err.Error(), "gateway.providers[1].greeting: must be a string") {
		t.Fatalf("det-b's bad configuration: %v", err)
	}
	if err := call("det-c", nil); classOf(t, err) != sdk.Unavailable || !strings.Contains(err.Error(), `plugin "missing"`) {
		t.Fatalf("det-c: %v", err)
	}
	// det-a has its own call deadline.
	if err := call("det-a", map[string]any{"hang_ms": 3000.0}); classOf(t, err) != sdk.Timeout {
		t.Fatalf("det-a's call timeout: %v", err)
	}
	if err := h.Unregister(context.Background(), "det-a"); err == nil {
		t.Fatal("an instance was unregistered like a plugin")
	}
}

// TestInstanceOfPluginRegisteredLater: an instance declared before its
// plugin is registered works once it is.
func TestInstanceOfPluginRegisteredLater(t *testing.T) {
	dir := install(t, "detector")
	h := newHost(t, testConfig(dir), "")
	if err := h.SetInstances([]Instance{{Name: "late", Plugin: "test-detector"}}); err != nil {
		t.Fatal(err)
	}
	call := func() error {
		return h.WithDetector(context.Background(), "late", "Describe", func(ctx context.Context, c sdk.DetectorClient) error {
			_, err := c.Describe(ctx)
			return err
		})
	}
	if err := call(); classOf(t, err) != sdk.Unavailable {
		t.Fatalf("before register: %v", err)
	}
	if _, err := h.Register(context.Background(), filepath.Join(dir, "test-detector"), ""); err != nil {
		t.Fatal(err)
	}
	if err := call(); err != nil {
		t.Fatalf("after register: %v", err)
	}
}

// environOf is a process's environment, from /proc.
func environOf(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// TestPluginEnv: plugins.env reaches the plugin's process (after the
// catalog's, so it wins), the agent's own environment does not, and a
// reload restarts a plugin only when its plugins.env changed.
func TestPluginEnv(t *testing.T) {
	t.Setenv("VIGIL_TEST_AGENT_SECRET", "not for plugins")
	dev := install(t, "detector", "provider")
	cfg := testConfig(t.TempDir())
	cfg.Start = "boot"
	cfg.Env = map[string][]string{"test-detector": {"VIGIL_TEST_A=1", "GOMAXPROCS=1"}}
	h := newHost(t, cfg, dev)
	h.Start()
	det := waitState(t, h, "test-detector", StateRunning)
	prov := waitState(t, h, "test-provider", StateRunning)
	env := environOf(t, det.PID)
	for _, want := range []string{"VIGIL_TEST_A=1", "GOMAXPROCS=1", "PATH=/usr/local/bin:/usr/bin:/bin"} {
		if !slices.Contains(env, want) {
			t.Errorf("plugin environment %q lacks %s", env, want)
		}
	}
	for _, kv := range append(env, environOf(t, prov.PID)...) {
		if strings.HasPrefix(kv, "VIGIL_TEST_AGENT_SECRET=") {
			t.Errorf("the agent's environment reached a plugin: %s", kv)
		}
	}
	if slices.Contains(environOf(t, prov.PID), "VIGIL_TEST_A=1") {
		t.Error("another plugin's plugins.env reached test-provider")
	}

	// The same environment: nothing restarts.
	h.Reload(cfg)
	if s := waitState(t, h, "test-detector", StateRunning); s.PID != det.PID {
		t.Errorf("test-detector restarted on a reload that did not change its environment: %d → %d", det.PID, s.PID)
	}
	// A changed environment restarts that plugin alone.
	cfg2 := cfg
	cfg2.Env = map[string][]string{"test-detector": {"VIGIL_TEST_A=2"}}
	h.Reload(cfg2)
	s := waitRestarted(t, h, "test-detector", det.PID)
	if env := environOf(t, s.PID); !slices.Contains(env, "VIGIL_TEST_A=2") || slices.Contains(env, "GOMAXPROCS=1") {
		t.Errorf("after the reload: %q", env)
	}
	if p := waitState(t, h, "test-provider", StateRunning); p.PID != prov.PID {
		t.Errorf("test-provider restarted: %d → %d", prov.PID, p.PID)
	}
}

func TestValidateEnv(t *testing.T) {
	c := DefaultConfig()
	c.Env = map[string][]string{"openai": {"HTTPS_PROXY=http://u:secretpw@proxy:3128", "NOEQUALS", "=x", "BAD KEY=1", "PLUGIN_CLIENT_CERT=x", "VIGIL_PLUGIN=x", "NUL=a\x00b", "EMPTY="}}
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{"plugins.env.openai[1]: want KEY=VALUE", "plugins.env.openai[2]: want KEY=VALUE",
		`plugins.env.openai[3]: variable name "BAD KEY" has whitespace`, "plugins.env.openai[4]: PLUGIN_CLIENT_CERT is set by the plugin handshake",
		"plugins.env.openai[5]: VIGIL_PLUGIN is set by the plugin handshake", "plugins.env.openai[6]: the value of NUL has a NUL byte"} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "secretpw") || strings.Contains(msg, "openai[0]") || strings.Contains(msg, "openai[7]") {
		t.Errorf("valid entries reported, or a value shown:\n%s", msg)
	}
}

// envOf: the catalog's entries, then the plugin's plugins.env, then the
// instance's own (later values of a key win when the process starts).
func TestEnvOfOrder(t *testing.T) {
	cfg := &Config{Env: map[string][]string{"openai": {"A=plugin", "B=plugin"}, "openai-main": {"B=instance"}}}
	e := Entry{Name: "openai-main", Env: []string{"A=catalog", "C=catalog"}}
	got := envOf(cfg, e, "openai")
	want := []string{"A=catalog", "C=catalog", "A=plugin", "B=plugin", "B=instance"}
	if !slices.Equal(got, want) {
		t.Errorf("instance: %q, want %q", got, want)
	}
	if got := envOf(cfg, Entry{Name: "openai", Env: e.Env}, ""); !slices.Equal(got, []string{"A=catalog", "C=catalog", "A=plugin", "B=plugin"}) {
		t.Errorf("plugin: %q", got)
	}
	if got := envOf(cfg, Entry{Name: "ks"}, ""); len(got) != 0 {
		t.Errorf("unconfigured plugin: %q", got)
	}
}

// TestUntrustedNamedLikeTrustedPlugin: an untrusted binary whose file name
// is a trusted plugin's name is listed under its path, so the listing has
// one row by that name, the trusted plugin's, and a lookup by the name
// finds it; two untrusted files of one name in two directories are two
// names too.
func TestUntrustedNamedLikeTrustedPlugin(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	copyFile(t, builtPlugins["detector"], filepath.Join(dir, "own-detector"))
	// Not the registered binary: another one, under the registered name.
	copyFile(t, builtPlugins["provider"], filepath.Join(dir, "test-detector"))
	copyFile(t, builtPlugins["vectorstore"], filepath.Join(other, "test-detector"))
	cfg := testConfig(dir)
	cfg.Dirs = append(cfg.Dirs, other)
	h := newHost(t, cfg, "")
	if _, err := h.Register(context.Background(), filepath.Join(dir, "own-detector"), ""); err != nil {
		t.Fatal(err)
	}
	for _, when := range []string{"registered", "reloaded"} {
		names := map[string][]Status{}
		for _, s := range h.List() {
			names[s.Name] = append(names[s.Name], s)
		}
		for name, rows := range names {
			if len(rows) > 1 {
				t.Errorf("%s: %d rows named %q: %+v", when, len(rows), name, rows)
			}
		}
		if rows := names["test-detector"]; len(rows) == 0 || rows[0].Source != "registered" || rows[0].Path != filepath.Join(dir, "own-detector") {
			t.Errorf("%s: the row named test-detector: %+v; want the registered plugin", when, rows)
		}
		for _, p := range []string{filepath.Join(dir, "test-detector"), filepath.Join(other, "test-detector")} {
			if s := status(t, h, p); s.State != StateUntrusted || s.Path != p {
				t.Errorf("%s: the untrusted binary %s: %+v", when, p, s)
			}
		}
		h.Reload(cfg)
	}
	// A lookup by the name reaches the trusted plugin.
	if err := h.Restart("test-detector"); err != nil {
		t.Fatalf("restart test-detector: %v", err)
	}
	if s := waitState(t, h, "test-detector", StateRunning); s.Kind != "detector" {
		t.Errorf("test-detector after a restart: %+v", s)
	}
}

// A plugin registered through a symbolic link outside the plugin
// directories is recorded under its path in the directory: the link
// stays under the control of whoever made it, who could otherwise point
// it at another binary after registration.
func TestRegisterThroughSymlinkRecordsPathInDir(t *testing.T) {
	dir := install(t, "detector")
	real := filepath.Join(dir, "test-detector")
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	h := newHost(t, testConfig(dir), "")
	e, err := h.Register(context.Background(), link, "")
	if err != nil {
		t.Fatal(err)
	}
	want := real
	if e.Path != want {
		t.Errorf("registered path = %s, want the path in the plugin directory %s", e.Path, want)
	}
	if s := status(t, h, e.Name); s.Path != want {
		t.Errorf("listed path = %s, want %s", s.Path, want)
	}
}

// A binary that users other than root and the agent's own could replace
// (writable by every user, or in a directory every user may write) is not
// trusted: go-plugin checks its SHA-256 and then executes it by path, and
// the swap could happen in between.
func TestRegisterRefusesBinaryOthersCanReplace(t *testing.T) {
	for _, tc := range []struct {
		name           string
		fileMode, dirM os.FileMode
		want           string
	}{
		{"file writable by every user", 0o757, 0o755, "writable by every user"},
		{"directory writable by every user", 0o755, 0o777, "which every user may write"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := install(t, "detector")
			bin := filepath.Join(dir, "test-detector")
			if err := os.Chmod(bin, tc.fileMode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tc.dirM); err != nil {
				t.Fatal(err)
			}
			h := newHost(t, testConfig(dir), "")
			_, err := h.Register(context.Background(), bin, "")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("register: %v, want an error saying %q", err, tc.want)
			}
		})
	}
	// Registered while safe, then made writable: refused at its next
	// launch.
	dir := install(t, "detector")
	bin := filepath.Join(dir, "test-detector")
	h := newHost(t, testConfig(dir), "")
	e, err := h.Register(context.Background(), bin, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(bin, 0o757); err != nil {
		t.Fatal(err)
	}
	if err := h.Restart(e.Name); err != nil {
		t.Fatal(err)
	}
	if s := waitState(t, h, e.Name, StateRefused); !strings.Contains(s.LastError, "writable by every user") {
		t.Errorf("launched after chmod o+w: %+v", s)
	}
	// A restart while the cause remains says why, again.
	if err := h.Restart(e.Name); err == nil || !strings.Contains(err.Error(), "writable by every user") {
		t.Errorf("restart while still writable by every user: %v", err)
	}
	// Once the operator has fixed the mode, a restart looks again and
	// starts it, with no SIGHUP needed.
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := h.Restart(e.Name); err != nil {
		t.Fatalf("restart after chmod o-w: %v", err)
	}
	waitState(t, h, e.Name, StateRunning)
}
