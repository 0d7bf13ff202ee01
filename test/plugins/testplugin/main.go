// Command testplugin is a plugin used by Vigil's own tests to exercise the
// plugin host and the contracts with real processes. It is not shipped. One
// source builds all three kinds: the kind is set at link time
// (-ldflags "-X main.kind=provider"), since a plugin binary serves one kind.
//
// Besides honest answers it misbehaves on request, so the host's
// supervision can be tested: parameters (detector) or model names
// (provider) ask it to crash, panic or hang; the detector's wait_ctx
// parameter makes Detect wait for its ctx to end and log how it did.
//
// A fault set at link time (-ldflags "-X main.fault=nan") or in the
// environment (TESTPLUGIN_FAULT=nan) makes it break
// the contract in one way, so the conformance kit's tests can show that
// each of its checks fails when it should; see faults below.
package main

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

var (
	kind    = "detector"
	name    = ""
	version = "0.0.1-test"
	fault   = ""
)

// faults are the ways the plugin can be built to break the contract.
var faults = map[string]string{
	"":                 "none: keeps the contract",
	"hang-by-hand":     "run without the handshake cookie, hangs instead of exiting",
	"bad-version":      "reports version \"latest\"",
	"long-name":        "reports a name of 64 characters, one more than the agent takes",
	"bad-capability":   "declares a provider capability that does not exist (tool for tools)",
	"config-required":  "rejects an empty configuration",
	"orphan":           "leaves a child process running when it exits",
	"bad-describe":     "detector: a method without data types",
	"always-drift":     "detector: always says drifted",
	"never-drift":      "detector: never says drifted",
	"nan":              "detector: answers a NaN statistic",
	"lax":              "detector: accepts empty samples, NaN and unknown methods",
	"small-limit":      "detector: fails on samples of more than 65,536 values",
	"crash-on-invalid": "detector: exits on invalid input",
	"no-usage":         "provider: the stream's last event has no usage",
	"needs-key":        "provider: every call answers class auth until Configure gives it an api_key",
	"bad-embed":        "provider: vectors of differing dimensions",
	"untyped":          "provider, vector store: plain errors (class internal) for unknown models and collections",
	"ignore-cancel":    "provider: a ChatStream cancelled after its first event runs on, holding the lock every chat call takes",
	"bad-order":        "vector store: matches worst first",
	"ignore-filter":    "vector store: ignores filters",
}

func main() {
	if f, ok := os.LookupEnv("TESTPLUGIN_FAULT"); ok {
		fault = f
	}
	if _, ok := faults[fault]; !ok {
		fmt.Fprintf(os.Stderr, "testplugin: unknown fault %q\n", fault)
		os.Exit(2)
	}
	if fault == "hang-by-hand" && os.Getenv(sdk.Handshake.MagicCookieKey) == "" {
		time.Sleep(time.Hour)
	}
	if fault == "bad-version" {
		version = "latest"
	}
	if fault == "orphan" && os.Getenv(sdk.Handshake.MagicCookieKey) != "" {
		// A child that outlives the plugin, in its process group.
		child := exec.Command("sleep", "300")
		if err := child.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "testplugin: start child:", err)
		}
	}
	if d := os.Getenv("TESTPLUGIN_START_DELAY"); d != "" {
		dur, _ := time.ParseDuration(d)
		time.Sleep(dur)
	}
	if name == "" {
		name = "test-" + kind
	}
	if fault == "long-name" {
		name = strings.Repeat("n", 64)
	}
	info := sdk.Info{Name: name, Version: version, Capabilities: []string{"test"}}
	if fault == "bad-capability" {
		info.Capabilities = []string{"chat", "tool"}
	}
	switch kind {
	case "detector":
		sdk.ServeDetector(info, detector{})
	case "provider":
		if fault != "bad-capability" {
			// Providers' capabilities are a fixed set (the kit checks).
			info.Capabilities = []string{"chat", "stream", "embeddings"}
		}
		if fault == "needs-key" {
			sdk.ServeProvider(info, &keyedProvider{})
			return
		}
		sdk.ServeProvider(info, provider{})
	case "vectorstore":
		sdk.ServeVectorStore(info, newMemStore())
	default:
		fmt.Fprintf(os.Stderr, "testplugin: unknown kind %q\n", kind)
		os.Exit(2)
	}
}

