package test

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// pngBase64 is a 1x1 PNG (68 bytes).
const pngBase64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="

// TestGatewayImages sends a user message with text and images through the
// agent to the real openai and anthropic plugins and their stubs (which
// check image parts and blocks as OpenAI and Anthropic do): the echo shows
// the images arrived, in OpenAI's content array upstream for openai and as
// image blocks for anthropic; a plugin that does not declare "images" is
// not sent them; malformed parts are 400s before any upstream call.
func TestGatewayImages(t *testing.T) {
	e := startGateway(t)
	content := `[{"type":"text","text":"what is this? "},{"type":"image_url","image_url":{"url":"data:image/png;base64,` + pngBase64 + `","detail":"low"}},{"type":"image_url","image_url":{"url":"https://img.test/cat.jpg"}}]`
	body := func(alias, extra string) string {
		return `{"model":"` + alias + `","messages":[{"role":"user","content":` + content + `}]` + extra + `}`
	}
	const echo = "echo: what is this? [image image/png 68 bytes][image https://img.test/cat.jpg]"
	for _, alias := range []string{"default", "claude"} {
		resp, b := e.post(t, "/chat/completions", gwWriteToken, body(alias, ""))
		var ans struct {
			Choices []struct {
				Message struct{ Content string } `json:"message"`
			} `json:"choices"`
		}
		if resp.StatusCode != 200 || json.Unmarshal(b, &ans) != nil || len(ans.Choices) != 1 || ans.Choices[0].Message.Content != echo {
			t.Fatalf("%s: %d %s", alias, resp.StatusCode, b)
		}
		// Streamed: the same text in deltas.
		resp, b = e.post(t, "/chat/completions", gwWriteToken, body(alias, `,"stream":true`))
		var text strings.Builder
		for _, d := range sseData(string(b)) {
			var ch struct {
				Choices []struct {
					Delta struct{ Content string } `json:"delta"`
				} `json:"choices"`
			}
			if d != "[DONE]" && json.Unmarshal([]byte(d), &ch) == nil && len(ch.Choices) == 1 {
				text.WriteString(ch.Choices[0].Delta.Content)
			}
		}
		if resp.StatusCode != 200 || text.String() != echo {
			t.Fatalf("%s streamed: %d %q\n%s", alias, resp.StatusCode, text.String(), b)
		}
	}
	msgs := e.stub.LastRequest("/v1/chat/completions", "gpt-test")["messages"].([]any)
	up, _ := json.Marshal(msgs[0].(map[string]any)["content"])
	if !strings.Contains(string(up), `{"image_url":{"detail":"low","url":"data:image/png;base64,`+pngBase64+`"},"type":"image_url"}`) {
		t.Errorf("OpenAI upstream content: %s", up)
	}
	blocks, _ := json.Marshal(e.ant.LastRequest("/v1/messages", "claude-test")["messages"])
	if !strings.Contains(string(blocks), `{"source":{"data":"`+pngBase64+`","media_type":"image/png","type":"base64"},"type":"image"}`) ||
		!strings.Contains(string(blocks), `{"source":{"type":"url","url":"https://img.test/cat.jpg"},"type":"image"}`) {
		t.Errorf("Anthropic upstream messages: %s", blocks)
	}

	// Both shipped chat plugins declare the capability (every instance of
	// them), the embedding-only one does not.
	var list struct {
		Plugins []struct {
			Path         string
			Capabilities []string
		}
	}
	_, lb := get(t, e.base+"/v1/plugins", gwReadToken)
	if err := json.Unmarshal(lb, &list); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, p := range list.Plugins {
		if p.Capabilities == nil {
			continue // not started
		}
		seen++
		bin := filepath.Base(p.Path)
		if has := slices.Contains(p.Capabilities, "images"); has != (bin == "openai" || bin == "anthropic") {
			t.Errorf("plugin %s capabilities %v", p.Path, p.Capabilities)
		}
	}
	if seen < 2 {
		t.Errorf("plugins: %s", lb)
	}

	calls := e.stub.Calls("/v1/chat/completions", "gpt-test")
	resp, b := e.post(t, "/chat/completions", gwWriteToken, `{"model":"default","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,not base64!"}}]}]}`)
	if resp.StatusCode != 400 || !strings.Contains(string(b), `"param":"messages[0].content[0].image_url"`) || e.stub.Calls("/v1/chat/completions", "gpt-test") != calls {
		t.Fatalf("bad data URL: %d %s", resp.StatusCode, b)
	}
}
