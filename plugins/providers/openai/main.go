// Command openai is Vigil's provider plugin for OpenAI's HTTP API and the
// servers that speak it (vLLM, Ollama, llama.cpp's server, TGI): chat
// completions, streamed chat completions, embeddings and the model list.
// Upstream HTTP failures become the contract's error classes so that the
// agent's gateway can retry, fall back or give up. See README.md.
package main

import (
	"github.com/vigilml/vigil/agent/version"
	"github.com/vigilml/vigil/plugins/providers/internal/upstream"
	"github.com/vigilml/vigil/sdk"
)

func main() {
	// One P unless GOMAXPROCS is set: see upstream.DefaultProcs.
	upstream.LimitProcs()
	sdk.ServeProvider(sdk.Info{Name: "openai", Version: version.Plugin(), Capabilities: []string{"chat", "stream", "embeddings", "tools", "images", "files", "logprobs", "penalties", "reasoning_effort", "openai_params"}}, newProvider())
}
