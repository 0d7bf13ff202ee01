package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vigilml/vigil/agent/version"
	"github.com/vigilml/vigil/sdk/providerhttp"
)

const (
	kindAlertmanager = "alertmanager"
	kindWebhook      = "webhook"
)

// PostableAlert is one element of the JSON array POSTed to Alertmanager's
// /api/v2/alerts (its postableAlert schema).
type PostableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// WebhookPayload is the JSON body POSTed to a webhook: the alerts whose
// state changed in one evaluation (fired, severity changed, resolved).
type WebhookPayload struct {
	// Version of this shape; "1".
	Version string `json:"version"`
	// Instance is the node name of the agent that sends it.
	Instance string    `json:"instance"`
	SentAt   time.Time `json:"sent_at"`
	Alerts   []Alert   `json:"alerts"`
}

// dueNotifications collects, under m.mu, what to send now: for
// Alertmanagers every firing or resolved alert that changed or was last
// sent resend_interval ago; for webhooks the alerts that changed.
func (m *Manager) dueNotifications(now time.Time) (am []byte, hooks []Alert) {
	var post []PostableAlert
	// Prometheus' rule: a firing alert is valid for 4 × max(resend,
	// evaluation interval), so a missed resend or two do not resolve it.
	validFor := 4 * max(m.cfg.ResendInterval, m.cfg.Interval)
	for _, t := range m.alerts {
		if t.State == StatePending {
			continue
		}
		due := t.dirty || now.Sub(t.sentAt) >= m.cfg.ResendInterval
		if !due {
			continue
		}
		annotations := map[string]string{"summary": t.Summary, "description": t.Description,
			"value": fmt.Sprintf("%g", t.Value), "threshold": fmt.Sprintf("%g", t.Threshold)}
		pa := PostableAlert{Labels: t.Labels, Annotations: annotations, StartsAt: t.ActiveSince.UTC(), GeneratorURL: m.cfg.GeneratorURL}
		if t.State == StateFiring {
			pa.EndsAt = now.Add(validFor).UTC()
			if t.prevSeverity != SeverityNone && t.prevSeverity != t.Severity {
				// Severity is a label: the old label set is another
				// alert to Alertmanager, resolved now.
				old := pa
				old.Labels = m.deliveredLabels(t.labels, t.prevSeverity)
				old.EndsAt = now.UTC()
				post = append(post, old)
			}
			t.prevSeverity = t.Severity
		} else {
			pa.EndsAt = t.ResolvedAt.UTC()
		}
		post = append(post, pa)
		if t.dirty {
			a := t.Alert
			hooks = append(hooks, a)
		}
		t.sentAt, t.dirty = now, false
	}
	if len(post) > 0 {
		am, _ = json.Marshal(post)
	}
	return am, hooks
}

func (m *Manager) webhookBody(alerts []Alert, now time.Time) []byte {
	b, _ := json.Marshal(WebhookPayload{Version: "1", Instance: m.opts.Instance, SentAt: now.UTC(), Alerts: alerts})
	return b
}

// receiver delivers notification bodies to one URL from its own bounded
// queue, with retries; one goroutine (run) owns the sending.
type receiver struct {
	name, kind string
	url        string
	header     http.Header
	tokenFile  string
	token      string
	timeout    time.Duration
	delivery   Delivery
	client     *http.Client
	queue      chan []byte
	metrics    *metrics
	// cancel stops run; done is closed when it has returned (both set
	// by Manager.startReceiver).
	cancel context.CancelFunc
	done   chan struct{}
	log    interface {
		Warn(string, ...any)
		Error(string, ...any)
		Debug(string, ...any)
	}

	mu          sync.Mutex
	lastSuccess time.Time
	lastErr     string
	lastErrAt   time.Time
	failing     bool
	sent        uint64
	failed      uint64
	dropped     uint64
}

func newReceiver(kind string, rc Receiver, d Delivery, opts Options) (*receiver, error) {
	r := &receiver{
		name: rc.displayName(), kind: kind, url: rc.URL, header: rc.header(), tokenFile: rc.BearerTokenFile,
		timeout: rc.Timeout, delivery: d, client: opts.Client, queue: make(chan []byte, d.QueueSize),
	}
	r.log = opts.Logger.With("receiver", r.name, "kind", kind)
	if r.timeout == 0 {
		r.timeout = d.Timeout
	}
	if kind == kindAlertmanager {
		r.url = strings.TrimSuffix(rc.URL, "/") + "/api/v2/alerts"
	}
	if rc.BearerTokenEnv != "" {
		v, ok := opts.Env(rc.BearerTokenEnv)
		if !ok || strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("bearer_token_env: environment variable %s is not set or empty", rc.BearerTokenEnv)
		}
		r.token = strings.TrimSpace(v)
	}
	if r.tokenFile != "" {
		if _, err := r.bearer(); err != nil {
			return nil, fmt.Errorf("bearer_token_file: %w", err)
		}
	}
	return r, nil
}

