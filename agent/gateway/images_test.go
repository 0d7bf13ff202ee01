package gateway

import (
	"strings"
	"testing"

	"github.com/vigilml/vigil/agent/gateway/tokens"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// pngDataURL is a 1x1 PNG as a data: URL.
const pngDataURL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="

func imageBody(model, content string) string {
	return `{"model":"` + model + `","messages":[{"role":"user","content":` + content + `}]}`
}

// TestImagePartsValidation: every refusal is a 400 whose param names the
// part.
func TestImagePartsValidation(t *testing.T) {
	h := newHarness(t, testCfg())
	cases := []struct{ name, body, param, msg string }{
		{"image in a system message", `{"model":"single","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x.test/a.png"}}]},{"role":"user","content":"hi"}]}`,
			"messages[0].content[0].type", "only allowed in user messages"},
		{"no url", imageBody("single", `[{"type":"image_url","image_url":{}}]`), "messages[0].content[0].image_url", "image_url.url is required"},
		{"no image_url", imageBody("single", `[{"type":"image_url"}]`), "messages[0].content[0].image_url", "image_url.url is required"},
		{"file URL", imageBody("single", `[{"type":"image_url","image_url":{"url":"file:///etc/passwd"}}]`), "messages[0].content[0].image_url", "http(s) URL or a data: URL"},
		{"not an image type", imageBody("single", `[{"type":"image_url","image_url":{"url":"data:text/plain;base64,aGk="}}]`), "messages[0].content[0].image_url", `image type "text/plain"`},
		{"not base64", imageBody("single", `[{"type":"image_url","image_url":{"url":"data:image/png;base64,***"}}]`), "messages[0].content[0].image_url", "not base64"},
		{"not ;base64", imageBody("single", `[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]`), "messages[0].content[0].image_url", "data:<image type>;base64,<data>"},
		{"bad detail", imageBody("single", `[{"type":"image_url","image_url":{"url":"https://x.test/a.png","detail":"max"}}]`), "messages[0].content[0].image_url", `detail "max"`},
		{"audio", imageBody("single", `[{"type":"text","text":"hi"},{"type":"input_audio","input_audio":{"data":"aGk=","format":"wav"}}]`), "messages[0].content[1].type", `type "input_audio"`},
	}
	for _, tc := range cases {
		w := h.do(t, "/chat", tc.body)
		e := errBody(t, w)
		if w.Code != 400 || e.Param == nil || *e.Param != tc.param || !strings.Contains(e.Message, tc.msg) {
			t.Errorf("%s: %d param %v: %s", tc.name, w.Code, e.Param, e.Message)
		}
	}
	if n := h.a.count("solo"); n != 0 {
		t.Fatalf("refused requests reached the provider %d times", n)
	}
}

// TestImagePartsConversion: a message with an image carries its parts in
// order (and its text joined in content); text-only parts stay plain
// content, as before images.
func TestImagePartsConversion(t *testing.T) {
	h := newHarness(t, testCfg())
	w := h.do(t, "/chat", imageBody("single", `[{"type":"text","text":"what is "},{"type":"image_url","image_url":{"url":"`+pngDataURL+`","detail":"low"}},{"type":"text","text":"this?"},{"type":"image_url","image_url":{"url":"https://x.test/b.jpg"}}]`))
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	m := h.a.last["solo"].GetMessages()[0]
	want := []*pb.ContentPart{{Type: "text", Text: "what is "}, {Type: "image_url", ImageUrl: pngDataURL, ImageDetail: "low"}, {Type: "text", Text: "this?"}, {Type: "image_url", ImageUrl: "https://x.test/b.jpg"}}
	if m.GetContent() != "what is this?" || len(m.GetParts()) != len(want) {
		t.Fatalf("message %v", m)
	}
	for i, p := range m.GetParts() {
		if p.GetType() != want[i].GetType() || p.GetText() != want[i].GetText() || p.GetImageUrl() != want[i].GetImageUrl() || p.GetImageDetail() != want[i].GetImageDetail() {
			t.Errorf("part %d = %v, want %v", i, p, want[i])
		}
	}
	if w := h.do(t, "/chat", imageBody("single", `[{"type":"text","text":"only "},{"type":"text","text":"text"}]`)); w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if m := h.a.last["solo"].GetMessages()[0]; m.GetContent() != "only text" || m.GetParts() != nil {
		t.Fatalf("text parts: %v", m)
	}
}

// TestImagesNeedTheCapability: a request with an image skips a target
// whose running plugin does not declare "images" (it would read only the
// text) and goes to the next; with none left, 400 unsupported.
func TestImagesNeedTheCapability(t *testing.T) {
	h := newHarness(t, testCfg())
	h.g.providers = capFleet{fleet{"pa": h.a, "pb": h.b}, map[string][]string{"pa": {"chat", "stream"}, "pb": {"chat", "stream", ImagesCapability}}}
	img := `[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"https://x.test/a.png"}}]`
	for _, stream := range []string{"", `,"stream":true`} {
		body := strings.TrimSuffix(imageBody("chain", img), "}") + stream + "}"
		if w := h.do(t, "/chat", body); w.Code != 200 || w.Header().Get("x-vigil-provider") != "pb" {
			t.Fatalf("image%s on chain: %d %s %s", stream, w.Code, w.Header().Get("x-vigil-provider"), w.Body)
		}
		body = strings.TrimSuffix(imageBody("single", img), "}") + stream + "}"
		w := h.do(t, "/chat", body)
		if e := errBody(t, w); w.Code != 400 || e.Code != "unsupported" || !strings.Contains(e.Message, "provider pa does not take images") {
			t.Fatalf("image%s on single: %d %s", stream, w.Code, w.Body)
		}
	}
	if n := h.a.count("m1") + h.a.count("solo"); n != 0 {
		t.Fatalf("pa got %d requests with images", n)
	}
	if w := h.do(t, "/chat", imageBody("single", `[{"type":"text","text":"no image"}]`)); w.Code != 200 {
		t.Fatalf("text parts on single: %d %s", w.Code, w.Body)
	}
}

// TestImagesInCacheKeyAndTokens: the image and its detail are part of the
// cache key; the pre-flight count adds OpenAI's low-detail cost, or the
// cost of a 1024x1024 high-detail image, per image.
func TestImagesInCacheKeyAndTokens(t *testing.T) {
	msg := func(url, detail string) *pb.ChatRequest {
		return &pb.ChatRequest{Messages: []*pb.Message{{Role: "user", Content: "x", Parts: []*pb.ContentPart{{Type: "text", Text: "x"}, {Type: "image_url", ImageUrl: url, ImageDetail: detail}}}}}
	}
	keys := map[string]bool{}
	for _, r := range []*pb.ChatRequest{{Messages: []*pb.Message{{Role: "user", Content: "x"}}}, msg("https://a.test/1.png", ""), msg("https://a.test/2.png", ""), msg("https://a.test/1.png", "low")} {
		keys[cacheKey("a", "", r)] = true
	}
	if len(keys) != 4 {
		t.Fatalf("%d distinct keys for 4 requests", len(keys))
	}
	plain := messageTokens(tokens.O200kBase, &pb.Message{Role: "user", Content: "x"})
	if n := messageTokens(tokens.O200kBase, msg("u", "low").Messages[0]); n != plain+85 {
		t.Errorf("low detail: %d, want %d", n, plain+85)
	}
	if n := messageTokens(tokens.O200kBase, msg("u", "auto").Messages[0]); n != plain+765 {
		t.Errorf("auto detail: %d, want %d", n, plain+765)
	}
	if b := bytesBound(msg(pngDataURL, "high")); b > 1000 {
		t.Errorf("the byte bound counts the data URL's bytes as text: %d", b)
	}
}
