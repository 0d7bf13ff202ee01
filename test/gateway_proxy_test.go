package test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// forwardProxy is an HTTP forward proxy: it takes requests in absolute
// form (GET http://host/path) as clients configured with HTTP_PROXY send
// them, records the host asked for, and forwards them to upstream (the
// name the client used does not resolve).
type forwardProxy struct {
	mu    sync.Mutex
	hosts []string
	rp    *httputil.ReverseProxy
}

func newForwardProxy(upstream string) *forwardProxy {
	u, _ := url.Parse(upstream)
	p := &forwardProxy{}
	p.rp = &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.Out.URL.Scheme, r.Out.URL.Host = u.Scheme, u.Host
	}}
	return p
}

func (p *forwardProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !r.URL.IsAbs() {
		http.Error(w, "this is a forward proxy: absolute-form requests only", http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	p.hosts = append(p.hosts, r.URL.Host)
	p.mu.Unlock()
	p.rp.ServeHTTP(w, r)
}

func (p *forwardProxy) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.hosts...)
}

// TestGatewayUpstreamThroughProxy: a provider plugin reaches its upstream
// through the HTTP proxy given to it in the agent's config
// (plugins.env.openai: HTTP_PROXY), the way a host without direct egress
// reaches api.openai.com; the agent's own environment does not reach the
// plugin.
func TestGatewayUpstreamThroughProxy(t *testing.T) {
	gs := newGatewaySetup(t, "gpt-test")
	proxy := newForwardProxy(gs.stubURL)
	proxySrv := httptest.NewServer(proxy)
	t.Cleanup(proxySrv.Close)
	// A name only the proxy can reach: the plugin must not resolve it.
	port := gs.stubURL[strings.LastIndexByte(gs.stubURL, ':')+1:]
	upstream := "http://llm-upstream.invalid:" + port

	e := gs.start(t, gatewayConfig{
		tokens:    []string{"viewer", "llmapp"},
		pluginEnv: map[string][]string{"openai": {"HTTP_PROXY=" + proxySrv.URL}},
		// Set for the agent only: were plugins to inherit it, the request
		// would go to a port where nothing listens.
		env: []string{"HTTP_PROXY=http://127.0.0.1:9"},
		gateway: `gateway:
  providers:
    - {name: egress, plugin: openai, base_url: "` + upstream + `/v1", api_key_file: ` + gs.keyFile + `}
  models:
    - name: default
      targets: [{provider: egress, model: gpt-test}]
`})

	resp, body := e.post(t, "/chat/completions", gwLLMToken, chatJSON("default", "through the proxy", ""))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "through the proxy") {
		t.Fatalf("chat through the proxy: %d %s", resp.StatusCode, body)
	}
	if got := proxy.seen(); len(got) != 1 || got[0] != "llm-upstream.invalid:"+port {
		t.Errorf("the proxy saw %q, want one request for llm-upstream.invalid:%s", got, port)
	}
	if n := len(gs.stub.Requests("/v1/chat/completions", "gpt-test")); n != 1 {
		t.Errorf("the upstream got %d requests, want 1", n)
	}
}
