package test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigilml/vigil/test/anthropicstub"
	"github.com/vigilml/vigil/test/openaistub"
)

var (
	providerPluginsOnce sync.Once
	providerPluginsDir  string
	providerPluginsErr  error
)

// providerPlugins builds the openai and hashembed plugins once per run.
func providerPlugins(t *testing.T) string {
	t.Helper()
	providerPluginsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vigil-provider-plugins-")
		if err != nil {
			providerPluginsErr = err
			return
		}
		providerPluginsDir = dir
		for _, name := range []string{"openai", "hashembed", "anthropic"} {
			if b, err := exec.Command("go", "build", "-o", filepath.Join(dir, name), "../plugins/providers/"+name).CombinedOutput(); err != nil {
				providerPluginsErr = fmt.Errorf("build %s plugin: %v\n%s", name, err, b)
				return
			}
		}
	})
	if providerPluginsErr != nil {
		t.Fatal(providerPluginsErr)
	}
	return providerPluginsDir
}

// gatewaySetup is what every gateway end-to-end test starts from: the
// OpenAI-wire stub (key sk-stub-key) serving models, and a temporary
// directory holding the provider plugins (plugins/, trusted by a
// catalog.json as a package would) and the stub's key file (openai.key).
// Its start method runs the agent with the test's gatewayConfig.
type gatewaySetup struct {
	stub                    *openaistub.Server
	stubURL                 string // base URL, without /v1
	dir, pluginDir, keyFile string
}

func newGatewaySetup(t *testing.T, models ...string) gatewaySetup {
	t.Helper()
	s := gatewaySetup{stub: openaistub.New(models...), dir: t.TempDir()}
	s.stub.APIKey = "sk-stub-key"
	srv := httptest.NewServer(s.stub)
	t.Cleanup(srv.Close)
	s.stubURL = srv.URL
	s.pluginDir = filepath.Join(s.dir, "plugins")
	if err := os.Mkdir(s.pluginDir, 0o755); err != nil {
		t.Fatal(err)
	}
	installProviders(t, s.pluginDir)
	s.keyFile = filepath.Join(s.dir, "openai.key")
	writeFile(t, s.keyFile, "sk-stub-key\n")
	return s
}

// gatewayConfig is what a gateway test's agent config says beyond what
// every one shares; gatewaySetup.start renders the shared part (data_dir
// and the config file in the setup's directory, the API on a loopback
// port, the setup's plugin directory started at boot).
type gatewayConfig struct {
	// tokens are the API tokens the agent accepts, in config order, by
	// name: app (scope write, gwWriteToken), viewer (read, gwReadToken),
	// llmapp (llm, gwLLMToken). start waits for health with viewer's.
	tokens []string
	// pluginEnv is plugins.env: environment for the named plugins.
	pluginEnv map[string][]string
	// gateway is the gateway section, "gateway:" line included, as YAML
	// to append to the config unchanged.
	gateway string
	// env is added to the agent's own environment.
	env []string
}

// gwTokens are the API tokens a gatewayConfig names.
var gwTokens = map[string]string{
	"app":    "{name: app, scope: write, secret: " + gwWriteToken + "}",
	"viewer": "{name: viewer, scope: read, secret: " + gwReadToken + "}",
	"llmapp": "{name: llmapp, scope: llm, secret: " + gwLLMToken + "}",
}

// yaml renders the whole agent config for a setup's directory and
// plugin directory.
func (c gatewayConfig) yaml(t *testing.T, dir, pluginDir string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir: %s\napi:\n  addr: 127.0.0.1:0\n  tokens:\n", filepath.Join(dir, "data"))
	for _, name := range c.tokens {
		tok, ok := gwTokens[name]
		if !ok {
			t.Fatalf("gatewayConfig: no API token named %q", name)
		}
		fmt.Fprintf(&b, "    - %s\n", tok)
	}
	fmt.Fprintf(&b, "plugins:\n  dirs: [%s]\n  start: boot\n", pluginDir)
	if len(c.pluginEnv) > 0 {
		b.WriteString("  env:\n")
		for _, plugin := range slices.Sorted(maps.Keys(c.pluginEnv)) {
			vars := make([]string, len(c.pluginEnv[plugin]))
			for i, v := range c.pluginEnv[plugin] {
				vars[i] = strconv.Quote(v)
			}
			fmt.Fprintf(&b, "    %s: [%s]\n", plugin, strings.Join(vars, ", "))
		}
	}
	b.WriteString(c.gateway)
	return b.String()
}