// misbehave acts on the test controls in a request.
func misbehave(crash, panicking bool, hang time.Duration) {
	if crash {
		fmt.Fprintln(os.Stderr, "testplugin: crashing on request")
		os.Exit(3)
	}
	if panicking {
		panic("testplugin: panic on request")
	}
	if hang > 0 {
		time.Sleep(hang)
	}
}

// --- detector ---------------------------------------------------------

type detector struct{}

func (detector) Configure(cfg map[string]any) []sdk.FieldError {
	var errs []sdk.FieldError
	if _, ok := cfg["greeting"]; !ok && fault == "config-required" {
		errs = append(errs, sdk.FieldError{Field: "greeting", Message: "is required"})
	}
	for k, v := range cfg {
		switch k {
		case "greeting":
			if _, ok := v.(string); !ok {
				errs = append(errs, sdk.FieldError{Field: k, Message: "must be a string"})
			}
		case "reject_whole":
			// An error about no one key, as a plugin in another
			// language may send.
			errs = append(errs, sdk.FieldError{Message: "rejects the configuration as a whole"})
		default:
			errs = append(errs, sdk.FieldError{Field: k, Message: "unknown key"})
		}
	}
	return errs
}

func (detector) Describe(context.Context) (*pb.DescribeResponse, error) {
	def, _ := structpb.NewValue(0.5)
	if fault == "bad-describe" {
		return &pb.DescribeResponse{Methods: []*pb.MethodInfo{{Name: "mean", DefaultThreshold: 0.5, Direction: pb.Direction_STATISTIC_ABOVE}}}, nil
	}
	return &pb.DescribeResponse{Methods: []*pb.MethodInfo{
		{Name: "mean", Description: "shift of the mean in units of the reference standard deviation",
			DataTypes: []pb.DataType{pb.DataType_NUMERIC}, DefaultThreshold: 0.5, Direction: pb.Direction_STATISTIC_ABOVE,
			Params: []*pb.ParamInfo{{Name: "threshold", Description: "drift above this", DefaultValue: def}}},
		{Name: "tvd", Description: "total variation distance between category frequencies",
			DataTypes: []pb.DataType{pb.DataType_CATEGORICAL}, DefaultThreshold: 0.1, Direction: pb.Direction_STATISTIC_ABOVE},
	}}, nil
}

func (detector) Detect(ctx context.Context, req *sdk.DetectRequest) (*pb.DetectResponse, error) {
	crash, _ := req.Params["crash"].(bool)
	pnc, _ := req.Params["panic"].(bool)
	hangMS, _ := req.Params["hang_ms"].(float64)
	misbehave(crash, pnc, time.Duration(hangMS)*time.Millisecond)
	if wait, _ := req.Params["wait_ctx"].(bool); wait {
		// A handler that honours ctx: it waits for the call to end and
		// says how it ended, for the host's tests.
		<-ctx.Done()
		fmt.Fprintf(os.Stderr, "testplugin: handler ctx ended: %v\n", ctx.Err())
		return nil, ctx.Err()
	}
	resp, err := detect(req)
	return applyDetectFault(req, resp, err)
}

// applyDetectFault breaks an honest answer the way the fault asks.
func applyDetectFault(req *sdk.DetectRequest, resp *pb.DetectResponse, err error) (*pb.DetectResponse, error) {
	switch fault {
	case "crash-on-invalid":
		if err != nil {
			os.Exit(3)
		}
	case "lax":
		if err != nil {
			return &pb.DetectResponse{Method: req.Method, Statistic: 0, Threshold: 0.5, Direction: pb.Direction_STATISTIC_ABOVE}, nil
		}
	case "small-limit":
		if len(req.ReferenceNumeric)+len(req.ReferenceCategorical) > sdk.ChunkValues {
			return nil, sdk.Errorf(sdk.Internal, "sample too large")
		}
	}
	if resp != nil {
		switch fault {
		case "always-drift":
			resp.Drifted = true
		case "never-drift":
			resp.Drifted = false
		case "nan":
			resp.Statistic = math.NaN()
		}
	}
	return resp, err
}

