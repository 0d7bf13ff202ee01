package main

import (
	"context"
	"encoding/json"
	"testing"

	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

const pngDataURL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="

func imageReq() *pb.ChatRequest {
	req := chatReq("gpt-test")
	req.Messages[1].Content = "what is this?"
	req.Messages[1].Parts = []*pb.ContentPart{
		{Type: "text", Text: "what is this?"},
		{Type: "image_url", ImageUrl: pngDataURL, ImageDetail: "low"},
		{Type: "image_url", ImageUrl: "https://img.test/cat.jpg"},
	}
	return req
}

// TestImagesSentUpstream: a message with parts goes upstream as OpenAI's
// content array, whole and streamed; the stub (which refuses malformed
// image parts as OpenAI does) echoes what it got.
func TestImagesSentUpstream(t *testing.T) {
	p, stub := setup(t, nil)
	resp, err := p.Chat(context.Background(), imageReq())
	if err != nil {
		t.Fatal(err)
	}
	if want := "echo: what is this?[image image/png 68 bytes][image https://img.test/cat.jpg]"; resp.GetContent() != want {
		t.Fatalf("answer %q, want %q", resp.GetContent(), want)
	}
	msgs := stub.LastRequest("/v1/chat/completions", "gpt-test")["messages"].([]any)
	got, _ := json.Marshal(msgs[1].(map[string]any)["content"])
	want := `[{"text":"what is this?","type":"text"},{"image_url":{"detail":"low","url":"` + pngDataURL + `"},"type":"image_url"},{"image_url":{"url":"https://img.test/cat.jpg"},"type":"image_url"}]`
	if string(got) != want {
		t.Fatalf("content upstream:\n%s\nwant\n%s", got, want)
	}
	var text string
	err = p.ChatStream(context.Background(), imageReq(), func(ev *pb.ChatEvent) error { text += ev.GetDelta(); return nil })
	if err != nil || text != resp.GetContent() {
		t.Fatalf("stream %q %v", text, err)
	}
	// A part the plugin cannot carry is the caller's error, named.
	bad := imageReq()
	bad.Messages[1].Parts[1].ImageUrl = ""
	if _, err := p.Chat(context.Background(), bad); err == nil || !containsAll(err.Error(), "parts[1].image_url") {
		t.Fatalf("empty image URL: %v", err)
	}
}
