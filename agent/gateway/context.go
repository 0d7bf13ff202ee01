package gateway

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilml/vigil/agent/gateway/tokens"
	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// This file is the pre-flight context check: before a target is called,
// the prompt is counted with the target's tokenizer and compared with its
// context window; a prompt that cannot fit is either refused (or sent to
// the alias's context_window_fallback) without spending an upstream call,
// or, with truncation: drop_oldest, shortened by dropping the oldest
// messages.

// Values of a model alias's truncation.
const (
	truncationError      = "error"
	truncationDropOldest = "drop_oldest"
)

// ContextWindowsAsOf dates DefaultContextWindows.
const ContextWindowsAsOf = "2025-06"

// DefaultContextWindows are the context windows (prompt and completion
// together, in tokens) of a few common upstream models as their vendors
// documented them at ContextWindowsAsOf. A target's context_window
// overrides them; a model in neither has no pre-flight check. Dated
// versions (gpt-4o-2024-08-06) use their base model's entry.
var DefaultContextWindows = map[string]int{
	"gpt-4o":                    128000,
	"gpt-4o-mini":               128000,
	"gpt-4.1":                   1047576,
	"gpt-4.1-mini":              1047576,
	"gpt-4.1-nano":              1047576,
	"o1":                        200000,
	"o3":                        200000,
	"o3-mini":                   200000,
	"o4-mini":                   200000,
	"gpt-4-turbo":               128000,
	"gpt-4":                     8192,
	"gpt-3.5-turbo":             16385,
	"claude-3-5-haiku-20241022": 200000,
	"claude-sonnet-4-20250514":  200000,
	"claude-opus-4-20250514":    200000,
}

// shippedWindow looks model up in DefaultContextWindows: the exact name,
// else the longest entry that model extends with "-" and a version
// starting with a digit.
func shippedWindow(model string) int {
	if w, ok := DefaultContextWindows[model]; ok {
		return w
	}
	best, window := 0, 0
	for name, w := range DefaultContextWindows {
		rest, ok := strings.CutPrefix(model, name+"-")
		if ok && rest != "" && rest[0] >= '0' && rest[0] <= '9' && len(name) > best {
			best, window = len(name), w
		}
	}
	return window
}

// tokenInfo is what the gateway knows of a target's tokens.
type tokenInfo struct {
	window int // 0: unknown, no pre-flight check
	enc    tokens.Encoding
	// exact is false when enc is not the model's own tokenizer, so that
	// counts are estimates.
	exact bool
}

func newTokenInfo(t Target) tokenInfo {
	ti := tokenInfo{window: t.ContextWindow}
	if ti.window == 0 {
		ti.window = shippedWindow(t.Model)
	}
	ti.enc, ti.exact = tokens.ForModel(t.Model)
	if t.Encoding != "" {
		ti.enc, ti.exact = tokens.Encoding(t.Encoding), true
	}
	return ti
}

// validateTokens checks a model alias's truncation and its targets'
// context_window and encoding.
func validateTokens(key string, m Model, bad func(key, format string, args ...any)) {
	switch m.Truncation {
	case "", truncationError, truncationDropOldest:
	default:
		bad(key+".truncation", "%q is not error or drop_oldest", m.Truncation)
	}
	for j, t := range m.Targets {
		tk := fmt.Sprintf("%s.targets[%d]", key, j)
		if t.ContextWindow < 0 {
			bad(tk+".context_window", "must be a positive number of tokens")
		}
		if t.Encoding != "" && !tokens.Encoding(t.Encoding).Valid() {
			bad(tk+".encoding", "%q is not o200k_base or cl100k_base", t.Encoding)
		}
	}
}

// contextFallback returns the alias to switch to when the prompt is too
// long for target t of alias a, or nil: the alias's
// context_window_fallback, once per request.
func (g *Gateway) contextFallback(reqID string, a *alias, t *target, used *bool) *alias {
	if a.fallback == "" || *used {
		return nil
	}
	fb, ok := g.aliases[a.fallback]
	if !ok {
		return nil
	}
	g.logger.Info("prompt too long for the target; using the context-window fallback", "request_id", reqID, "alias", a.name, "target", t.String(), "fallback", fb.name)
	*used = true
	return fb
}

