package main

import (
	"context"
	"math"
	"testing"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

func cosine(a, b []float32) float64 {
	var dot float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
	}
	return dot
}

func TestEmbedProperties(t *testing.T) {
	a1, n := Embed("The GPU fleet is healthy", 256)
	a2, _ := Embed("the gpu FLEET is healthy!", 256)
	if n != 5 {
		t.Fatalf("words = %d", n)
	}
	for i := range a1 {
		if a1[i] != a2[i] {
			t.Fatalf("case and punctuation changed the vector at %d", i)
		}
	}
	var norm float64
	for _, v := range a1 {
		norm += float64(v) * float64(v)
	}
	if math.Abs(norm-1) > 1e-5 {
		t.Fatalf("norm² = %v, want 1", norm)
	}
	near, _ := Embed("the GPU fleet is unhealthy", 256)
	far, _ := Embed("bananas ripen in warm kitchens", 256)
	if cn, cf := cosine(a1, near), cosine(a1, far); cn <= cf || cn < 0.5 {
		t.Fatalf("lexical neighbours: cos(near)=%v cos(far)=%v", cn, cf)
	}
	// Lexical, not semantic: synonyms do not come out close.
	car, _ := Embed("car", 256)
	auto, _ := Embed("automobile", 256)
	if c := cosine(car, auto); c > 0.5 {
		t.Fatalf("cos(car, automobile) = %v: hashembed is not meant to know synonyms", c)
	}
	zero, _ := Embed("!!!", 8)
	for _, v := range zero {
		if v != 0 {
			t.Fatalf("no words should embed to zero: %v", zero)
		}
	}
}

func TestProvider(t *testing.T) {
	p := &provider{dims: 256}
	if errs := p.Configure(map[string]any{"dimensions": 64.0}); len(errs) > 0 {
		t.Fatal(errs)
	}
	resp, err := p.Embed(context.Background(), &pb.EmbedRequest{Model: Model, Input: []string{"one two", "three"}})
	if err != nil || len(resp.GetEmbeddings()) != 2 || len(resp.GetEmbeddings()[0].GetValues()) != 64 || resp.GetUsage().GetPromptTokens() != 3 {
		t.Fatalf("embed: %v %v", resp, err)
	}
	d := int32(0)
	if _, err := p.Embed(context.Background(), &pb.EmbedRequest{Model: Model, Input: []string{"x"}, Dimensions: &d}); sdk.ClassOf(err) != sdk.InvalidRequest {
		t.Fatalf("dimensions 0: %v", err)
	}
	if _, err := p.Embed(context.Background(), &pb.EmbedRequest{Model: "other", Input: []string{"x"}}); sdk.ClassOf(err) != sdk.NotFound {
		t.Fatalf("other model: %v", err)
	}
	if _, err := p.Chat(context.Background(), &pb.ChatRequest{}); sdk.ClassOf(err) != sdk.Unsupported {
		t.Fatalf("chat: %v", err)
	}
	if errs := p.Configure(map[string]any{"dimensions": 0.5, "x": 1.0}); len(errs) != 2 {
		t.Fatalf("bad config: %v", errs)
	}
}
