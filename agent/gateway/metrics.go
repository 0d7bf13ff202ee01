package gateway

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests *prometheus.CounterVec
	attempts *prometheus.CounterVec
	duration *prometheus.HistogramVec
	ttft     *prometheus.HistogramVec
	tokens   *prometheus.CounterVec
	circuit  *prometheus.GaugeVec
	// validations counts answers checked against a JSON response format
	// or strict tools' parameter schemas.
	validations *prometheus.CounterVec

	cacheRequests  *prometheus.CounterVec
	cacheBytes     prometheus.Gauge
	cacheEvictions prometheus.Counter
	cacheDropped   prometheus.Counter
	cost           *prometheus.CounterVec
	// budgetRejections counts requests refused by a spent budget.
	budgetRejections *prometheus.CounterVec
	// ctx counts pre-flight context checks (context.go).
	ctx *contextMetrics
	// obsDropped counts observations of requests that were not stored.
	obsDropped *prometheus.CounterVec
	// shed counts requests refused by gateway.max_in_flight; inFlight
	// reads the count being served.
	shed     prometheus.Counter
	inFlight prometheus.GaugeFunc
}

// llmBuckets span a cached embedding (milliseconds) to a long generation.
var llmBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

func newMetrics(reg prometheus.Registerer, inFlight func() float64) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_llm_requests_total",
			Help: "Gateway requests by alias, the provider and upstream model that answered (or were tried last), and the HTTP status returned.",
		}, []string{"alias", "provider", "model", "code"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_llm_attempts_total",
			Help: "Upstream attempts by target and outcome: ok, an error class, or circuit_open (skipped without a call).",
		}, []string{"alias", "provider", "model", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vigil_llm_request_duration_seconds",
			Help:    "Duration of gateway requests, retries included, to the last byte.",
			Buckets: llmBuckets,
		}, []string{"alias", "endpoint"}),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vigil_llm_time_to_first_token_seconds",
			Help:    "Time from a streamed request's arrival to its first content chunk sent to the client.",
			Buckets: llmBuckets,
		}, []string{"alias"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_llm_tokens_total",
			Help: "Tokens of answers by kind (prompt, completion) and source: reported (the upstream's usage) or estimated (counted by the gateway because the upstream reported none).",
		}, []string{"alias", "provider", "model", "kind", "source"}),
		circuit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vigil_llm_circuit_state",
			Help: "Circuit breaker state per target: 0 closed, 1 half-open, 2 open.",
		}, []string{"provider", "model"}),
	}
	m.validations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_llm_output_validations_total",
		Help: "Answers checked by kind of check (response_format: content against a json_object or json_schema format; tool_arguments: calls to strict tools against their parameters schemas), by outcome: valid, repaired (valid after one repair request) or invalid (returned as an error).",
	}, []string{"alias", "check", "outcome"})
	m.cacheRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_llm_cache_requests_total",
		Help: "Chat requests that consulted the response cache, by result (hit, miss).",
	}, []string{"alias", "result"})
	m.cacheBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "vigil_llm_cache_bytes",
		Help: "Bytes of answers held by the response cache (keys and values).",
	})
	m.cacheEvictions = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_llm_cache_evictions_total",
		Help: "Cached answers dropped, oldest first, to stay within gateway.cache.max_bytes.",
	})
	m.cacheDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_llm_cache_dropped_writes_total",
		Help: "Cache writes dropped because the writer's queue was full (the answer was served, not cached).",
	})
	m.cost = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_llm_cost_usd_total",
		Help: "Cost of upstream answers in USD, from reported usage and the price table (models without a price are not counted).",
	}, []string{"alias", "provider", "model"})
	m.budgetRejections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_llm_budget_rejections_total",
		Help: "Requests refused with 429 because a gateway budget was spent.",
	}, []string{"budget"})
	m.ctx = newContextMetrics(reg)
	m.obsDropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_llm_observations_dropped_total",
		Help: "Observations of gateway requests not stored, by reason: queue_full (the writer fell behind), rejected (observe refused them, e.g. observe.max_models), store (the write failed).",
	}, []string{"reason"})
	m.shed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_llm_shed_requests_total",
		Help: "Chat and embeddings requests refused with 503 because gateway.max_in_flight requests were being served.",
	})
	m.inFlight = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vigil_llm_requests_in_flight",
		Help: "Chat and embeddings requests being served now.",
	}, inFlight)
	if reg != nil {
		reg.MustRegister(m.obsDropped, m.shed, m.inFlight)
		reg.MustRegister(m.cost, m.budgetRejections, m.requests, m.attempts, m.duration, m.ttft, m.tokens, m.validations,
			m.cacheRequests, m.cacheBytes, m.cacheEvictions, m.cacheDropped)
	}
	return m
}

// freshCircuits collects the circuit gauge after setting it from the
// breakers, so that a scrape sees an open circuit turn half-open once
// open_for has passed, as /v1/status does, and not only when a request
// next reaches the target.
type freshCircuits struct {
	*prometheus.GaugeVec
	g *Gateway
}

func (f freshCircuits) Collect(ch chan<- prometheus.Metric) {
	for _, n := range f.g.names {
		for _, t := range f.g.aliases[n].targets {
			t.circuit.Set(float64(t.br.current()))
		}
	}
	f.GaugeVec.Collect(ch)
}