// fitFunc is route's pre-flight hook: an error (class
// context_length_exceeded) says target t of alias a cannot take the
// request, without calling it.
type fitFunc func(a *alias, t *target) error

// promptFit plans one chat request for each target it is tried on. It is
// used by one request's goroutine only.
type promptFit struct {
	g   *Gateway
	req *pb.ChatRequest
	// counts are the tokens of each message (tokens.MessageTokens), per
	// encoding, counted once.
	counts map[tokens.Encoding][]int
	plans  map[*target]fitPlan
}

// fitPlan is what goes to one target.
type fitPlan struct {
	req     *pb.ChatRequest
	dropped int // messages dropped by drop_oldest
	err     error
}

func (g *Gateway) newFit(req *pb.ChatRequest) *promptFit {
	return &promptFit{g: g, req: req}
}

func (f *promptFit) messageTokens(enc tokens.Encoding) []int {
	if c, ok := f.counts[enc]; ok {
		return c
	}
	c := make([]int, len(f.req.GetMessages()))
	for i, m := range f.req.GetMessages() {
		c[i] = messageTokens(enc, m)
	}
	if f.counts == nil {
		f.counts = map[tokens.Encoding][]int{}
	}
	f.counts[enc] = c
	return c
}

// request is what target t is sent, and how many messages were dropped.
func (f *promptFit) request(t *target) (*pb.ChatRequest, int) {
	if p, ok := f.plans[t]; ok && p.req != nil {
		return p.req, p.dropped
	}
	return f.req, 0
}

// setHeader reports the truncation for the target that answered.
func (f *promptFit) setHeader(w http.ResponseWriter, t *target) {
	if _, n := f.request(t); n > 0 {
		w.Header().Set("X-Vigil-Truncated", strconv.Itoa(n))
	}
}

// check is the fitFunc of the request.
func (f *promptFit) check(a *alias, t *target) error {
	if t.tok.window <= 0 {
		return nil // unknown window: nothing to check, nothing counted
	}
	if p, ok := f.plans[t]; ok {
		return p.err
	}
	p := f.plan(a, t)
	if f.plans == nil {
		f.plans = map[*target]fitPlan{}
	}
	f.plans[t] = p
	result := "fits"
	switch {
	case p.err != nil:
		result = "too_long"
	case p.dropped > 0:
		result = "truncated"
		f.g.m.ctx.dropped.WithLabelValues(a.name, t.provider, t.model).Add(float64(p.dropped))
	}
	f.g.m.ctx.checks.WithLabelValues(a.name, t.provider, t.model, result).Inc()
	return p.err
}

