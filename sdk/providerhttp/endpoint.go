package providerhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/vigilml/vigil/sdk"
)

// Endpoint is one configured upstream JSON API: where requests go, the
// headers every request carries (authentication, API version, the
// operator's extra headers), and how a failed answer maps to the
// contract's classes. A provider makes one per configuration and
// replaces it whole when reconfigured, so a call in flight keeps the
// endpoint it started with; its fields are not changed after first use.
//
// NewEndpoint fills every field; in an Endpoint written as a literal, a
// nil Client is a shared NewHTTPClient(0, 0), nil Slots and a zero
// Timeout bound nothing, and a nil Header sends no headers of its own.
type Endpoint struct {
	Client  *http.Client
	Slots   Slots
	Timeout time.Duration
	BaseURL string
	Header  http.Header
	// Classify turns a non-2xx answer (status, headers and at most 1 MiB
	// of body, credentials redacted) into the error Do returns: an
	// *sdk.Error with the class that fits, which a provider refines with
	// what its upstream says in the body (a prompt too long for the
	// model's context, an exhausted quota). nil: DefaultClassify. An
	// error it returns without a class gets the status's
	// (StatusError, with its message); nil from it, DefaultClassify's.
	Classify func(status int, h http.Header, body []byte) error
}

// defaultClient is the Client of an Endpoint that sets none.
var defaultClient = NewHTTPClient(0, 0)

// NewEndpoint returns an endpoint for baseURL with a client
// (NewHTTPClient) and slots sized to maxConcurrency; timeout is the
// longest silence of the upstream. Zero (or less) for either means no
// bound, as for Go's own timeouts; give the plugin's defaults for both
// (providerconf.HTTP leaves them as the defaults say when the settings
// do not set them). classify may be nil (DefaultClassify).
func NewEndpoint(baseURL string, maxConcurrency int, timeout time.Duration, header http.Header, classify func(status int, h http.Header, body []byte) error) *Endpoint {
	return &Endpoint{Client: NewHTTPClient(maxConcurrency, timeout), Slots: NewSlots(maxConcurrency), Timeout: timeout,
		BaseURL: baseURL, Header: header, Classify: classify}
}

// Call is one call of method to BaseURL+path with body (nil: none),
// encoded as JSON. A slotted call takes one of the endpoint's slots (the
// calls that make the upstream work: chat, embeddings); an unslotted one
// does not (listing models).
func (e *Endpoint) Call(method, path string, body any, slotted bool) Call {
	c := Call{Timeout: e.Timeout, Send: func(ctx context.Context) (*http.Response, error) {
		return e.Do(ctx, method, path, body)
	}}
	if slotted {
		c.Slots = e.Slots
	}
	return c
}

// Do sends one JSON request with the endpoint's headers (and
// Content-Type: application/json when there is a body) and returns the
// response when it is a 2xx; the caller closes its body. Any other status
// becomes the error Classify makes of it. A request that cannot be
// encoded is class invalid_request; an error of the exchange itself is
// returned as the client gave it, for TransportError (Call applies it).
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
	if req.Header == nil {
		req.Header = http.Header{}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := e.Client
	if client == nil {
		client = defaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		classify := e.Classify
		if classify == nil {
			classify = DefaultClassify
		}
		return nil, classified(classify, resp.StatusCode, resp.Header, RedactCredentials(b, e.Header))
	}
	return resp, nil
}

// classified is classify's error for a non-2xx answer, never nil and
// always with a class: a Classify that returns nil gets
// DefaultClassify's error, and one that returns an error without a class
// (errors.New, fmt.Errorf) gets the status's class and Retry-After
// (StatusError) with its message, so that a 429 is still retried after
// the wait rather than taken for a failed connection.
func classified(classify func(int, http.Header, []byte) error, status int, h http.Header, body []byte) error {
	err := classify(status, h, body)
	if err == nil {
		return DefaultClassify(status, h, body)
	}
	var se *sdk.Error
	if errors.As(err, &se) {
		return err
	}
	return StatusError(status, h, err.Error())
}

// DefaultClassify is the Classify of an Endpoint that sets none: the
// class of the status (ClassForStatus) with its Retry-After, and the
// body's text, cut to 512 bytes (between characters), as the message.
func DefaultClassify(status int, h http.Header, body []byte) error {
	msg := strings.TrimSpace(string(body))
	if len(msg) > 512 {
		msg = strings.ToValidUTF8(msg[:512], "") + "..." // not in a character
	}
	return StatusError(status, h, fmt.Sprintf("upstream HTTP %d: %s", status, msg))
}

// credentialWords mark a header that carries a credential: its
// lower-cased name contains one of them. That covers OpenAI's
// Authorization, Anthropic's x-api-key, Azure's api-key and
// Ocp-Apim-Subscription-Key, Google's x-goog-api-key, and the header of
// a third party's own upstream (X-Acme-Token, X-Auth-Token, ...), which
// a provider built on Endpoint gets redacted without saying so.
var credentialWords = []string{"auth", "key", "token", "secret", "passw", "cookie", "credential"}

// isCredentialHeader says whether the header name carries a credential.
func isCredentialHeader(name string) bool {
	n := strings.ToLower(name)
	for _, w := range credentialWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// RedactCredentials replaces, in an upstream's error body, every
// credential the request carried in h with "[redacted]": the value of
// each header whose name says it carries one (it contains "auth", "key",
// "token", "secret", "passw", "cookie" or "credential", in any case:
// Authorization and Proxy-Authorization after their scheme, "Bearer ",
// X-Api-Key, Api-Key, X-Goog-Api-Key, a custom X-Acme-Token). A server
// or proxy that quotes the rejected key ("Incorrect API key provided:
// sk-...") would otherwise hand the operator's key to every client of
// the gateway, in the error it answers with. Other headers (a version,
// a team name) are left alone, and so are values shorter than 8 bytes:
// they are no real key, and replacing them would garble the message.
// Endpoint.Do applies it before Classify.
func RedactCredentials(body []byte, h http.Header) []byte {
	for name, vs := range h {
		if !isCredentialHeader(name) {
			continue
		}
		for _, v := range vs {
			if strings.Contains(strings.ToLower(name), "authorization") {
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
