package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/vigilml/vigil/sdk"
)

// Endpoint is one configured upstream JSON API: where requests go, the
// headers every request carries (authentication, API version, configured
// extras), and how a failed answer maps to the contract's classes.
type Endpoint struct {
	Client  *http.Client
	Slots   Slots
	Timeout time.Duration
	BaseURL string
	Header  http.Header
	// Classify turns a non-2xx answer (status, headers and at most 1 MiB
	// of body) into a typed error.
	Classify func(status int, h http.Header, body []byte) error
}

// NewEndpoint returns an endpoint with a client and slots sized to
// maxConcurrency.
func NewEndpoint(baseURL string, maxConcurrency int, timeout time.Duration, header http.Header, classify func(int, http.Header, []byte) error) *Endpoint {
	return &Endpoint{Client: NewHTTPClient(maxConcurrency, timeout), Slots: NewSlots(maxConcurrency), Timeout: timeout,
		BaseURL: baseURL, Header: header, Classify: classify}
}

// Call is one call of method to path with body (nil: none), encoded as
// JSON; slotted calls take one of the max_concurrency slots.
func (e *Endpoint) Call(method, path string, body any, slotted bool) Call {
	c := Call{Timeout: e.Timeout, Send: func(ctx context.Context) (*http.Response, error) {
		return e.Do(ctx, method, path, body)
	}}
	if slotted {
		c.Slots = e.Slots
	}
	return c
}

// Do sends one JSON request and returns the response when it is a 2xx;
// any other status becomes the error Classify makes of it.
func (e *Endpoint) Do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, sdk.Errorf(sdk.InvalidRequest, "encode request: %v", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.BaseURL+path, rd)
	if err != nil {
		return nil, sdk.Errorf(sdk.Internal, "build request: %v", err)
	}
	req.Header = e.Header.Clone()
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.Client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, e.Classify(resp.StatusCode, resp.Header, e.redact(b))
	}
	return resp, nil
}

// credentialHeaders carry the upstream API key: OpenAI's Authorization
// (after its scheme), Anthropic's x-api-key, Azure OpenAI's api-key.
var credentialHeaders = []string{"Authorization", "X-Api-Key", "Api-Key"}

// redact replaces the API key in an upstream's error body before it is
// classified: a server or proxy that quotes the rejected key ("Incorrect
// API key provided: sk-...") would otherwise hand the operator's key to
// every client of the gateway, in the error it answers with. Values
// shorter than 8 bytes are left alone: they are no real key, and
// replacing them would garble the message.
func (e *Endpoint) redact(body []byte) []byte {
	for _, name := range credentialHeaders {
		for _, v := range e.Header.Values(name) {
			if name == "Authorization" {
				if _, cred, ok := strings.Cut(v, " "); ok {
					v = cred
				}
			}
			v = strings.TrimSpace(v)
			if len(v) >= 8 {
				body = bytes.ReplaceAll(body, []byte(v), []byte("[redacted]"))
			}
		}
	}
	return body
}