func detect(req *sdk.DetectRequest) (*pb.DetectResponse, error) {
	switch req.Method {
	case "mean":
		if req.DataType != pb.DataType_NUMERIC {
			return nil, sdk.FieldErrorf("data_type", "method mean takes numeric data")
		}
		if err := checkNumeric("reference", req.ReferenceNumeric); err != nil {
			return nil, err
		}
		if err := checkNumeric("current", req.CurrentNumeric); err != nil {
			return nil, err
		}
		mr, sr := meanStd(req.ReferenceNumeric)
		mc, _ := meanStd(req.CurrentNumeric)
		if sr == 0 {
			sr = 1
		}
		stat := math.Abs(mc-mr) / sr
		thr := 0.5
		if req.Threshold != nil {
			thr = *req.Threshold
		}
		details, _ := structpb.NewStruct(map[string]any{"reference_mean": mr, "current_mean": mc, "n_reference": float64(len(req.ReferenceNumeric)), "n_current": float64(len(req.CurrentNumeric))})
		return &pb.DetectResponse{Method: "mean", Statistic: stat, Threshold: thr, Direction: pb.Direction_STATISTIC_ABOVE, Drifted: stat > thr, Details: details}, nil
	case "tvd":
		if len(req.ReferenceCategorical) == 0 || len(req.CurrentCategorical) == 0 {
			return nil, sdk.FieldErrorf("reference_categorical", "both samples need at least one value")
		}
		fr, fc := freq(req.ReferenceCategorical), freq(req.CurrentCategorical)
		keys := map[string]bool{}
		for k := range fr {
			keys[k] = true
		}
		for k := range fc {
			keys[k] = true
		}
		d := 0.0
		for k := range keys {
			d += math.Abs(fr[k] - fc[k])
		}
		d /= 2
		thr := 0.1
		if req.Threshold != nil {
			thr = *req.Threshold
		}
		return &pb.DetectResponse{Method: "tvd", Statistic: d, Threshold: thr, Direction: pb.Direction_STATISTIC_ABOVE, Drifted: d > thr}, nil
	}
	return nil, sdk.FieldErrorf("method", "unknown method %q (offered: mean, tvd)", req.Method)
}

func checkNumeric(which string, xs []float64) error {
	if len(xs) == 0 {
		return sdk.FieldErrorf(which, "sample is empty")
	}
	for i, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return sdk.FieldErrorf(fmt.Sprintf("%s[%d]", which, i), "value is %v; only finite numbers are accepted", x)
		}
	}
	return nil
}

func meanStd(xs []float64) (float64, float64) {
	var sum float64
	for _, x := range xs {
		sum += x
	}
	m := sum / float64(len(xs))
	var ss float64
	for _, x := range xs {
		ss += (x - m) * (x - m)
	}
	return m, math.Sqrt(ss / float64(len(xs)))
}

func freq(xs []string) map[string]float64 {
	out := map[string]float64{}
	for _, x := range xs {
		out[x] += 1 / float64(len(xs))
	}
	return out
}

// --- provider ---------------------------------------------------------

// provider answers by echoing. Model names steer misbehaviour: "crash",
// "panic", "hang", "ratelimited", "overloaded", "too-long"; "slow" echoes
// after 50 ms (or fails when its ctx ends first), so that concurrent calls
// overlap; Chat with "goroutines" answers the plugin's goroutine count,
// which tells a test how many sessions the plugin holds open.
type provider struct{}

