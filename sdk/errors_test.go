package sdk

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"
)

// TestHandlerErrorClasses pins what the package doc promises about a
// handler's plain errors: the call's own context ending (wrapped or not,
// as an HTTP client reports it) is class timeout; anything else internal.
func TestHandlerErrorClasses(t *testing.T) {
	for _, c := range []struct {
		err  error
		want Class
	}{
		{context.Canceled, Timeout},
		{fmt.Errorf("post upstream: %w", context.DeadlineExceeded), Timeout},
		{&url.Error{Op: "Post", URL: "http://upstream/v1", Err: context.Canceled}, Timeout},
		{errors.New("boom"), Internal},
		{Errorf(RateLimited, "slow down"), RateLimited},
	} {
		got := ClassOf(fromStatus(toStatus(context.Background(), c.err), nil))
		if got != c.want {
			t.Errorf("a handler returning %v reaches the agent as %s, want %s", c.err, got, c.want)
		}
	}
}

// TestClassOfMatchesTheWire: ClassOf of a handler's error, as a plugin's
// own unit test would ask it, is the class the agent receives.
func TestClassOfMatchesTheWire(t *testing.T) {
	for _, err := range []error{
		context.Canceled,
		fmt.Errorf("read stream: %w", context.Canceled),
		context.DeadlineExceeded,
		errors.New("boom"),
		FieldErrorf("messages", "empty"),
	} {
		wire := ClassOf(fromStatus(toStatus(context.Background(), err), nil))
		if got := ClassOf(err); got != wire {
			t.Errorf("ClassOf(%v) = %s, but the agent receives %s", err, got, wire)
		}
	}
}
