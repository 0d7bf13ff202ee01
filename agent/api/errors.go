package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// Error codes used in API error bodies. Clients should branch on the code,
// not on the message.
const (
	CodeInvalidRequest   = "invalid_request"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodePayloadTooLarge  = "payload_too_large"
	CodeUnsupportedMedia = "unsupported_media_type"
	CodeInternal         = "internal"
	CodeUnavailable      = "unavailable"
	CodeTimeout          = "timeout"
)

// Error is an API error: an HTTP status and the body
// {"error":{"code":"...","message":"..."}}, plus "index" and "field" when
// the error is about one value of the request body.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// Index is the 0-based position of the offending item in its list
	// (an observation in a batch, a value in an uploaded sample); nil
	// when the error is not about one item.
	Index *int `json:"index,omitempty"`
	// Field names the offending field, such as "features.age"; empty when
	// the error is not about one field. The message names it too.
	Field string `json:"field,omitempty"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf builds an *Error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// BadRequest is a 400 with code invalid_request.
func BadRequest(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, CodeInvalidRequest, format, args...)
}

// BadField is a 400 with code invalid_request about field, and about the
// item at index of its list when index is not negative.
func BadField(field string, index int, format string, args ...any) *Error {
	e := BadRequest(format, args...)
	e.Field = field
	if index >= 0 {
		e.Index = &index
	}
	return e
}

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing useful to do
}

// WriteError writes err in the API's error shape. An error that is not an
// *Error becomes a 500 whose message does not leak internals; the caller
// should have logged it.
func WriteError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = Errorf(http.StatusInternalServerError, CodeInternal, "internal error; see the agent's log")
	}
	WriteJSON(w, e.Status, map[string]*Error{"error": e})
}

// CheckContentEncoding refuses a request body sent with a content coding
// (Content-Encoding: gzip, say) with 415, as RFC 9110 asks: the API reads
// bodies as they are, and would otherwise answer "invalid JSON at byte 0"
// about the compressed bytes.
func CheckContentEncoding(r *http.Request) error {
	if ce := strings.TrimSpace(r.Header.Get("Content-Encoding")); ce != "" && !strings.EqualFold(ce, "identity") {
		return Errorf(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "Content-Encoding %q is not supported; send the body uncompressed", ce)
	}
	return nil
}

// DecodeJSON reads the request body as one JSON value into v. Unknown fields
// are rejected so that a typo in a field name is an error, not a silent
// default. The body size limit is enforced by the server; exceeding it
// returns a 413 *Error.
func DecodeJSON(r *http.Request, v any) error {
	if err := CheckContentEncoding(r); err != nil {
		return err
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return Errorf(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "Content-Type %q is not supported; send application/json", ct)
		}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return jsonError(err)
		}
		return BadRequest("request body holds more than one JSON value")
	}
	return nil
}

// jsonError turns a decoding error into a client-facing *Error.
func jsonError(err error) error {
	var (
		maxErr    *http.MaxBytesError
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &maxErr):
		return Errorf(http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "request body is larger than the limit of %d bytes (api.max_body_bytes)", maxErr.Limit)
	case errors.Is(err, io.EOF):
		return BadRequest("request body is empty; send a JSON value")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return BadRequest("request body ends in the middle of a JSON value")
	case errors.As(err, &syntaxErr):
		// NaN, Infinity and -Infinity are what Python's json.dumps writes
		// for non-finite floats; say so rather than only "invalid
		// character 'N'".
		hint := ""
		if m := syntaxErr.Error(); strings.Contains(m, "invalid character 'N'") || strings.Contains(m, "invalid character 'I'") {
			hint = " (NaN and Infinity are not JSON, and non-finite numbers are refused: Python's json.dumps writes them unless allow_nan=False)"
		}
		return BadRequest("invalid JSON at byte %d: %v%s", syntaxErr.Offset, syntaxErr, hint)
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "(top level)"
		}
		e := BadRequest("field %s: expected %s, got JSON %s", field, typeErr.Type, typeErr.Value)
		e.Field = typeErr.Field
		return e
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// No field member: the decoder names the key without its path.
		return BadRequest("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return BadRequest("invalid JSON: %v", err)
}
