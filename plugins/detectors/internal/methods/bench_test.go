package methods

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/vigilml/vigil/internal/testutil"
	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

type benchFeature struct {
	Method string `json:"method"`
	Ref    any    `json:"ref"`
	Cur    any    `json:"cur"`
	req    *sdk.DetectRequest
}

// benchFeatures are 20 features with 10,000-value reference and current
// windows: 12 numeric under KS (half of them shifted), 4 under PSI, 2
// under normalised Wasserstein, 2 categorical under chi-square.
func benchFeatures() []benchFeature {
	r := rand.New(rand.NewPCG(2026, 11))
	const n = 10000
	num := func(shift float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = r.NormFloat64() + shift
		}
		return out
	}
	cat := func(skew float64) []string {
		out := make([]string, n)
		for i := range out {
			u := r.Float64()
			for k := 0; k < int(skew); k++ {
				u *= r.Float64()
			}
			out[i] = "c" + strconv.Itoa(int(u*12))
		}
		return out
	}
	var fs []benchFeature
	addNum := func(method string, shift float64) {
		ref, cur := num(0), num(shift)
		fs = append(fs, benchFeature{Method: method, Ref: ref, Cur: cur, req: &sdk.DetectRequest{Method: method, DataType: pb.DataType_NUMERIC, ReferenceNumeric: ref, CurrentNumeric: cur}})
	}
	for i := 0; i < 12; i++ {
		addNum("ks", float64(i%2)*0.1)
	}
	for i := 0; i < 4; i++ {
		addNum("psi", float64(i%2)*0.2)
	}
	addNum("wasserstein", 0)
	addNum("wasserstein", 0.3)
	for i := 0; i < 2; i++ {
		ref, cur := cat(1), cat(float64(1+i))
		fs = append(fs, benchFeature{Method: "chisquare", Ref: ref, Cur: cur, req: &sdk.DetectRequest{Method: "chisquare", DataType: pb.DataType_CATEGORICAL, ReferenceCategorical: ref, CurrentCategorical: cur}})
	}
	return fs
}

// BenchmarkDrift20Features evaluates 20 features with 10,000-value
// windows through the real plugin processes (plugin host, gRPC, AutoMTLS),
// one feature after another, and times scipy on the same data in the
// same run: ms/eval is Vigil, scipy-ms/eval is scipy, x-scipy the ratio.
func BenchmarkDrift20Features(b *testing.B) {
	feats := benchFeatures()
	cfg := newHost(b)
	// Warm up: start every plugin once.
	for _, f := range feats {
		if _, err := detect(cfg, f.Method, f.req); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		for _, f := range feats {
			if _, err := detect(cfg, f.Method, f.req); err != nil {
				b.Fatal(err)
			}
		}
	}
	goMS := float64(time.Since(start).Microseconds()) / 1000 / float64(b.N)
	b.StopTimer()

	scipyMS := testutil.ReportScipy(b, "testdata/bench_scipy.py", feats, goMS)
	b.ReportMetric(0, "ns/op")
	fmt.Printf("drift, 20 features x 10,000 values: vigil plugins %.1f ms, scipy %.1f ms, scipy/vigil %.2f\n", goMS, scipyMS, scipyMS/goMS)
}