// slow holds a "slow" call back, as an upstream taking its time would.
func slow(ctx context.Context, model string) error {
	if model != "slow" {
		return nil
	}
	select {
	case <-time.After(50 * time.Millisecond):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// keyedProvider is a provider that needs an API key (fault needs-key), as
// one in front of a real upstream does: unconfigured, its calls answer
// class auth.
type keyedProvider struct {
	provider
	key atomic.Bool
}

func (p *keyedProvider) Configure(cfg map[string]any) []sdk.FieldError {
	var errs []sdk.FieldError
	for k, v := range cfg {
		if s, ok := v.(string); k != "api_key" || !ok || s == "" {
			errs = append(errs, sdk.FieldError{Field: k, Message: "unknown key, or an empty api_key"})
		}
	}
	if len(errs) == 0 && len(cfg) > 0 {
		p.key.Store(true)
	}
	return errs
}

func (p *keyedProvider) authorized() error {
	if !p.key.Load() {
		return sdk.Errorf(sdk.Auth, "upstream HTTP 401: no API key configured")
	}
	return nil
}

func (p *keyedProvider) Chat(ctx context.Context, req *pb.ChatRequest) (*pb.ChatResponse, error) {
	if err := p.authorized(); err != nil {
		return nil, err
	}
	return p.provider.Chat(ctx, req)
}

func (p *keyedProvider) ChatStream(ctx context.Context, req *pb.ChatRequest, send func(*pb.ChatEvent) error) error {
	if err := p.authorized(); err != nil {
		return err
	}
	return p.provider.ChatStream(ctx, req, send)
}

func (p *keyedProvider) Embed(ctx context.Context, req *pb.EmbedRequest) (*pb.EmbedResponse, error) {
	if err := p.authorized(); err != nil {
		return nil, err
	}
	return p.provider.Embed(ctx, req)
}

func (provider) Models(context.Context) (*pb.ModelsResponse, error) {
	return &pb.ModelsResponse{Models: []*pb.ModelInfo{{Id: "echo", ContextWindow: 4096, Chat: true, Embeddings: true, EmbeddingDimensions: 8}}}, nil
}

func (p provider) check(model string) error {
	misbehave(model == "crash", model == "panic", map[bool]time.Duration{true: time.Hour}[model == "hang"])
	switch model {
	case "echo", "slow":
		return nil
	case "ratelimited":
		return &sdk.Error{Class: sdk.RateLimited, Message: "slow down", RetryAfter: 1500 * time.Millisecond}
	case "overloaded":
		return &sdk.Error{Class: sdk.Overloaded, Message: "upstream overloaded"}
	case "too-long":
		return sdk.Errorf(sdk.ContextLengthExceeded, "prompt exceeds the 4096-token context window")
	}
	if fault == "untyped" {
		return fmt.Errorf("unknown model %q", model)
	}
	return sdk.FieldErrorf("model", "unknown model %q", model)
}

func lastUser(msgs []*pb.Message) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].GetRole() == "user" {
			return msgs[i].GetContent()
		}
	}
	return ""
}

// upstream is the one upstream connection a provider with fault
// ignore-cancel has: every chat call holds it.
var upstream sync.Mutex

func (p provider) Chat(ctx context.Context, req *pb.ChatRequest) (*pb.ChatResponse, error) {
	if fault == "ignore-cancel" {
		upstream.Lock()
		defer upstream.Unlock()
	}
	if req.GetModel() == "goroutines" {
		return &pb.ChatResponse{Id: "test-1", Model: "goroutines", Content: fmt.Sprint(runtime.NumGoroutine()), FinishReason: "stop"}, nil
	}
	if err := p.check(req.GetModel()); err != nil {
		return nil, err
	}
	if err := slow(ctx, req.GetModel()); err != nil {
		return nil, err
	}
	if len(req.GetMessages()) == 0 {
		return nil, sdk.FieldErrorf("messages", "at least one message is required")
	}
	out := "echo: " + lastUser(req.GetMessages())
	n := int32(len(strings.Fields(out)))
	return &pb.ChatResponse{Id: "test-1", Model: req.GetModel(), Content: out, FinishReason: "stop",
		Usage: &pb.Usage{PromptTokens: int32(len(req.GetMessages())), CompletionTokens: n, TotalTokens: n + int32(len(req.GetMessages()))}}, nil
}

func (p provider) ChatStream(ctx context.Context, req *pb.ChatRequest, send func(*pb.ChatEvent) error) error {
	if err := p.check(req.GetModel()); err != nil {
		return err
	}
	if err := slow(ctx, req.GetModel()); err != nil {
		return err
	}
	words := strings.Fields("echo: " + lastUser(req.GetMessages()))
	if fault == "ignore-cancel" {
		upstream.Lock()
		defer upstream.Unlock()
	}
	for i, w := range words {
		if i > 0 {
			w = " " + w
		}
		if err := send(&pb.ChatEvent{Delta: w, Id: "test-1", Model: req.GetModel()}); err != nil {
			return err
		}
		if i == 0 && fault == "ignore-cancel" {
			select {
			case <-ctx.Done():
				// Cancelled: it runs on as if it had not noticed,
				// keeping the upstream connection.
				time.Sleep(time.Hour)
			case <-time.After(3 * time.Second):
				// Not cancelled: a slow but complete stream (within
				// the call timeout the kit's test gives it).
			}
		}
	}
	n := int32(len(words))
	if fault == "no-usage" {
		return send(&pb.ChatEvent{FinishReason: "stop"})
	}
	return send(&pb.ChatEvent{FinishReason: "stop", Usage: &pb.Usage{CompletionTokens: n, TotalTokens: n}})
}