// start writes the agent config c describes as vigil.yaml in the setup's
// directory, runs the agent with it, and waits until it is healthy.
func (s gatewaySetup) start(t *testing.T, c gatewayConfig) *gatewayEnv {
	t.Helper()
	cfg := filepath.Join(s.dir, "vigil.yaml")
	writeFile(t, cfg, c.yaml(t, s.dir, s.pluginDir))
	a := startAgent(t, c.env, "-config", cfg)
	e := &gatewayEnv{stub: s.stub, base: "http://" + a.addr, a: a}
	waitHealthy(t, e.base, gwReadToken)
	return e
}

// installProviders copies the provider plugins into a fresh plugin
// directory with a catalog.json that trusts them, as a package would.
func installProviders(t *testing.T, pdir string) {
	t.Helper()
	src := providerPlugins(t)
	var entries []string
	for _, name := range []string{"openai", "hashembed", "anthropic"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pdir, name), b, 0o755); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		entries = append(entries, fmt.Sprintf(`{"name": %q, "kind": "provider", "file": %q, "sha256": %q}`, name, name, hex.EncodeToString(sum[:])))
	}
	writeFile(t, filepath.Join(pdir, "catalog.json"), `{"version": 1, "plugins": [`+strings.Join(entries, ",")+`]}`)
}

const (
	gwWriteToken = "gateway-write-token-0123456789"
	gwReadToken  = "gateway-read-token-0123456789"
	gwLLMToken   = "gateway-llm-token-0123456789"
)

var gwAliases = []string{"default", "long", "solo", "down", "cut", "embed", "lexical", "claude", "claude-tools", "chat", "reasoner", "claude-then-openai"}

type gatewayEnv struct {
	stub *openaistub.Server
	ant  *anthropicstub.Server
	base string
	a    *agentProc
}

// startGateway runs an OpenAI-wire stub and an agent whose gateway uses
// it through the real openai plugin (two instances: openai-main with a key
// file, local-vllm with a key from the agent's environment), hashembed,
// and the anthropic plugin in front of an Anthropic-wire stub. Aliases
// chat, reasoner (o4-mini, which refuses max_tokens as OpenAI's reasoning
// models do) and claude-then-openai serve the chat-parameters test.
func startGateway(t *testing.T) *gatewayEnv {
	t.Helper()
	gs := newGatewaySetup(t, "gpt-test", "gpt-backup", "gpt-long", "gpt-solo", "gpt-down", "gpt-cut", "emb-test", "o4-mini")
	ant := anthropicstub.New("claude-test")
	ant.APIKey = "sk-ant-stub"
	antSrv := httptest.NewServer(ant)
	t.Cleanup(antSrv.Close)

	antKey := filepath.Join(gs.dir, "anthropic.key")
	writeFile(t, antKey, "sk-ant-stub\n")
	e := gs.start(t, gatewayConfig{
		tokens: []string{"app", "viewer", "llmapp"},
		env:    []string{"VIGIL_TEST_STUB_KEY=sk-stub-key"},
		gateway: `gateway:
  request_timeout: 30s
  retry: {max_attempts: 3, base_backoff: 1ms, max_backoff: 5ms}
  breaker: {consecutive_failures: 4, open_for: 1h}
  prices:
    claude-test: {input: 100000, output: 0}
  budgets:
    - {name: claude-hourly, alias: claude, window: 1h, usd: 1.0}
    - {name: llmapp-daily, token: llmapp, window: 1d, usd: 50}
  providers:
    - name: openai-main
      plugin: openai
      base_url: ` + gs.stubURL + `/v1
      api_key_file: ` + gs.keyFile + `
      timeout: 1s
      max_concurrency: 8
    - name: local-vllm
      plugin: openai
      base_url: ` + gs.stubURL + `/v1
      api_key_env: VIGIL_TEST_STUB_KEY
      timeout: 5s
    - name: local-embed
      plugin: hashembed
      options: {dimensions: 64}
    - name: anthropic-main
      plugin: anthropic
      base_url: ` + antSrv.URL + `
      api_key_file: ` + antKey + `
  models:
    - name: default
      targets:
        - {provider: openai-main, model: gpt-test}
        - {provider: local-vllm, model: gpt-backup}
      context_window_fallback: long
    - name: long
      targets: [{provider: local-vllm, model: gpt-long}]
    - name: solo
      targets: [{provider: openai-main, model: gpt-solo}]
    - name: down
      targets: [{provider: openai-main, model: gpt-down}]
    - name: cut
      targets: [{provider: openai-main, model: gpt-cut}]
    - name: embed
      targets: [{provider: openai-main, model: emb-test}]
    - name: lexical
      targets: [{provider: local-embed, model: hashembed-v1}]
    - name: claude
      targets: [{provider: anthropic-main, model: claude-test}]
    - name: claude-tools
      targets: [{provider: anthropic-main, model: claude-test}]
    - name: chat
      targets: [{provider: openai-main, model: gpt-test}]
    - name: reasoner
      targets: [{provider: openai-main, model: o4-mini}]
    - name: claude-then-openai
      targets:
        - {provider: anthropic-main, model: claude-test}
        - {provider: openai-main, model: gpt-test}
`})
	e.ant = ant
	return e
}

