package gateway

import (
	"context"
	"net/http"

	"github.com/vigilml/vigil/agent/gateway/tokens"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// When an upstream answers without usage (some OpenAI-compatible servers
// do, and streams without a usage chunk), the gateway counts the tokens
// itself, so that metrics, cost and budgets still see them, and says so:
// the x-vigil-usage: estimated header on whole answers, "estimated": true
// in a stream's usage chunk, source="estimated" in vigil_llm_tokens_total.

// Values of the tokens metric's source label.
const (
	sourceReported  = "reported"
	sourceEstimated = "estimated"
)

// chatUsage returns the upstream's usage u, or, when it reported none, an
// estimate: the prompt of the request sent to t (OpenAI's chat rule, tool
// definitions and calls approximated) and the tokens of the answer's text
// (answerText); estimated tells which.
func (f *promptFit) chatUsage(t *target, u *pb.Usage, content string) (_ *pb.Usage, estimated bool) {
	if u != nil || t == nil {
		return u, false
	}
	req, _ := f.request(t)
	prompt := tokens.ReplyPriming + toolsTokens(t.tok.enc, req.GetTools())
	if req == f.req {
		for _, c := range f.messageTokens(t.tok.enc) {
			prompt += c
		}
	} else {
		for _, m := range req.GetMessages() {
			prompt += messageTokens(t.tok.enc, m)
		}
	}
	completion := tokens.Count(t.tok.enc, content)
	return &pb.Usage{PromptTokens: int32(prompt), CompletionTokens: int32(completion), TotalTokens: int32(prompt + completion)}, true
}

// embedUsage returns u, or an estimate of the inputs' tokens.
func embedUsage(t *target, inputs []string, u *pb.Usage) (_ *pb.Usage, estimated bool) {
	if u != nil || t == nil {
		return u, false
	}
	n := 0
	for _, s := range inputs {
		n += tokens.Count(t.tok.enc, s)
	}
	return &pb.Usage{PromptTokens: int32(n), TotalTokens: int32(n)}, true
}

// spendAs records an answer's tokens (by source) and cost; the cost is
// summed into *total (and *priced set) when the model has a price, and
// charged to budgets (as estimated too, when it is).
func (g *Gateway) spendAs(ctx context.Context, o outcome, u *pb.Usage, estimated bool, total *float64, priced *bool) {
	source := sourceReported
	if estimated {
		source = sourceEstimated
	}
	g.countTokens(o, u, source)
	ex := exchangeOf(ctx)
	ex.addUsage(u)
	if usd, ok := g.costFor(o, u); ok {
		*total += usd
		*priced = true
		ex.addCost(usd)
		alias := budgetAlias(ctx, o.alias)
		g.charge(ctx, alias, usd)
		if estimated {
			g.chargeEstimated(ctx, alias, usd)
		}
	}
}

func setUsageHeader(w http.ResponseWriter, estimated bool) {
	if estimated {
		w.Header().Set("X-Vigil-Usage", sourceEstimated)
	}
}

// streamUsage is a stream's usage chunk body: OpenAI's usage object, with
// "estimated": true when the gateway counted it (a stream's headers are
// gone by then).
type streamUsage struct {
	*usageJSON
	Estimated bool `json:"estimated,omitempty"`
}

// estimatedSuffix names a budget's second ledger entry, the part of its
// spend priced from estimated usage (budget names cannot hold '+').
const estimatedSuffix = "+estimated"

// chargeEstimated books usd, already charged, as estimated too.
func (g *Gateway) chargeEstimated(ctx context.Context, alias string, usd float64) {
	if g.ledger == nil || usd <= 0 {
		return
	}
	token, _ := ctx.Value(tokenKey{}).(string)
	for _, b := range g.matching(token, alias) {
		g.ledger.charge(b.Name+estimatedSuffix, usd)
	}
}