// bearer returns the token to send, reading the file each time so that
// a rotated token applies without a restart.
func (r *receiver) bearer() (string, error) {
	if r.tokenFile == "" {
		return r.token, nil
	}
	b, err := os.ReadFile(r.tokenFile)
	if err != nil {
		return "", fmt.Errorf("read token: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("token file %s is empty", r.tokenFile)
	}
	return t, nil
}

// enqueue never blocks: when the queue is full the oldest waiting body is
// dropped (Alertmanager gets every firing alert again at the next resend).
func (r *receiver) enqueue(body []byte) {
	for {
		select {
		case r.queue <- body:
			r.metrics.queue.WithLabelValues(r.name).Set(float64(len(r.queue)))
			return
		default:
		}
		select {
		case <-r.queue:
			r.mu.Lock()
			r.dropped++
			r.mu.Unlock()
			r.metrics.notifications.WithLabelValues(r.name, resultDropped).Inc()
			r.log.Warn("alert notification queue full; dropped the oldest notification", "queue_size", cap(r.queue))
		default:
		}
	}
}

// Results of vigil_alert_notifications_total.
const (
	resultSent    = "sent"
	resultRetried = "retried"
	resultFailed  = "failed"
	resultDropped = "dropped"
)

// stop ends a started receiver's delivery loop and waits for it (an
// attempt in flight is cut short).
func (r *receiver) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
}

func (r *receiver) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case body := <-r.queue:
			r.metrics.queue.WithLabelValues(r.name).Set(float64(len(r.queue)))
			r.deliver(ctx, body)
		}
	}
}

// errPermanent marks an answer that retrying cannot fix.
var errPermanent = errors.New("not retried")

// deliver tries one body up to max_attempts times.
func (r *receiver) deliver(ctx context.Context, body []byte) {
	var err error
	for attempt := 1; attempt <= r.delivery.MaxAttempts; attempt++ {
		if err = r.post(ctx, body); err == nil {
			r.mu.Lock()
			r.sent++
			r.lastSuccess, r.failing = time.Now(), false
			r.mu.Unlock()
			r.metrics.notifications.WithLabelValues(r.name, resultSent).Inc()
			if attempt > 1 {
				r.log.Warn("alert notification delivered after retries", "attempts", attempt)
			}
			return
		}
		r.mu.Lock()
		r.lastErr, r.lastErrAt = err.Error(), time.Now()
		r.mu.Unlock()
		if errors.Is(err, errPermanent) || attempt == r.delivery.MaxAttempts || ctx.Err() != nil {
			break
		}
		r.metrics.notifications.WithLabelValues(r.name, resultRetried).Inc()
		wait := backoff(r.delivery.MinBackoff, r.delivery.MaxBackoff, attempt)
		r.log.Debug("alert notification failed; retrying", "attempt", attempt, "err", err, "retry_in", wait.String())
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	r.mu.Lock()
	r.failed++
	r.failing = true
	r.mu.Unlock()
	r.metrics.notifications.WithLabelValues(r.name, resultFailed).Inc()
	r.log.Error("alert notification not delivered", "err", err, "max_attempts", r.delivery.MaxAttempts)
}

// backoff is exponential with full jitter: uniform in [min, min(max,
// min × 2^(attempt-1))].
func backoff(lo, hi time.Duration, attempt int) time.Duration {
	ceil := lo << min(attempt-1, 30)
	if ceil > hi || ceil <= 0 {
		ceil = hi
	}
	if ceil <= lo {
		return lo
	}
	return lo + rand.N(ceil-lo+1)
}

func (r *receiver) post(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %v", errPermanent, err)
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vigil/"+version.Get().Version)
	tok, err := r.bearer()
	if err != nil {
		return err
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		// Not the *url.Error itself: it quotes the whole URL, whose path
		// may hold a secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("POST to %s: %w", redactURL(r.url), err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	// A receiver that quotes the token it refused would otherwise put it
	// in the log and in GET /v1/alerts, which a read token sees.
	msg = providerhttp.RedactCredentials(msg, req.Header)
	e := fmt.Errorf("POST %s: %s: %s", redactURL(r.url), resp.Status, strings.TrimSpace(string(msg)))
	if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusRequestTimeout {
		return fmt.Errorf("%w (%w)", e, errPermanent)
	}
	return e
}

func (r *receiver) status() ReceiverStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := ReceiverStatus{Name: r.name, Kind: r.kind, Queued: len(r.queue), LastError: r.lastErr, Failing: r.failing,
		Notifications: r.sent, Failed: r.failed, Dropped: r.dropped}
	if !r.lastSuccess.IsZero() {
		t := r.lastSuccess.UTC()
		st.LastSuccess = &t
	}
	if !r.lastErrAt.IsZero() {
		t := r.lastErrAt.UTC()
		st.LastErrorAt = &t
	}
	return st
}
