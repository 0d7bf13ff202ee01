package agent

import (
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/vigilml/vigil/agent/api"
	"github.com/vigilml/vigil/agent/config"
	"github.com/vigilml/vigil/agent/gateway"
	"github.com/vigilml/vigil/agent/pluginhost"
)

// The gateway checks a provider plugin's declared capabilities (tool
// calls) through the plugin host.
var _ gateway.CapabilityReporter = (*pluginhost.Host)(nil)

// openGateway builds the LLM gateway, hands its provider instances to the
// plugin host (one plugin process per gateway.providers entry) and serves
// the OpenAI-compatible endpoints under /openai/v1.
//
// Auth: listing models and GET /v1/llm/usage take any token; chat
// completions and embeddings (POST), which spend upstream quota and money,
// need an llm or write token. An llm token can do nothing else, and sees
// only its own budgets in the usage. Auth errors under /openai/ are in
// OpenAI's shape, so that OpenAI's SDKs raise AuthenticationError.
//
// Every request for a known alias also becomes an observation of model
// llm:<alias> (best effort; see gateway.observations).
func (a *Agent) openGateway() error {
	g, err := gateway.New(a.cfg.Gateway, a.plugins, a.logger.With("subsystem", "gateway"), a.reg, os.LookupEnv)
	if err != nil {
		return err
	}
	if err := a.plugins.SetInstances(g.Instances()); err != nil {
		return fmt.Errorf("gateway.providers: %w", err)
	}
	g.TokenName = api.TokenName
	g.OwnUsageOnly = func(r *http.Request) bool { return api.TokenScope(r) == config.ScopeLLM }
	a.gateway = g
	if len(a.cfg.Gateway.Models) > 0 {
		g.RecordObservations(a.observe)
		// The response cache and the spend ledger live in their own files,
		// so their writes never wait for the sample store's.
		a.corrupt.watch(a.dir.Join("llm-cache.db"))
		if err := g.OpenCache(a.dir.Join("llm-cache.db")); err != nil {
			return err
		}
		a.corrupt.watch(a.dir.Join("llm-spend.db"))
		if err := g.OpenLedger(a.dir.Join("llm-spend.db")); err != nil {
			return err
		}
	}
	nProviders, nModels := len(a.cfg.Gateway.Providers), len(a.cfg.Gateway.Models)
	a.setStatus("gateway", func() SubsystemStatus {
		if nModels == 0 {
			return SubsystemStatus{Name: "gateway", State: StateDisabled, Reason: "no gateway.models configured"}
		}
		s := SubsystemStatus{Name: "gateway", State: StateRunning, Reason: fmt.Sprintf("%s over %s", count(nModels, "model alias", "model aliases"), count(nProviders, "provider", "providers"))}
		if down := a.downProviders(); len(down) > 0 {
			s.State, s.Reason = StateDegraded, strings.Join(down, "; ")
		} else if open := g.OpenCircuits(); len(open) > 0 {
			s.State, s.Reason = StateDegraded, "circuit open for "+strings.Join(open, ", ")
		}
		return s
	})
	a.api.ErrorShape("/openai/", func(w http.ResponseWriter, e *api.Error) {
		gateway.WriteAgentError(w, e.Status, e.Code, e.Message)
	})
	a.api.RequestIDs("/openai/", gateway.NewRequestID)
	a.api.HandleFunc("GET /openai/v1/models", api.LLMRead, g.HandleModels)
	a.api.HandleFunc("GET /openai/v1/models/{model...}", api.LLMRead, g.HandleModel)
	// Chat and embeddings are bounded by gateway.request_timeout, which
	// covers a whole stream, instead of api.request_timeout.
	a.api.OwnDeadline("POST /openai/v1/chat/completions", "POST /openai/v1/embeddings", "POST /openai/v1/responses")
	a.api.HandleFunc("POST /openai/v1/chat/completions", api.LLM, g.HandleChat)
	a.api.HandleFunc("POST /openai/v1/responses", api.LLM, g.HandleResponses)
	a.api.HandleFunc("GET /openai/v1/responses/{id...}", api.LLM, g.HandleResponseByID)
	a.api.HandleFunc("DELETE /openai/v1/responses/{id...}", api.LLM, g.HandleResponseByID)
	a.api.HandleFunc("POST /openai/v1/responses/{id...}", api.LLM, g.HandleResponseByID)
	a.api.HandleFunc("POST /openai/v1/embeddings", api.LLM, g.HandleEmbeddings)
	a.api.HandleFunc("GET /v1/llm/usage", api.LLMRead, g.HandleUsage)
	return nil
}

// downProviders names the gateway's provider instances that cannot serve
// until someone acts (plugin not installed or not trusted, crash budget
// spent), with the plugin host's reason: the requests routed to them fail
// every time, so the gateway is not simply running.
func (a *Agent) downProviders() []string {
	if a.plugins == nil {
		return nil
	}
	want := make(map[string]bool, len(a.cfg.Gateway.Providers))
	for _, p := range a.cfg.Gateway.Providers {
		want[p.Name] = true
	}
	var down []string
	for _, st := range a.plugins.List() {
		if !want[st.Name] || (st.State != pluginhost.StateRefused && st.State != pluginhost.StateFailed) {
			continue
		}
		d := fmt.Sprintf("provider %s %s", st.Name, st.State)
		if st.LastError != "" {
			d += ": " + st.LastError
		}
		down = append(down, d)
	}
	return down
}

// count is n with the singular or plural noun.
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
