package gateway

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
)

// RequestIDHeader is the response header that carries a request's id
// (x-request-id, in Go's canonical form), as OpenAI's API does: the
// OpenAI SDKs expose it as request_id / _request_id, and the gateway's
// log lines about the request and the access log carry the same id.
const RequestIDHeader = "X-Request-Id"

// NewRequestID returns a random request id, req_ and 32 hex digits.
// math/rand/v2's global source is seeded from the OS per thread: ids need
// to be unique, not secret.
func NewRequestID() string {
	var raw [16]byte
	binary.LittleEndian.PutUint64(raw[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(raw[8:], rand.Uint64())
	var b [36]byte
	copy(b[:], "req_")
	hex.Encode(b[4:], raw[:])
	return string(b[:])
}

// requestID returns the id of the request answered on w, setting the
// x-request-id header first if nothing has (the API server sets it for
// every /openai/ request, so that its own errors carry one too).
func requestID(w http.ResponseWriter) string {
	h := w.Header()
	if v := h[RequestIDHeader]; len(v) > 0 {
		return v[0]
	}
	id := NewRequestID()
	h[RequestIDHeader] = []string{id}
	return id
}
