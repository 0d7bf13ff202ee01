package main

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

const pngBase64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="

func imageReq() *pb.ChatRequest {
	return &pb.ChatRequest{Model: "claude-test", Messages: []*pb.Message{
		{Role: "system", Content: "be brief"},
		{Role: "user", Content: "what is this?", Parts: []*pb.ContentPart{
			{Type: "text", Text: "what is this? "},
			{Type: "image_url", ImageUrl: "data:image/png;base64," + pngBase64, ImageDetail: "high"},
			{Type: "image_url", ImageUrl: "https://img.test/cat.jpg"},
		}},
	}}
}

// TestImagesTranslated: image parts become image blocks, inline (base64
// with its media type) or by URL, in order with the text; the stub, which
// checks image sources as the Messages API does, echoes them.
func TestImagesTranslated(t *testing.T) {
	p, stub := setup(t, nil)
	body, err := p.state().messagesBody(imageReq(), false)
	if err != nil {
		t.Fatal(err)
	}
	want := literal(t, `{
		"model": "claude-test", "max_tokens": 4096, "system": "be brief",
		"messages": [{"role": "user", "content": [
			{"type": "text", "text": "what is this? "},
			{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "`+pngBase64+`"}},
			{"type": "image", "source": {"type": "url", "url": "https://img.test/cat.jpg"}}]}]
	}`)
	if got := asJSON(t, body); !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		t.Fatalf("request body:\n%s", g)
	}
	resp, err := p.Chat(context.Background(), imageReq())
	if err != nil {
		t.Fatal(err)
	}
	if want := "echo: what is this? [image image/png 68 bytes][image https://img.test/cat.jpg]"; resp.GetContent() != want {
		t.Fatalf("answer %q, want %q", resp.GetContent(), want)
	}
	if n := stub.Calls("/v1/messages", "claude-test"); n != 1 {
		t.Fatalf("%d upstream requests", n)
	}

	// What the Messages API does not take is refused before any call,
	// with the part named.
	for url, msg := range map[string]string{
		"data:image/bmp;base64,Qk0=": `not "image/bmp"`,
		"data:image/png,abc":         "data:<image type>;base64,<data>",
		"ftp://img.test/cat.jpg":     "http(s) URL or a base64 data: URL",
	} {
		req := imageReq()
		req.Messages[1].Parts[2].ImageUrl = url
		if _, err := p.Chat(context.Background(), req); err == nil || !strings.Contains(err.Error(), "messages[1].parts[2].image_url") || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v", url, err)
		}
	}
	if n := stub.Calls("/v1/messages", "claude-test"); n != 1 {
		t.Fatalf("refused requests reached the upstream: %d", n)
	}
}
