package test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/vigilml/vigil/test/openaistub"
)

// TestGatewayObservationsAndScopes drives the agent with its real plugins:
// gateway requests become observations of llm:<alias> that the model
// stats API serves; an llm-scope token reaches the gateway and its own
// spend but nothing else; auth errors under /openai/v1 are in OpenAI's
// shape.
func TestGatewayObservationsAndScopes(t *testing.T) {
	e := startGateway(t)
	const chat, emb = "/chat/completions", "/embeddings"

	// Traffic: two answers, a stream, an embedding, an exhausted upstream.
	for i, c := range []struct {
		path, token, body string
		status            int
	}{
		{chat, gwLLMToken, chatJSON("solo", "one", ""), 200},
		{chat, gwWriteToken, chatJSON("solo", "two", ""), 200},
		{chat, gwLLMToken, chatJSON("solo", "three", `,"stream":true,"stream_options":{"include_usage":true}`), 200},
		{emb, gwLLMToken, `{"model":"lexical","input":"alpha beta"}`, 200},
		{chat, gwLLMToken, chatJSON("down", "x", ""), 503},
	} {
		if c.status == 503 {
			for range 3 {
				e.stub.Fail("gpt-down", openaistub.Fault{Status: 503})
			}
		}
		resp, body := e.post(t, c.path, c.token, c.body)
		if resp.StatusCode != c.status {
			t.Fatalf("request %d: %d, want %d: %s", i, resp.StatusCode, c.status, body)
		}
	}

	// The observations are written in the background (best effort):
	// poll the stats, with ':' both plain and escaped.
	var solo []versionStats
	waitFor(t, func() bool {
		code, v := modelStatsAuth(t, e.base, "llm:solo", gwReadToken)
		solo = v
		return code == 200 && len(v) == 1 && v[0].Requests == 3
	}, "3 observations of llm:solo in GET /v1/models/llm:solo/stats")
	if s := solo[0]; s.Version != "gpt-solo" || s.Errors != 0 || s.LatencyCount != 3 || s.LatencyP99Ms == nil {
		t.Errorf("llm:solo stats: %+v", s)
	}
	if code, v := modelStatsAuth(t, e.base, "llm%3Asolo", gwReadToken); code != 200 || len(v) != 1 || v[0].Requests != 3 {
		t.Errorf("escaped llm%%3Asolo: %d %+v", code, v)
	}
	waitFor(t, func() bool {
		code, v := modelStatsAuth(t, e.base, "llm:down", gwReadToken)
		return code == 200 && len(v) == 1 && v[0].Requests == 1 && v[0].Errors == 1 && v[0].Version == "gpt-down"
	}, "the failed request as an error of llm:down")
	waitFor(t, func() bool {
		code, v := modelStatsAuth(t, e.base, "llm:lexical", gwReadToken)
		return code == 200 && len(v) == 1 && v[0].Requests == 1 && v[0].Version == "hashembed-v1"
	}, "the embedding as an observation of llm:lexical")

	// Scopes.
	for _, c := range []struct {
		method, path, token, body string
		status                    int
	}{
		{"GET", "/openai/v1/models", gwLLMToken, "", 200},
		{"GET", "/openai/v1/models", gwReadToken, "", 200},
		{"POST", "/openai/v1/chat/completions", gwReadToken, chatJSON("solo", "x", ""), 403},
		{"GET", "/v1/llm/usage", gwLLMToken, "", 200},
		{"GET", "/v1/status", gwLLMToken, "", 403},
		{"GET", "/metrics", gwLLMToken, "", 403},
		{"GET", "/v1/models/llm:solo/stats", gwLLMToken, "", 403},
		{"POST", "/v1/observations", gwLLMToken, `{"observations":[]}`, 403},
	} {
		req, _ := http.NewRequest(c.method, e.base+c.path, strings.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer "+c.token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s %s with the %s token: %d, want %d", c.method, c.path, tokenName(c.token), resp.StatusCode, c.status)
		}
	}
	// An llm token sees only the budgets of its own token.
	_, body := get(t, e.base+"/v1/llm/usage", gwLLMToken)
	var usage struct {
		Budgets []struct {
			Name string `json:"name"`
		} `json:"budgets"`
	}
	if err := json.Unmarshal(body, &usage); err != nil || len(usage.Budgets) != 1 || usage.Budgets[0].Name != "llmapp-daily" {
		t.Errorf("usage for the llm token: %s", body)
	}
	_, body = get(t, e.base+"/v1/llm/usage", gwReadToken)
	if err := json.Unmarshal(body, &usage); err != nil || len(usage.Budgets) != 2 {
		t.Errorf("usage for the read token: %s", body)
	}

	// Auth errors under /openai/v1: OpenAI's shape; elsewhere Vigil's.
	for _, c := range []struct {
		path, token, wantType, wantCode string
		status                          int
	}{
		{"/openai/v1/chat/completions", "sk-wrong-key-0123456789", "invalid_request_error", "invalid_api_key", 401},
		{"/openai/v1/chat/completions", "", "invalid_request_error", "invalid_api_key", 401},
		{"/openai/v1/chat/completions", gwReadToken, "permission_error", "insufficient_permissions", 403},
	} {
		resp, body := e.post(t, strings.TrimPrefix(c.path, "/openai/v1"), c.token, chatJSON("solo", "x", ""))
		var oe struct {
			Error struct {
				Message, Type string
				Code          string
				Param         *string
			}
		}
		if err := json.Unmarshal(body, &oe); err != nil || resp.StatusCode != c.status || oe.Error.Type != c.wantType || oe.Error.Code != c.wantCode || oe.Error.Message == "" {
			t.Errorf("POST %s with %q: %d %s, want %d type %s code %s", c.path, c.token, resp.StatusCode, body, c.status, c.wantType, c.wantCode)
		}
	}
	code, body := get(t, e.base+"/v1/status", "sk-wrong-key-0123456789")
	if code != 401 || !strings.Contains(string(body), `"code": "unauthorized"`) {
		t.Errorf("Vigil's own API keeps its error shape: %d %s", code, body)
	}
}

func modelStatsAuth(t *testing.T, base, model, token string) (int, []versionStats) {
	t.Helper()
	code, body := get(t, base+"/v1/models/"+model+"/stats", token)
	var out struct {
		Versions []versionStats `json:"versions"`
	}
	if code == 200 {
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatal(err)
		}
	}
	return code, out.Versions
}

func tokenName(tok string) string {
	switch tok {
	case gwLLMToken:
		return "llm"
	case gwReadToken:
		return "read"
	case gwWriteToken:
		return "write"
	}
	return "unknown"
}
