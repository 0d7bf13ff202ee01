package test

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestGatewayFilesNodeSDK sends PDFs with the official OpenAI Node SDK
// (test/gateway/node/sdk_files.mjs) through the agent to the real openai
// and anthropic plugins and their stubs, on chat completions (file parts)
// and the Responses API (input_file), whole and streamed: the stubs check
// file parts and document blocks as OpenAI and Anthropic do (base64 PDF
// data, filename) and echo the name and decoded size, so the answer shows
// the file arrived whole. Refusals (file_id, file_url, no filename, not a
// PDF) are 400s naming the field. It then checks the upstream requests'
// shapes and that both chat plugins declare the "files" capability.
func TestGatewayFilesNodeSDK(t *testing.T) {
	sdkDir := npmPackage(t, "gateway/node", "openai", "sdk_files.mjs", "the gateway's file (PDF) SDK test")
	e := startGateway(t)
	runNodeCheck(t, sdkDir, "sdk_files.mjs", "OpenAI Node SDK files through the gateway",
		"VIGIL_BASE_URL="+e.base+"/openai/v1", "VIGIL_TOKEN="+gwWriteToken, "VIGIL_ANTHROPIC_ALIAS=claude-tools")

	msgs := e.stub.LastRequest("/v1/chat/completions", "gpt-test")["messages"].([]any)
	up, _ := json.Marshal(msgs[0].(map[string]any)["content"])
	if !strings.Contains(string(up), `{"file":{"file_data":"data:application/pdf;base64,JVBERi0`) || !strings.Contains(string(up), `"filename":"report.pdf"},"type":"file"}`) {
		t.Errorf("OpenAI upstream content: %s", up)
	}
	blocks, _ := json.Marshal(e.ant.LastRequest("/v1/messages", "claude-test")["messages"])
	if !strings.Contains(string(blocks), `{"source":{"data":"JVBERi0`) || !strings.Contains(string(blocks), `"media_type":"application/pdf","type":"base64"},"title":"report.pdf","type":"document"}`) {
		t.Errorf("Anthropic upstream messages: %s", blocks)
	}

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
	for _, p := range list.Plugins {
		if p.Capabilities == nil {
			continue // not started
		}
		bin := filepath.Base(p.Path)
		if has := slices.Contains(p.Capabilities, "files"); has != (bin == "openai" || bin == "anthropic") {
			t.Errorf("plugin %s capabilities %v", p.Path, p.Capabilities)
		}
	}
}