func (e *gatewayEnv) post(t *testing.T, path, token, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", e.base+"/openai/v1"+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func chatJSON(model, content, extra string) string {
	return fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":%q}]%s}`, model, content, extra)
}

// TestGatewayThroughPlugins drives the gateway over HTTP against the real
// openai and hashembed plugin processes and a faithful upstream stub, and
// checks retries, fallback and the circuit breaker by counting upstream
// calls.
func TestGatewayThroughPlugins(t *testing.T) {
	e := startGateway(t)
	const chat = "/v1/chat/completions"

	type want struct {
		status          int
		provider        string
		attempts        string
		primary, backup int // upstream calls to gpt-test and gpt-backup
		code            string
	}
	for _, tc := range []struct {
		name   string
		faults []openaistub.Fault
		want   want
	}{
		{"ok", nil, want{200, "openai-main", "1", 1, 0, ""}},
		{"429 with retry-after-ms, then ok", []openaistub.Fault{{Status: 429, RetryAfterMs: "20"}}, want{200, "openai-main", "2", 2, 0, ""}},
		{"malformed JSON, then ok", []openaistub.Fault{{Malformed: true}}, want{200, "openai-main", "2", 2, 0, ""}},
		{"slow past the provider timeout, then ok", []openaistub.Fault{{Delay: 3 * time.Second}}, want{200, "openai-main", "2", 2, 0, ""}},
		{"three 500s: fallback to the next target", []openaistub.Fault{{Status: 500}, {Status: 500}, {Status: 500}}, want{200, "local-vllm", "4", 3, 1, ""}},
		{"401: next target without retry", []openaistub.Fault{{Status: 401}}, want{200, "local-vllm", "2", 1, 1, ""}},
		{"insufficient_quota: next target without retry", []openaistub.Fault{{Status: 429, Type: "insufficient_quota", Code: "insufficient_quota"}}, want{200, "local-vllm", "2", 1, 1, ""}},
		{"400: returned, never retried", []openaistub.Fault{{Status: 400}}, want{400, "openai-main", "1", 1, 0, "invalid_request"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p0, b0 := e.stub.Calls(chat, "gpt-test"), e.stub.Calls(chat, "gpt-backup")
			e.stub.Fail("gpt-test", tc.faults...)
			resp, body := e.post(t, "/chat/completions", gwWriteToken, chatJSON("default", "hello gateway", `,"temperature":0.5`))
			w := tc.want
			if resp.StatusCode != w.status || resp.Header.Get("x-vigil-provider") != w.provider || resp.Header.Get("x-vigil-attempts") != w.attempts {
				t.Fatalf("status %d provider %q attempts %q, want %d %q %q: %s", resp.StatusCode, resp.Header.Get("x-vigil-provider"), resp.Header.Get("x-vigil-attempts"), w.status, w.provider, w.attempts, body)
			}
			if p, b := e.stub.Calls(chat, "gpt-test")-p0, e.stub.Calls(chat, "gpt-backup")-b0; p != w.primary || b != w.backup {
				t.Fatalf("upstream calls: primary %d backup %d, want %d %d", p, b, w.primary, w.backup)
			}
			if w.code != "" {
				var eb struct {
					Error struct{ Code, Message string }
				}
				if json.Unmarshal(body, &eb) != nil || eb.Error.Code != w.code {
					t.Fatalf("error body %s", body)
				}
				return
			}
			var c struct {
				Choices []struct{ Message struct{ Content string } }
			}
			if err := json.Unmarshal(body, &c); err != nil || len(c.Choices) != 1 || c.Choices[0].Message.Content != "echo: hello gateway" {
				t.Fatalf("answer %s", body)
			}
		})
	}

	t.Run("response cache", func(t *testing.T) {
		before := e.stub.Calls(chat, "gpt-test")
		misses, hit := 0, false
		// The cache is written in the background, so an identical request
		// right after the first may still miss; poll until one hits.
		for i := 0; i < 100 && !hit; i++ {
			resp, body := e.post(t, "/chat/completions", gwWriteToken, chatJSON("default", "cache me", `,"temperature":0`))
			if resp.StatusCode != 200 || !strings.Contains(string(body), `"content":"echo: cache me"`) {
				t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
			}
			switch c := resp.Header.Get("x-vigil-cache"); c {
			case "miss":
				misses++
				time.Sleep(20 * time.Millisecond)
			case "hit":
				hit = resp.Header.Get("x-vigil-attempts") == "0" && resp.Header.Get("x-vigil-cost-usd") == "0.00000000"
				if !hit {
					t.Fatalf("a hit with %v", resp.Header)
				}
			default:
				t.Fatalf("x-vigil-cache %q", c)
			}
		}
		if !hit || misses < 1 {
			t.Fatalf("no cache hit after %d misses", misses)
		}
		if n := e.stub.Calls(chat, "gpt-test") - before; n != misses {
			t.Fatalf("%d upstream calls for %d misses and a hit", n, misses)
		}
	})

	t.Run("context length: the fallback alias answers", func(t *testing.T) {
		e.stub.Fail("gpt-test", openaistub.Fault{Status: 400, Code: "context_length_exceeded"})
		resp, body := e.post(t, "/chat/completions", gwWriteToken, chatJSON("default", "a very long prompt", ""))
		if resp.StatusCode != 200 || resp.Header.Get("x-vigil-model") != "gpt-long" || e.stub.Calls(chat, "gpt-long") != 1 {
			t.Fatalf("%d %v: %s", resp.StatusCode, resp.Header, body)
		}
	})

	t.Run("circuit breaker on a single target", func(t *testing.T) {
		for i := 0; i < 4; i++ {
			e.stub.Fail("gpt-solo", openaistub.Fault{Status: 503})
		}
		// Three failed attempts, then one more in the second request: four
		// in a row open the circuit, so the rest of that request and the
		// next one never reach the upstream.
		for i, calls := range []int{3, 4, 4} {
			resp, body := e.post(t, "/chat/completions", gwWriteToken, chatJSON("solo", "x", ""))
			if resp.StatusCode != 503 || e.stub.Calls(chat, "gpt-solo") != calls {
				t.Fatalf("request %d: %d, %d calls, want 503 and %d: %s", i, resp.StatusCode, e.stub.Calls(chat, "gpt-solo"), calls, body)
			}
			if i == 2 && (resp.Header.Get("x-vigil-attempts") != "0" || !strings.Contains(string(body), "circuit breaker")) {
				t.Fatalf("open circuit should fail fast: %v %s", resp.Header, body)
			}
		}
		_, st := get(t, e.base+"/v1/status", gwReadToken)
		if !strings.Contains(string(st), "circuit open for openai-main/gpt-solo") {
			t.Errorf("status does not report the open circuit: %s", st)
		}
	})

	t.Run("stream with usage", func(t *testing.T) {
		e.stub.Fail("gpt-test", openaistub.Fault{Status: 503}) // before the first byte: retried
		resp, body := e.post(t, "/chat/completions", gwWriteToken, chatJSON("default", "stream this now", `,"stream":true,"stream_options":{"include_usage":true}`))
		events := sseData(string(body))
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("x-vigil-attempts") != "2" {
			t.Fatalf("%d %v", resp.StatusCode, resp.Header)
		}
		if len(events) < 3 || events[len(events)-1] != "[DONE]" || !strings.Contains(events[len(events)-2], `"choices":[]`) || !strings.Contains(events[len(events)-2], `"total_tokens":7`) {
			t.Fatalf("events: %q", events)
		}
		if got := streamText(t, events); got != "echo: stream this now" {
			t.Fatalf("text %q", got)
		}
	})

	t.Run("stream cut mid-way ends with an error event", func(t *testing.T) {
		before := e.stub.Calls(chat, "gpt-backup")
		e.stub.Fail("gpt-test", openaistub.Fault{CutAfter: 2})
		resp, body := e.post(t, "/chat/completions", gwWriteToken, chatJSON("default", "one two three four", `,"stream":true`))
		events := sseData(string(body))
		last := events[len(events)-1]
		if resp.StatusCode != 200 || last == "[DONE]" || !strings.Contains(last, `"error"`) || !strings.Contains(last, "mid-stream") {
			t.Fatalf("stream did not end with an error: %q", events)
		}
		if e.stub.Calls(chat, "gpt-backup") != before {
			t.Fatal("a started stream fell back to another target")
		}
	})

	t.Run("embeddings float and base64", func(t *testing.T) {
		resp, body := e.post(t, "/embeddings", gwWriteToken, `{"model":"embed","input":["alpha beta","gamma"],"encoding_format":"base64"}`)
		var r struct {
			Data []struct {
				Index     int
				Embedding string
			}
		}
		if err := json.Unmarshal(body, &r); err != nil || resp.StatusCode != 200 || len(r.Data) != 2 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		raw, _ := base64.StdEncoding.DecodeString(r.Data[1].Embedding)
		want := openaistub.Vector("gamma", 8)
		if len(raw) != 4*len(want) {
			t.Fatalf("base64 embedding of %d bytes", len(raw))
		}
		for i, w := range want {
			if got := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])); got != w {
				t.Fatalf("value %d: %v, want %v", i, got, w)
			}
		}
		resp, body = e.post(t, "/embeddings", gwWriteToken, `{"model":"lexical","input":"the gpu fleet"}`)
		var f struct {
			Data []struct{ Embedding []float64 }
		}
		if err := json.Unmarshal(body, &f); err != nil || resp.StatusCode != 200 || len(f.Data) != 1 || len(f.Data[0].Embedding) != 64 || resp.Header.Get("x-vigil-provider") != "local-embed" {
			t.Fatalf("hashembed: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("anthropic through the gateway", func(t *testing.T) {
		const msgs = "/v1/messages"
		e.ant.Fail("claude-test", anthropicstub.Fault{Status: 529}) // overloaded: retried
		resp, body := e.post(t, "/chat/completions", gwWriteToken, `{"model":"claude","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi claude"}],"max_tokens":64}`)
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"content":"echo: hi claude"`) || resp.Header.Get("x-vigil-attempts") != "2" || e.ant.Calls(msgs, "claude-test") != 2 {
			t.Fatalf("%d %v: %s", resp.StatusCode, resp.Header, body)
		}
		if got := resp.Header.Get("x-vigil-cost-usd"); got != "0.40000000" {
			t.Fatalf("cost of 4 prompt tokens at 100000 USD per million: %q", got)
		}
		if sys := e.ant.LastRequest(msgs, "claude-test")["system"]; sys != "be brief" {
			t.Fatalf("system prompt sent as %v", sys)
		}
		resp, body = e.post(t, "/chat/completions", gwWriteToken, chatJSON("claude", "stream from claude", `,"stream":true,"stream_options":{"include_usage":true}`))
		events := sseData(string(body))
		if resp.StatusCode != 200 || streamText(t, events) != "echo: stream from claude" || events[len(events)-1] != "[DONE]" || !strings.Contains(events[len(events)-2], `"completion_tokens":4`) {
			t.Fatalf("stream: %q", events)
		}
		e.ant.Fail("claude-test", anthropicstub.Fault{Status: 400, Message: "Your credit balance is too low to access the Anthropic API"})
		calls := e.ant.Calls(msgs, "claude-test")
		resp, body = e.post(t, "/chat/completions", gwWriteToken, chatJSON("claude", "x", ""))
		if resp.StatusCode != 502 || !strings.Contains(string(body), `"code":"quota_exhausted"`) || e.ant.Calls(msgs, "claude-test") != calls+1 {
			t.Fatalf("spend limit: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("budget", func(t *testing.T) {
		// 0.70 USD spent on claude above; 0.30 more reaches the 1.00 budget.
		resp, body := e.post(t, "/chat/completions", gwWriteToken, chatJSON("claude", "a b c", ""))
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		calls := e.ant.Calls("/v1/messages", "claude-test")
		resp, body = e.post(t, "/chat/completions", gwWriteToken, chatJSON("claude", "one more", ""))
		if resp.StatusCode != 429 || !strings.Contains(string(body), `"code":"budget_exceeded"`) || resp.Header.Get("x-should-retry") != "false" || e.ant.Calls("/v1/messages", "claude-test") != calls {
			t.Fatalf("over budget: %d %v %s", resp.StatusCode, resp.Header, body)
		}
		code, body := get(t, e.base+"/v1/llm/usage", gwReadToken)
		var u struct {
			Budgets []struct {
				Name     string
				SpentUSD float64 `json:"spent_usd"`
			}
		}
		// claude-hourly first; llmapp-daily (TestGatewayObservationsAndScopes) second.
		if code != 200 || json.Unmarshal(body, &u) != nil || len(u.Budgets) != 2 || u.Budgets[0].Name != "claude-hourly" || math.Abs(u.Budgets[0].SpentUSD-1.0) > 1e-9 {
			t.Fatalf("/v1/llm/usage: %d %s", code, body)
		}
		cli := exec.Command(vigilBin, "llm", "usage", "-http-addr", e.a.addr)
		cli.Env = append(os.Environ(), "VIGIL_TOKEN="+gwReadToken)
		outb, err := cli.CombinedOutput()
		out := string(outb)
		if err != nil || !strings.Contains(out, "claude-hourly") || !strings.Contains(out, "1.0000") {
			t.Fatalf("vigil llm usage: %v\n%s", err, out)
		}
	})

	t.Run("auth, errors and metrics", func(t *testing.T) {
		resp, body := e.post(t, "/chat/completions", gwReadToken, chatJSON("default", "x", ""))
		if resp.StatusCode != 403 {
			t.Fatalf("read token on chat: %d %s", resp.StatusCode, body)
		}
		resp, body = e.post(t, "/chat/completions", gwWriteToken, chatJSON("nope", "x", ""))
		if resp.StatusCode != 404 || !strings.Contains(string(body), `"code":"model_not_found"`) {
			t.Fatalf("unknown alias: %d %s", resp.StatusCode, body)
		}
		code, body := get(t, e.base+"/openai/v1/models", gwReadToken)
		var l struct{ Data []struct{ ID string } }
		if code != 200 || json.Unmarshal(body, &l) != nil || len(l.Data) != len(gwAliases) {
			t.Fatalf("models: %d %s", code, body)
		}
		_, m := get(t, e.base+"/metrics", gwReadToken)
		promtool, err := exec.LookPath("promtool")
		if err != nil {
			t.Fatal("promtool not found: install Debian's prometheus package (`make test-deps` does it as root)")
		}
		check := exec.Command(promtool, "check", "metrics")
		check.Stdin = strings.NewReader(string(m))
		if out, err := check.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics with the gateway's metrics: %v\n%s", err, out)
		}
		for _, want := range []string{
			`vigil_llm_requests_total{alias="default",code="200",model="gpt-test",provider="openai-main"}`,
			`vigil_llm_attempts_total{alias="default",model="gpt-test",outcome="rate_limited",provider="openai-main"} 1`,
			`vigil_llm_circuit_state{model="gpt-solo",provider="openai-main"} 2`,
			`vigil_llm_tokens_total{alias="default",kind="completion",model="gpt-test",provider="openai-main",source="reported"}`,
		} {
			if !strings.Contains(string(m), want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		var pl pluginList
		_, body = get(t, e.base+"/v1/plugins", gwReadToken)
		if err := json.Unmarshal(body, &pl); err != nil {
			t.Fatal(err)
		}
		pids := map[string]int{}
		for _, p := range pl.Plugins {
			if strings.HasPrefix(p.Source, "instance:") {
				pids[p.Name] = p.PID
			}
		}
		if len(pids) != 4 || pids["openai-main"] == 0 || pids["openai-main"] == pids["local-vllm"] {
			t.Fatalf("provider instances are not separate processes: %s", body)
		}
	})
	t.Run("SIGHUP keeps the provider instances", func(t *testing.T) {
		pids := func() map[string]int {
			var pl pluginList
			_, body := get(t, e.base+"/v1/plugins", gwReadToken)
			if err := json.Unmarshal(body, &pl); err != nil {
				t.Fatal(err)
			}
			out := map[string]int{}
			for _, p := range pl.Plugins {
				out[p.Name] = p.PID
			}
			return out
		}
		before := pids()
		e.a.cmd.Process.Signal(syscall.SIGHUP)
		waitFor(t, func() bool { return strings.Contains(e.a.stderr.String(), "configuration reloaded") }, "reload log line")
		resp, body := e.post(t, "/chat/completions", gwWriteToken, chatJSON("default", "after reload", ""))
		if resp.StatusCode != 200 || !strings.Contains(string(body), "echo: after reload") {
			t.Fatalf("after SIGHUP: %d %s", resp.StatusCode, body)
		}
		if after := pids(); after["openai-main"] != before["openai-main"] || after["openai-main"] == 0 {
			t.Fatalf("the instance was restarted or lost by a reload: %v -> %v", before, after)
		}
	})
	if h := e.stub.LastHeaders(); h.Get("Authorization") != "Bearer sk-stub-key" {
		t.Fatalf("the key did not reach the upstream: %v", h)
	}
}

func sseData(body string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, v)
		}
	}
	return out
}

func streamText(t *testing.T, events []string) string {
	t.Helper()
	var b strings.Builder
	for _, ev := range events {
		if ev == "[DONE]" {
			continue
		}
		var c struct {
			Choices []struct{ Delta struct{ Content string } }
		}
		if err := json.Unmarshal([]byte(ev), &c); err != nil {
			t.Fatalf("chunk %s: %v", ev, err)
		}
		for _, ch := range c.Choices {
			b.WriteString(ch.Delta.Content)
		}
	}
	return b.String()
}

// nodeSDK returns a directory holding the pinned OpenAI Node SDK
// (test/gateway/node/package-lock.json), installing it from the npm
// registry into the user's cache on first use.
func nodeSDK(t *testing.T) string {
	t.Helper()
	return npmPackage(t, "gateway/node", "openai", "sdk_check.mjs", "the gateway's SDK test")
}

// TestGatewayOpenAINodeSDK runs the official OpenAI Node SDK against the
// gateway: models, chat, a stream with usage, embeddings in the SDK's
// default base64 encoding, json_schema passthrough and error statuses.
func TestGatewayOpenAINodeSDK(t *testing.T) {
	sdkDir := nodeSDK(t)
	e := startGateway(t)
	for i := 0; i < 3; i++ {
		e.stub.Fail("gpt-down", openaistub.Fault{Status: 503})
	}
	e.stub.Fail("gpt-cut", openaistub.Fault{CutAfter: 2})
	aliases, _ := json.Marshal(gwAliases)
	vec, _ := json.Marshal(openaistub.Vector("alpha beta", 8))
	runNodeCheck(t, sdkDir, "sdk_check.mjs", "OpenAI Node SDK against the gateway",
		"VIGIL_BASE_URL="+e.base+"/openai/v1", "VIGIL_TOKEN="+gwWriteToken, "VIGIL_READ_TOKEN="+gwReadToken, "VIGIL_LLM_TOKEN="+gwLLMToken,
		"VIGIL_ALIASES="+string(aliases), "VIGIL_EXPECT_EMBEDDING="+string(vec))
	// What the SDK sent went through the plugin unchanged.
	rf, _ := e.stub.LastRequest("/v1/chat/completions", "gpt-test")["response_format"].(map[string]any)
	js, _ := rf["json_schema"].(map[string]any)
	if rf["type"] != "json_schema" || js["name"] != "reply" || js["strict"] != true {
		t.Errorf("response_format upstream: %v", rf)
	}
	if n := e.stub.Calls("/v1/chat/completions", "gpt-down"); n != 3 {
		t.Errorf("the SDK's 503 took %d upstream calls, want 3 (retries by the gateway, none by the SDK)", n)
	}
}

// runNodeCheck runs a Node SDK check script (one that prints
// {"ok":true,"checks":[...]} when every check passed) in dir with env
// added, and fails the test, naming what, unless it passes within 90 s.
func runNodeCheck(t *testing.T, dir, script, what string, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s: %s did not finish within 90s:\n%s", what, script, out)
	}
	if err != nil || !strings.Contains(string(out), `"ok":true`) {
		t.Fatalf("%s: %v\n%s", what, err, out)
	}
	t.Logf("SDK checks: %s", strings.TrimSpace(string(out)))
}
