// Command anthropic is Vigil's provider plugin for Anthropic's Messages
// API: chat, streamed chat (message_start ... message_stop, ping and
// mid-stream error events), tool calls (tool_use and tool_result blocks),
// token counting and the model list, translated to and from the provider
// contract (which is OpenAI-shaped). Upstream failures become the
// contract's error classes. See README.md.
package main

import (
	"github.com/vigilml/vigil/agent/version"
	"github.com/vigilml/vigil/plugins/providers/internal/upstream"
	"github.com/vigilml/vigil/sdk"
)

func main() {
	// One P unless GOMAXPROCS is set: see upstream.DefaultProcs.
	upstream.LimitProcs()
	sdk.ServeProvider(sdk.Info{Name: "anthropic", Version: version.Plugin(), Capabilities: []string{"chat", "stream", "count_tokens", "tools", "images", "files", "reasoning_effort"}}, newProvider())
}
