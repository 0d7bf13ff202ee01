package methods

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/vigilml/vigil/agent/pluginhost"
	"github.com/vigilml/vigil/plugins/detectors/internal/detector"
	"github.com/vigilml/vigil/plugins/detectors/internal/stats"
	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// The process tests build the five plugin binaries and drive them as the
// agent does: through agent/pluginhost, go-plugin, AutoMTLS and the SDK's
// handshake.

var pluginDir string

var plugins = []string{"ks", "psi", "chisquare", "wasserstein", "jensenshannon"}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vigil-detectors-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	// One go build for all five: with -o DIR it writes each main package
	// as DIR/<folder name>, as make build does.
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, p := range plugins {
		args = append(args, "./"+p)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build plugins: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	pluginDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func newHost(t testing.TB) *pluginhost.Host {
	t.Helper()
	cfg := pluginhost.DefaultConfig()
	cfg.Dirs = nil
	cfg.StartTimeout = 20 * time.Second
	cfg.CallTimeout = time.Minute
	h, err := pluginhost.New(cfg, pluginhost.Options{CatalogPath: filepath.Join(t.TempDir(), "plugins.db"), DevDir: pluginDir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func detect(h *pluginhost.Host, name string, req *sdk.DetectRequest) (*pb.DetectResponse, error) {
	var resp *pb.DetectResponse
	err := h.WithDetector(context.Background(), name, "Detect", func(ctx context.Context, c sdk.DetectorClient) error {
		var err error
		resp, err = c.Detect(ctx, req)
		return err
	})
	return resp, err
}

func normal(n int, mean float64, seed uint64) []float64 {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([]float64, n)
	for i := range out {
		out[i] = mean + r.NormFloat64()
	}
	return out
}

func cats(n int, skew float64, seed uint64) []string {
	r := rand.New(rand.NewPCG(seed, 9))
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("c%d", int(math.Pow(r.Float64(), skew)*6))
	}
	return out
}

func TestPluginsDescribe(t *testing.T) {
	h := newHost(t)
	want := map[string]detector.Method{"ks": KS(), "psi": PSI(), "chisquare": ChiSquare(), "wasserstein": Wasserstein(), "jensenshannon": JensenShannon()}
	for _, name := range plugins {
		var desc *pb.DescribeResponse
		err := h.WithDetector(context.Background(), name, "Describe", func(ctx context.Context, c sdk.DetectorClient) error {
			var err error
			desc, err = c.Describe(ctx)
			return err
		})
		if err != nil {
			t.Fatalf("%s: Describe: %v", name, err)
		}
		if len(desc.GetMethods()) != 1 {
			t.Fatalf("%s: %d methods, want 1", name, len(desc.GetMethods()))
		}
		m, w := desc.GetMethods()[0], want[name]
		if m.GetName() != name || m.GetHasPValue() != w.HasPValue || m.GetDefaultThreshold() != w.DefaultThreshold ||
			m.GetDirection() != w.Direction() || len(m.GetDataTypes()) != len(w.DataTypes) || len(m.GetParams()) != len(w.Params) || m.GetDescription() == "" {
			t.Errorf("%s: Describe = %v", name, m)
		}
		for i, p := range m.GetParams() {
			if p.GetName() != w.Params[i].Name || p.GetDefaultValue() == nil {
				t.Errorf("%s: param %d = %v", name, i, p)
			}
		}
	}
	for _, s := range h.List() {
		if s.Kind != "detector" || s.Source != "dev" {
			t.Errorf("plugin %s: kind %q source %q", s.Name, s.Kind, s.Source)
		}
	}
}

// TestPluginsAgreeWithStats checks that every plugin process returns what
// the in-process numerical core computes (which the truth tests compare
// with scipy), with the threshold and direction applied.
func TestPluginsAgreeWithStats(t *testing.T) {
	h := newHost(t)
	ref, same, shifted := normal(2000, 0, 1), normal(1500, 0, 21), normal(1500, 0.5, 3)
	cref, csame, cshift := cats(3000, 1, 4), cats(2500, 1, 5), cats(2500, 1.6, 6)
	for _, tc := range []struct {
		name    string
		req     *sdk.DetectRequest
		stat    float64
		p       *float64
		drifted bool
	}{
		{"ks", &sdk.DetectRequest{Method: "ks", DataType: pb.DataType_NUMERIC, ReferenceNumeric: ref, CurrentNumeric: same},
			stats.KS2Samp(ref, same).D, detector.Ptr(stats.KS2Samp(ref, same).PValue), false},
		{"ks", &sdk.DetectRequest{Method: "ks", DataType: pb.DataType_NUMERIC, ReferenceNumeric: ref, CurrentNumeric: shifted},
			stats.KS2Samp(ref, shifted).D, detector.Ptr(stats.KS2Samp(ref, shifted).PValue), true},
		{"psi", &sdk.DetectRequest{Method: "psi", DataType: pb.DataType_NUMERIC, ReferenceNumeric: ref, CurrentNumeric: shifted},
			binnedPSI(ref, shifted, 10), nil, true},
		{"psi", &sdk.DetectRequest{Method: "psi", DataType: pb.DataType_NUMERIC, ReferenceNumeric: ref, CurrentNumeric: same, Params: map[string]any{"bins": 5}},
			binnedPSI(ref, same, 5), nil, false},
		{"chisquare", &sdk.DetectRequest{Method: "chisquare", DataType: pb.DataType_CATEGORICAL, ReferenceCategorical: cref, CurrentCategorical: cshift},
			chi(cref, cshift).Statistic, detector.Ptr(chi(cref, cshift).PValue), true},
		{"wasserstein", &sdk.DetectRequest{Method: "wasserstein", DataType: pb.DataType_NUMERIC, ReferenceNumeric: ref, CurrentNumeric: shifted},
			stats.Wasserstein1(ref, shifted) / std(ref), nil, true},
		{"wasserstein", &sdk.DetectRequest{Method: "wasserstein", DataType: pb.DataType_NUMERIC, ReferenceNumeric: ref, CurrentNumeric: same, Params: map[string]any{"normalize": false}, Threshold: detector.Ptr(10)},
			stats.Wasserstein1(ref, same), nil, false},
		{"jensenshannon", &sdk.DetectRequest{Method: "jensenshannon", DataType: pb.DataType_CATEGORICAL, ReferenceCategorical: cref, CurrentCategorical: csame},
			jsCat(cref, csame), nil, false},
		{"jensenshannon", &sdk.DetectRequest{Method: "jensenshannon", DataType: pb.DataType_NUMERIC, ReferenceNumeric: ref, CurrentNumeric: shifted},
			jsNum(ref, shifted), nil, true},
	} {
		resp, err := detect(h, tc.name, tc.req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if resp.GetStatistic() != tc.stat || resp.GetDrifted() != tc.drifted || (tc.p == nil) != (resp.PValue == nil) || (tc.p != nil && *tc.p != resp.GetPValue()) {
			t.Errorf("%s: got stat %v p %v drifted %v; want stat %v p %v drifted %v", tc.name, resp.GetStatistic(), resp.GetPValue(), resp.GetDrifted(), tc.stat, tc.p, tc.drifted)
		}
		if resp.GetDetails().GetFields()["n_reference"].GetNumberValue() == 0 {
			t.Errorf("%s: details lack n_reference: %v", tc.name, resp.GetDetails())
		}
	}
}

func std(xs []float64) float64 { _, s := stats.MeanStd(xs); return s }

func binnedPSI(ref, cur []float64, bins int) float64 {
	e := stats.QuantileEdges(ref, bins)
	return stats.PSI(stats.BinCounts(ref, e), stats.BinCounts(cur, e), PSIEpsilon)
}

func jsNum(ref, cur []float64) float64 {
	e := stats.QuantileEdges(ref, JensenShannonBins)
	return stats.JensenShannon(stats.BinCounts(ref, e), stats.BinCounts(cur, e))
}

func jsCat(ref, cur []string) float64 {
	_, r, c := stats.CategoryCounts(ref, cur)
	return stats.JensenShannon(r, c)
}

func chi(ref, cur []string) stats.ChiSquareResult {
	_, r, c := stats.CategoryCounts(ref, cur)
	r, c, _ = stats.MergeSparse(r, c, ChiSquareMinExpected)
	return stats.ChiSquare2xK(r, c)
}

// TestPluginsRejectBadInput checks that each plugin names the offending
// field of a bad request, and keeps serving after it.
func TestPluginsRejectBadInput(t *testing.T) {
	h := newHost(t)
	num := func(method string) *sdk.DetectRequest {
		return &sdk.DetectRequest{Method: method, DataType: pb.DataType_NUMERIC, ReferenceNumeric: []float64{1, 2, 3}, CurrentNumeric: []float64{2, 3, 4}}
	}
	cat := func(method string) *sdk.DetectRequest {
		return &sdk.DetectRequest{Method: method, DataType: pb.DataType_CATEGORICAL, ReferenceCategorical: []string{"a", "b"}, CurrentCategorical: []string{"a"}}
	}
	good := map[string]func(string) *sdk.DetectRequest{"ks": num, "psi": num, "chisquare": cat, "wasserstein": num, "jensenshannon": num}
	type bad struct {
		what  string
		edit  func(r *sdk.DetectRequest)
		field string
	}
	common := []bad{
		{"unknown method", func(r *sdk.DetectRequest) { r.Method = "nope" }, "method"},
		{"no data type", func(r *sdk.DetectRequest) { r.DataType = pb.DataType_DATA_TYPE_UNSPECIFIED }, "data_type"},
		{"empty reference", func(r *sdk.DetectRequest) { r.ReferenceNumeric, r.ReferenceCategorical = nil, nil }, "reference"},
		{"empty current", func(r *sdk.DetectRequest) { r.CurrentNumeric, r.CurrentCategorical = nil, nil }, "current"},
		{"NaN threshold", func(r *sdk.DetectRequest) { r.Threshold = detector.Ptr(math.NaN()) }, "threshold"},
		{"negative threshold", func(r *sdk.DetectRequest) { r.Threshold = detector.Ptr(-1) }, "threshold"},
		{"unknown param", func(r *sdk.DetectRequest) { r.Params = map[string]any{"colour": "red"} }, "params.colour"},
	}
	numeric := []bad{
		{"NaN value", func(r *sdk.DetectRequest) { r.CurrentNumeric = []float64{1, math.NaN()} }, "current[1]"},
		{"Inf value", func(r *sdk.DetectRequest) { r.ReferenceNumeric = []float64{math.Inf(1)} }, "reference[0]"},
		{"categorical type", func(r *sdk.DetectRequest) { r.DataType = pb.DataType_CATEGORICAL }, ""},
	}
	perPlugin := map[string][]bad{
		"ks":        {{"p-value threshold above 1", func(r *sdk.DetectRequest) { r.Threshold = detector.Ptr(1.5) }, "threshold"}},
		"psi":       {{"bins 1", func(r *sdk.DetectRequest) { r.Params = map[string]any{"bins": 1} }, "params.bins"}, {"bins 2.5", func(r *sdk.DetectRequest) { r.Params = map[string]any{"bins": 2.5} }, "params.bins"}, {"epsilon string", func(r *sdk.DetectRequest) { r.Params = map[string]any{"epsilon": "x"} }, "params.epsilon"}},
		"chisquare": {{"numeric type", func(r *sdk.DetectRequest) { r.DataType = pb.DataType_NUMERIC }, "data_type"}, {"min_expected -1", func(r *sdk.DetectRequest) { r.Params = map[string]any{"min_expected": -1} }, "params.min_expected"}},
		"wasserstein": {{"normalize not bool", func(r *sdk.DetectRequest) { r.Params = map[string]any{"normalize": 1} }, "params.normalize"},
			{"raw without threshold", func(r *sdk.DetectRequest) { r.Params = map[string]any{"normalize": false} }, "threshold"}},
		"jensenshannon": {{"bins 0", func(r *sdk.DetectRequest) { r.Params = map[string]any{"bins": 0} }, "params.bins"}},
	}
	for _, name := range plugins {
		cases := append(append([]bad(nil), common...), perPlugin[name]...)
		if name != "chisquare" {
			cases = append(cases, numeric...)
		}
		for _, c := range cases {
			req := good[name](name)
			c.edit(req)
			_, err := detect(h, name, req)
			var se *sdk.Error
			if !errors.As(err, &se) || se.Class != sdk.InvalidRequest {
				t.Errorf("%s, %s: err = %v, want invalid_request", name, c.what, err)
				continue
			}
			want := c.field
			if want == "" {
				want = "data_type"
				if name == "psi" || name == "jensenshannon" {
					want = "numeric" // categorical type with numeric values
				}
			}
			if se.Field != want {
				t.Errorf("%s, %s: field %q, want %q (%v)", name, c.what, se.Field, want, err)
			}
		}
		if _, err := detect(h, name, good[name](name)); err != nil {
			t.Errorf("%s: a good request after bad ones: %v", name, err)
		}
	}
}

// TestPluginsMillionValues sends 10^6-value samples through each numeric
// plugin process (streamed in chunks); it must finish, not time out.
func TestPluginsMillionValues(t *testing.T) {
	h := newHost(t)
	ref, cur := normal(1_000_000, 0, 11), normal(1_000_000, 0.01, 12)
	for _, name := range []string{"ks", "psi", "wasserstein", "jensenshannon"} {
		resp, err := detect(h, name, &sdk.DetectRequest{Method: name, DataType: pb.DataType_NUMERIC, ReferenceNumeric: ref, CurrentNumeric: cur})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if resp.GetDetails().GetFields()["n_current"].GetNumberValue() != 1e6 {
			t.Errorf("%s: details %v", name, resp.GetDetails())
		}
	}
	// A shift of 0.01 sd is visible to KS with 10^6 values each.
	resp, _ := detect(h, "ks", &sdk.DetectRequest{Method: "ks", DataType: pb.DataType_NUMERIC, ReferenceNumeric: ref, CurrentNumeric: cur})
	if !resp.GetDrifted() {
		t.Errorf("ks on 10^6 values shifted by 0.01 sd: %v", resp)
	}
}
