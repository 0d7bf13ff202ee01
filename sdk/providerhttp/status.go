package providerhttp

import (
	"net/http"
	"strconv"
	"time"

	"github.com/vigilml/vigil/sdk"
)

// ClassForStatus is the contract class of an upstream's non-2xx HTTP
// status, as far as the status alone tells it; the class decides what
// the gateway does next (docs/gateway.md, "Routing, retries and
// fallback"):
//
//	400, 413, 422     invalid_request  (answered at once: another target would refuse it too)
//	401, 403          auth             (no retry; the next target)
//	402               quota_exhausted  (no retry; the next target)
//	404               not_found        (no retry; the next target)
//	408, 504          timeout          (retried after a backoff)
//	429               rate_limited     (retried after RetryAfter, or a backoff)
//	503, 529          overloaded       (retried after RetryAfter, or a backoff)
//	409, other 5xx    unavailable      (retried after a backoff)
//	any other status  invalid_request
//
// What only the body says is the provider's to add: a 400 that means the
// prompt does not fit the model's context is context_length_exceeded,
// and an upstream may say that a 429 is an exhausted quota
// (quota_exhausted, which waiting does not cure). Vigil's openai and
// anthropic plugins start from this mapping and refine it so.
func ClassForStatus(status int) sdk.Class {
	switch {
	case status == 400 || status == 413 || status == 422:
		return sdk.InvalidRequest
	case status == 401 || status == 403:
		return sdk.Auth
	case status == 402:
		return sdk.QuotaExhausted
	case status == 404:
		return sdk.NotFound
	case status == 408 || status == 504:
		return sdk.Timeout
	case status == 429:
		return sdk.RateLimited
	case status == 503 || status == 529:
		return sdk.Overloaded
	case status >= 500 || status == 409:
		return sdk.Unavailable
	}
	return sdk.InvalidRequest
}

// RetryAfter is how long an upstream asks to be left alone, from its
// answer's headers: retry-after-ms (OpenAI's, milliseconds, fractions
// allowed) when usable, else Retry-After as seconds (fractions allowed)
// or an HTTP date (less now). It is zero when neither is set or usable:
// absent, not a number or date, not positive, a date already past, or
// absurd (1e9 ms, 1e6 s or more).
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("retry-after-ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 && ms < 1e9 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	if v := h.Get("retry-after"); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 && s < 1e6 {
			return time.Duration(s * float64(time.Second))
		}
		if t, err := http.ParseTime(v); err == nil && t.After(now) {
			return t.Sub(now)
		}
	}
	return 0
}

// StatusError is the error of an upstream's non-2xx answer with status
// and headers h: class ClassForStatus(status), the given message, and,
// for rate_limited and overloaded, RetryAfter(h, time.Now()), which the
// gateway waits before it tries the same target again. A provider that
// refines the class sets Class (and RetryAfter) on the result.
func StatusError(status int, h http.Header, message string) *sdk.Error {
	e := &sdk.Error{Class: ClassForStatus(status), Message: message}
	if e.Class == sdk.RateLimited || e.Class == sdk.Overloaded {
		e.RetryAfter = RetryAfter(h, time.Now())
	}
	return e
}