func (p provider) Embed(ctx context.Context, req *pb.EmbedRequest) (*pb.EmbedResponse, error) {
	if err := p.check(req.GetModel()); err != nil {
		return nil, err
	}
	if err := slow(ctx, req.GetModel()); err != nil {
		return nil, err
	}
	if len(req.GetInput()) == 0 {
		return nil, sdk.FieldErrorf("input", "at least one input is required")
	}
	resp := &pb.EmbedResponse{Model: req.GetModel(), Usage: &pb.Usage{}}
	for _, in := range req.GetInput() {
		v := make([]float32, 8)
		if fault == "bad-embed" {
			v = make([]float32, 8+len(resp.Embeddings))
		}
		for _, w := range strings.Fields(in) {
			h := fnv.New32a()
			h.Write([]byte(strings.ToLower(w)))
			v[h.Sum32()%8]++
		}
		resp.Embeddings = append(resp.Embeddings, &pb.Embedding{Values: v})
		resp.Usage.PromptTokens += int32(len(strings.Fields(in)))
	}
	resp.Usage.TotalTokens = resp.Usage.PromptTokens
	return resp, nil
}

func (p provider) CountTokens(ctx context.Context, req *pb.CountTokensRequest) (*pb.CountTokensResponse, error) {
	if err := p.check(req.GetModel()); err != nil {
		return nil, err
	}
	n := len(strings.Fields(req.GetText()))
	for _, m := range req.GetMessages() {
		n += len(strings.Fields(m.GetContent()))
	}
	return &pb.CountTokensResponse{Tokens: int32(n)}, nil
}

// --- vector store -----------------------------------------------------

type collection struct {
	dim      int
	distance pb.Distance
	records  map[string]*pb.Record
}

type memStore struct {
	mu   sync.Mutex
	cols map[string]*collection
}

func newMemStore() *memStore { return &memStore{cols: map[string]*collection{}} }

func (s *memStore) get(name string) (*collection, error) {
	c, ok := s.cols[name]
	if !ok && fault == "untyped" {
		return nil, fmt.Errorf("no collection %q", name)
	}
	if !ok {
		return nil, sdk.Errorf(sdk.NotFound, "no collection %q", name)
	}
	return c, nil
}

func (s *memStore) CreateCollection(_ context.Context, r *pb.CreateCollectionRequest) (*pb.CreateCollectionResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.GetName() == "" {
		return nil, sdk.FieldErrorf("name", "a collection needs a name")
	}
	if r.GetDimension() <= 0 {
		return nil, sdk.FieldErrorf("dimension", "must be positive, got %d", r.GetDimension())
	}
	if r.GetDistance() == pb.Distance_DISTANCE_UNSPECIFIED {
		return nil, sdk.FieldErrorf("distance", "choose cosine, dot or l2")
	}
	if c, ok := s.cols[r.GetName()]; ok {
		if r.GetIfNotExists() && c.dim == int(r.GetDimension()) && c.distance == r.GetDistance() {
			return &pb.CreateCollectionResponse{}, nil
		}
		return nil, sdk.FieldErrorf("name", "collection %q already exists", r.GetName())
	}
	s.cols[r.GetName()] = &collection{dim: int(r.GetDimension()), distance: r.GetDistance(), records: map[string]*pb.Record{}}
	return &pb.CreateCollectionResponse{}, nil
}

func (s *memStore) DropCollection(_ context.Context, r *pb.DropCollectionRequest) (*pb.DropCollectionResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.get(r.GetName()); err != nil {
		return nil, err
	}
	delete(s.cols, r.GetName())
	return &pb.DropCollectionResponse{}, nil
}

func (s *memStore) Upsert(_ context.Context, r *pb.UpsertRequest) (*pb.UpsertResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.get(r.GetCollection())
	if err != nil {
		return nil, err
	}
	for i, rec := range r.GetRecords() {
		if rec.GetId() == "" {
			return nil, sdk.FieldErrorf(fmt.Sprintf("records[%d].id", i), "every record needs an id")
		}
		if len(rec.GetVector()) != c.dim {
			return nil, sdk.FieldErrorf(fmt.Sprintf("records[%d].vector", i), "has %d dimensions, the collection %d", len(rec.GetVector()), c.dim)
		}
		for _, x := range rec.GetVector() {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, sdk.FieldErrorf(fmt.Sprintf("records[%d].vector", i), "holds a non-finite value")
			}
		}
	}
	for _, rec := range r.GetRecords() {
		c.records[rec.GetId()] = rec
	}
	return &pb.UpsertResponse{Upserted: int64(len(r.GetRecords()))}, nil
}