func (f *promptFit) plan(a *alias, t *target) fitPlan {
	ti := t.tok
	// The answer needs room too: max_tokens when the client set it, else
	// at least one token.
	reserve, what := 1, "at least 1 token"
	if mt := f.req.MaxTokens; mt != nil {
		reserve, what = int(*mt), fmt.Sprintf("%s %d", capName(f.req), *mt)
	}
	// Every token stands for at least one byte, so a prompt whose bytes
	// fit fits: most requests are never counted (counting costs 0.1-0.3 ms
	// per 1000 tokens of ASCII text, ten times that for other text;
	// bench/README.md).
	if bytesBound(f.req)+reserve <= ti.window {
		return fitPlan{req: f.req}
	}
	counts := f.messageTokens(ti.enc)
	prompt := tokens.ReplyPriming + toolsTokens(ti.enc, f.req.GetTools())
	for _, c := range counts {
		prompt += c
	}
	if prompt+reserve <= ti.window {
		return fitPlan{req: f.req}
	}
	how := fmt.Sprintf("%s, counted by the gateway", ti.enc)
	if !ti.exact {
		how = fmt.Sprintf("estimated with %s: %s's own tokenizer is not built in", ti.enc, t.model)
	}
	if a.truncation != truncationDropOldest {
		return fitPlan{err: &sdk.Error{Class: sdk.ContextLengthExceeded, Message: fmt.Sprintf(
			"%d prompt tokens (%s) + %s for the answer exceed %s's context window of %d tokens",
			prompt, how, what, t.model, ti.window)}}
	}
	// drop_oldest: the candidates are the messages other than system ones
	// that come before the last user message, oldest first.
	msgs := f.req.GetMessages()
	lastUser := -1
	for i, m := range msgs {
		if m.GetRole() == "user" {
			lastUser = i
		}
	}
	var order []int
	for i := 0; i < lastUser; i++ {
		if msgs[i].GetRole() != "system" {
			order = append(order, i)
		}
	}
	// Drop until it fits; then keep dropping assistant messages that would
	// otherwise open the conversation, since some upstreams want it to
	// start with a user turn, and tool messages whose tool call was
	// dropped (every upstream refuses those).
	k := 0
	for k < len(order) && (prompt+reserve > ti.window || (k > 0 && (msgs[order[k]].GetRole() == "assistant" || msgs[order[k]].GetRole() == "tool"))) {
		prompt -= counts[order[k]]
		k++
	}
	if prompt+reserve > ti.window {
		return fitPlan{err: &sdk.Error{Class: sdk.ContextLengthExceeded, Message: fmt.Sprintf(
			"%d prompt tokens (%s) + %s for the answer exceed %s's context window of %d tokens even after dropping the %d oldest messages (truncation: drop_oldest keeps system messages and the last user message)",
			prompt, how, what, t.model, ti.window, k)}}
	}
	drop := make(map[int]bool, k)
	for _, i := range order[:k] {
		drop[i] = true
	}
	kept := make([]*pb.Message, 0, len(msgs)-k)
	for i, m := range msgs {
		if !drop[i] {
			kept = append(kept, m)
		}
	}
	req := cloneChat(f.req, f.req.GetModel())
	req.Messages = kept
	return fitPlan{req: req, dropped: k}
}

// bytesBound is an upper bound of the request's prompt tokens by OpenAI's
// chat rule: its text's bytes plus the framing (and its images' tokens,
// which are not bytes of text).
func bytesBound(req *pb.ChatRequest) int {
	n := tokens.ReplyPriming + toolsBytes(req.GetTools())
	for _, m := range req.GetMessages() {
		n += tokens.PerMessage + len(m.GetRole()) + len(m.GetContent()) + messageToolBytes(m) + imageTokens(m)
		if m.GetName() != "" {
			n += len(m.GetName()) + tokens.PerName
		}
	}
	return n
}

// messageTokens counts one message by OpenAI's chat rule, with its tool
// calls or tool_call_id, and its images, by the gateway's approximations
// (tools.go, images.go).
func messageTokens(enc tokens.Encoding, m *pb.Message) int {
	return tokens.MessageTokens(enc, tokens.Message{Role: m.GetRole(), Content: m.GetContent(), Name: m.GetName()}) + messageToolTokens(enc, m) + imageTokens(m)
}

// contextMetrics count pre-flight checks and truncation.
type contextMetrics struct {
	checks  *prometheus.CounterVec
	dropped *prometheus.CounterVec
}

func newContextMetrics(reg prometheus.Registerer) *contextMetrics {
	m := &contextMetrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_llm_context_checks_total",
			Help: "Pre-flight checks of chat prompts against a target's context window, by result: fits, truncated (truncation: drop_oldest dropped messages) or too_long (refused or sent to the context-window fallback without an upstream call).",
		}, []string{"alias", "provider", "model", "result"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_llm_truncated_messages_total",
			Help: "Messages dropped from prompts by truncation: drop_oldest to fit a target's context window.",
		}, []string{"alias", "provider", "model"}),
	}
	if reg != nil {
		reg.MustRegister(m.checks, m.dropped)
	}
	return m
}
