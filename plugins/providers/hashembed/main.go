// Command hashembed is a local, deterministic embedding provider: feature
// hashing of word unigrams, word bigrams and character trigrams into a
// fixed number of dimensions, L2-normalised. It needs no network and no
// model file, so dev mode and tests have real embeddings.
//
// The embeddings are lexical, not semantic: texts that share words and
// spellings come out close, while synonyms ("car", "automobile") and
// paraphrases do not. Use a real embedding model for semantic search.
package main

import (
	"context"
	"hash/fnv"
	"math"
	"strings"
	"sync"
	"unicode"

	"github.com/vigilml/vigil/agent/version"
	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
	"github.com/vigilml/vigil/sdk/providerconf"
)

// Model is the one model this plugin serves.
const Model = "hashembed-v1"

// Feature weights: whole words carry most of the signal; bigrams add word
// order; character trigrams let inflections and typos land nearby.
const (
	wordWeight    = 1.0
	bigramWeight  = 0.5
	trigramWeight = 0.25
	maxDimensions = 8192
)

func main() {
	sdk.ServeProvider(sdk.Info{Name: "hashembed", Version: version.Plugin(), Capabilities: []string{"embeddings"}}, &provider{dims: 256})
}

type provider struct {
	mu   sync.Mutex
	dims int
}

// Configure takes one optional key, dimensions (default 256).
func (p *provider) Configure(m map[string]any) []sdk.FieldError {
	r := providerconf.New(m)
	r.Known("dimensions")
	dims := 256
	if n, ok := r.Int("dimensions", 1, maxDimensions); ok {
		dims = n
	}
	if errs := r.Errors(); len(errs) > 0 {
		return errs
	}
	p.mu.Lock()
	p.dims = dims
	p.mu.Unlock()
	return nil
}

func (p *provider) dimensions() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dims
}

func (p *provider) Models(context.Context) (*pb.ModelsResponse, error) {
	return &pb.ModelsResponse{Models: []*pb.ModelInfo{{Id: Model, Embeddings: true, EmbeddingDimensions: int32(p.dimensions())}}}, nil
}

func (p *provider) Embed(_ context.Context, req *pb.EmbedRequest) (*pb.EmbedResponse, error) {
	if req.GetModel() != Model {
		return nil, sdk.Errorf(sdk.NotFound, "model %q is not served by hashembed; its model is %s", req.GetModel(), Model)
	}
	if len(req.GetInput()) == 0 {
		return nil, sdk.FieldErrorf("input", "at least one input is required")
	}
	dims := p.dimensions()
	if req.Dimensions != nil {
		if d := req.GetDimensions(); d < 1 || d > maxDimensions {
			return nil, sdk.FieldErrorf("dimensions", "must be from 1 to %d, got %d", maxDimensions, d)
		}
		dims = int(req.GetDimensions())
	}
	out := &pb.EmbedResponse{Model: Model, Usage: &pb.Usage{}}
	for _, text := range req.GetInput() {
		vec, words := Embed(text, dims)
		out.Embeddings = append(out.Embeddings, &pb.Embedding{Values: vec})
		out.Usage.PromptTokens += int32(words)
	}
	out.Usage.TotalTokens = out.Usage.PromptTokens
	return out, nil
}

// Embed hashes text into a dims-long vector and returns it with the
// number of words. Each feature adds ±weight at index hash mod dims, the
// sign taken from another bit of the hash so that collisions cancel out
// on average instead of piling up. The vector is L2-normalised; a text
// with no letters or digits embeds to the zero vector.
func Embed(text string, dims int) ([]float32, int) {
	acc := make([]float64, dims)
	add := func(kind byte, feature string, w float64) {
		h := fnv.New64a()
		h.Write([]byte{kind})
		h.Write([]byte(feature))
		s := h.Sum64()
		sign := 1.0
		if s>>63 == 1 {
			sign = -1
		}
		acc[(s&(1<<63-1))%uint64(dims)] += sign * w
	}
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	for i, w := range words {
		add('w', w, wordWeight)
		if i > 0 {
			add('b', words[i-1]+" "+w, bigramWeight)
		}
		r := []rune("<" + w + ">")
		for j := 0; j+3 <= len(r); j++ {
			add('c', string(r[j:j+3]), trigramWeight)
		}
	}
	var norm float64
	for _, v := range acc {
		norm += v * v
	}
	norm = math.Sqrt(norm)
	out := make([]float32, dims)
	if norm > 0 {
		for i, v := range acc {
			out[i] = float32(v / norm)
		}
	}
	return out, len(words)
}

func (p *provider) Chat(context.Context, *pb.ChatRequest) (*pb.ChatResponse, error) {
	return nil, sdk.Errorf(sdk.Unsupported, "hashembed only embeds; it has no chat model")
}

func (p *provider) ChatStream(context.Context, *pb.ChatRequest, func(*pb.ChatEvent) error) error {
	return sdk.Errorf(sdk.Unsupported, "hashembed only embeds; it has no chat model")
}

func (p *provider) CountTokens(_ context.Context, req *pb.CountTokensRequest) (*pb.CountTokensResponse, error) {
	return nil, sdk.Errorf(sdk.Unsupported, "hashembed does not count tokens")
}