func (s *memStore) Query(_ context.Context, r *pb.QueryRequest) (*pb.QueryResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.get(r.GetCollection())
	if err != nil {
		return nil, err
	}
	if len(r.GetVector()) != c.dim {
		return nil, sdk.FieldErrorf("vector", "has %d dimensions, the collection %d", len(r.GetVector()), c.dim)
	}
	if r.GetK() <= 0 {
		return nil, sdk.FieldErrorf("k", "must be positive")
	}
	var out []*pb.Match
	filter := r.GetFilter()
	if fault == "ignore-filter" {
		filter = nil
	}
	for _, rec := range c.records {
		ok, err := matches(filter, rec.GetMetadata())
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		m := &pb.Match{Record: &pb.Record{Id: rec.GetId(), Text: rec.GetText(), Metadata: rec.GetMetadata()}, Score: score(c.distance, r.GetVector(), rec.GetVector())}
		if r.GetIncludeVectors() {
			m.Record.Vector = rec.GetVector()
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Score != out[j].Score {
			return out[i].Score > out[j].Score
		}
		return out[i].Record.Id < out[j].Record.Id
	})
	if fault == "bad-order" {
		slices.Reverse(out)
	}
	if len(out) > int(r.GetK()) {
		out = out[:r.GetK()]
	}
	return &pb.QueryResponse{Matches: out}, nil
}

func score(d pb.Distance, a, b []float32) float64 {
	var dot, na, nb, l2 float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		dot += x * y
		na += x * x
		nb += y * y
		l2 += (x - y) * (x - y)
	}
	switch d {
	case pb.Distance_COSINE:
		if na == 0 || nb == 0 {
			return 0
		}
		return dot / math.Sqrt(na*nb)
	case pb.Distance_DOT:
		return dot
	}
	return -math.Sqrt(l2)
}

func matches(f *pb.Filter, md *structpb.Struct) (bool, error) {
	if f == nil {
		return true, nil
	}
	switch k := f.GetKind().(type) {
	case *pb.Filter_And:
		for _, sub := range k.And.GetFilters() {
			if ok, err := matches(sub, md); err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case *pb.Filter_Or:
		for _, sub := range k.Or.GetFilters() {
			if ok, err := matches(sub, md); err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	case *pb.Filter_Condition:
		c := k.Condition
		got, ok := md.GetFields()[c.GetField()]
		if !ok {
			return c.GetOp() == pb.Condition_NE, nil
		}
		switch c.GetOp() {
		case pb.Condition_EQ:
			return got.AsInterface() == c.GetValue().AsInterface(), nil
		case pb.Condition_NE:
			return got.AsInterface() != c.GetValue().AsInterface(), nil
		case pb.Condition_LT, pb.Condition_LTE, pb.Condition_GT, pb.Condition_GTE:
			x, okx := got.GetKind().(*structpb.Value_NumberValue)
			y, oky := c.GetValue().GetKind().(*structpb.Value_NumberValue)
			if !okx || !oky {
				return false, nil
			}
			a, b := x.NumberValue, y.NumberValue
			switch c.GetOp() {
			case pb.Condition_LT:
				return a < b, nil
			case pb.Condition_LTE:
				return a <= b, nil
			case pb.Condition_GT:
				return a > b, nil
			}
			return a >= b, nil
		}
		return false, sdk.FieldErrorf("filter.condition.op", "unknown operator %v", c.GetOp())
	}
	return false, sdk.FieldErrorf("filter", "empty filter")
}

func (s *memStore) Delete(_ context.Context, r *pb.DeleteRequest) (*pb.DeleteResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.get(r.GetCollection())
	if err != nil {
		return nil, err
	}
	var n int64
	for _, id := range r.GetIds() {
		if _, ok := c.records[id]; ok {
			delete(c.records, id)
			n++
		}
	}
	if r.GetFilter() != nil {
		for id, rec := range c.records {
			ok, err := matches(r.GetFilter(), rec.GetMetadata())
			if err != nil {
				return nil, err
			}
			if ok {
				delete(c.records, id)
				n++
			}
		}
	}
	return &pb.DeleteResponse{Deleted: n}, nil
}

func (s *memStore) Stats(_ context.Context, r *pb.StatsRequest) (*pb.StatsResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.get(r.GetCollection())
	if err != nil {
		return nil, err
	}
	return &pb.StatsResponse{Collection: r.GetCollection(), Count: int64(len(c.records)), Dimension: int32(c.dim), Distance: c.distance}, nil
}
