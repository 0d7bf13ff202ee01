package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Class types an error so the agent can act on it.
type Class string

// Error classes. Their wire names are the lower-case names of the
// ErrorClass enum in plugin.proto.
const (
	InvalidRequest        Class = "invalid_request"
	RateLimited           Class = "rate_limited"
	Overloaded            Class = "overloaded"
	ContextLengthExceeded Class = "context_length_exceeded"
	Auth                  Class = "auth"
	QuotaExhausted        Class = "quota_exhausted"
	Unavailable           Class = "unavailable"
	Timeout               Class = "timeout"
	NotFound              Class = "not_found"
	Unsupported           Class = "unsupported"
	Internal              Class = "internal"
)

var classCodes = map[Class]codes.Code{
	InvalidRequest:        codes.InvalidArgument,
	RateLimited:           codes.ResourceExhausted,
	Overloaded:            codes.Unavailable,
	ContextLengthExceeded: codes.InvalidArgument,
	Auth:                  codes.Unauthenticated,
	QuotaExhausted:        codes.ResourceExhausted,
	Unavailable:           codes.Unavailable,
	Timeout:               codes.DeadlineExceeded,
	NotFound:              codes.NotFound,
	Unsupported:           codes.Unimplemented,
	Internal:              codes.Internal,
}

// codeClasses is the class assumed for a gRPC status that came without a
// class trailer (a plugin not built with an SDK, or a transport failure).
var codeClasses = map[codes.Code]Class{
	codes.InvalidArgument:    InvalidRequest,
	codes.OutOfRange:         InvalidRequest,
	codes.FailedPrecondition: InvalidRequest,
	codes.ResourceExhausted:  RateLimited,
	codes.Unavailable:        Unavailable,
	codes.Unauthenticated:    Auth,
	codes.PermissionDenied:   Auth,
	codes.DeadlineExceeded:   Timeout,
	// A call cancelled by the transport (the plugin's connection closing
	// under it) means the plugin is unavailable; a caller's own
	// cancellation is recognised by the host from its context.
	codes.Canceled:      Unavailable,
	codes.NotFound:      NotFound,
	codes.Unimplemented: Unsupported,
}

// Trailer keys that carry an error's class across gRPC.
const (
	TrailerClass      = "vigil-error-class"
	TrailerRetryAfter = "vigil-retry-after-ms"
	TrailerField      = "vigil-error-field"
)

// Error is a typed plugin error.
type Error struct {
	Class   Class
	Message string
	// Field names the offending request field, for invalid_request.
	Field string
	// RetryAfter is how long to wait before retrying, for rate_limited and
	// overloaded; zero when unknown.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Class))
	if e.Field != "" {
		b.WriteString(" (" + e.Field + ")")
	}
	b.WriteString(": " + e.Message)
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// ErrNotServing marks an error the agent's plugin host returns, without
// calling the plugin, for a plugin that cannot serve until an operator
// acts (its state is refused, failed or untrusted: `vigil plugins
// register`, then SIGHUP). A caller with somewhere else to go (the LLM
// gateway's next target) moves on at once: retrying cannot help, and the
// plugin's upstream is not to blame. It never crosses gRPC; check it with
// errors.Is. The error's class stays its *Error's (unavailable).
var ErrNotServing = errors.New("plugin is not serving")

// NotServing wraps e so that errors.Is(err, ErrNotServing) holds, while
// errors.As still finds e (its class and message are unchanged).
func NotServing(e *Error) error { return notServing{e} }

type notServing struct{ e *Error }

func (n notServing) Error() string   { return n.e.Error() }
func (n notServing) Unwrap() []error { return []error{n.e, ErrNotServing} }

// Errorf returns an *Error of the given class.
func Errorf(class Class, format string, args ...any) *Error {
	return &Error{Class: class, Message: fmt.Sprintf(format, args...)}
}

// FieldErrorf returns an invalid_request *Error naming a request field.
func FieldErrorf(field, format string, args ...any) *Error {
	return &Error{Class: InvalidRequest, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ClassOf returns err's class: its own if it is (or wraps) an *Error,
// Timeout for a context that ended (deadline or cancellation), Internal
// otherwise. nil has no class. For a handler's error it is the class the
// agent receives.
func ClassOf(err error) Class {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return Timeout
	}
	return Internal
}

// toStatus turns a handler's error into a gRPC status plus trailers.
func toStatus(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if !errors.As(err, &e) {
		if _, ok := status.FromError(err); ok {
			return err
		}
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			e = &Error{Class: Timeout, Message: err.Error()}
		case errors.Is(err, context.Canceled):
			e = &Error{Class: Timeout, Message: "call cancelled"}
		default:
			e = &Error{Class: Internal, Message: err.Error()}
		}
	}
	md := metadata.Pairs(TrailerClass, string(e.Class))
	if e.RetryAfter > 0 {
		md.Append(TrailerRetryAfter, strconv.FormatInt(e.RetryAfter.Milliseconds(), 10))
	}
	if e.Field != "" {
		md.Append(TrailerField, e.Field)
	}
	_ = grpc.SetTrailer(ctx, md)
	code, ok := classCodes[e.Class]
	if !ok {
		code = codes.Unknown
	}
	return status.Error(code, e.Message)
}

// fromStatus turns a gRPC error and its trailers back into an *Error.
func fromStatus(err error, trailer metadata.MD) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		if errors.Is(err, context.DeadlineExceeded) {
			return &Error{Class: Timeout, Message: err.Error()}
		}
		return &Error{Class: Unavailable, Message: err.Error()}
	}
	e := &Error{Message: st.Message()}
	if v := trailer.Get(TrailerClass); len(v) > 0 {
		e.Class = Class(v[0])
	} else if st.Code() == codes.ResourceExhausted && strings.Contains(st.Message(), "message larger than max") {
		// gRPC's own refusal of a message over MaxMessageBytes, on
		// either side: the same call would be refused again, so it is
		// not a rate limit to wait out.
		e.Class = InvalidRequest
	} else if c, ok := codeClasses[st.Code()]; ok {
		e.Class = c
	} else {
		e.Class = Internal
	}
	if v := trailer.Get(TrailerRetryAfter); len(v) > 0 {
		if ms, err := strconv.ParseInt(v[0], 10, 64); err == nil && ms > 0 {
			e.RetryAfter = time.Duration(ms) * time.Millisecond
		}
	}
	if v := trailer.Get(TrailerField); len(v) > 0 {
		e.Field = v[0]
	}
	return e
}

// recovered logs a handler's panic with its stack to standard error, which
// the agent copies into its log under the plugin's name, and returns the
// short error the caller gets: the stack is for the plugin's author, not
// for the agent's API clients.
func recovered(method string, p any) *Error {
	panicLog.Error("plugin panicked", "method", method, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	return Errorf(Internal, "plugin panicked in %s: %v (stack trace in the plugin's log)", method, p)
}

// panicLog writes one JSON line per panic, which the agent's log bridge
// keeps as one record with its level and attributes.
var panicLog = slog.New(slog.NewJSONHandler(os.Stderr, nil))

// serverInterceptors turn handler errors into typed statuses and panics
// into internal errors, so one bad request never kills a plugin.
func serverOptions() []grpc.ServerOption {
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if p := recover(); p != nil {
				err = toStatus(ctx, recovered(info.FullMethod, p))
			}
		}()
		resp, err = h(ctx, req)
		return resp, toStatus(ctx, err)
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = toStatus(ss.Context(), recovered(info.FullMethod, p))
			}
		}()
		return toStatus(ss.Context(), h(srv, ss))
	}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(unary),
		grpc.ChainStreamInterceptor(stream),
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		grpc.MaxSendMsgSize(MaxMessageBytes),
		// A pool of long-lived goroutines serves the calls instead of a new
		// goroutine per call, whose stack would grow (and be copied) on
		// every call: a measurable share of a provider plugin's CPU per
		// gateway request (bench/gateway.sh). Calls beyond the pool still
		// get a goroutine of their own.
		grpc.NumStreamWorkers(uint32(4 * runtime.GOMAXPROCS(0))),
		// Static flow-control windows: see windowBytes.
		grpc.InitialWindowSize(windowBytes),
		grpc.InitialConnWindowSize(windowBytes),
	}
}

// windowBytes is the HTTP/2 flow-control window of each gRPC stream and
// connection between the host and a plugin, on both sides. Setting it
// turns off gRPC's dynamic window sizing, whose bandwidth-delay probe
// sends a PING (and wakes the peer for the ack) on the first data frame
// after each ack, which on a busy local socket is about one extra round
// of frames per call (bench/gateway.sh). The link is a local socket, so
// a fixed 1 MiB window is more than its bandwidth-delay product; it is a
// credit, not a buffer allocated up front.
const windowBytes = 1 << 20

// MaxMessageBytes is the largest single gRPC message either side accepts.
// Bulk data (detector samples) is chunked well below it.
const MaxMessageBytes = 64 << 20

// clientOptions convert statuses back into *Error on the host side.
func clientOptions() []grpc.DialOption {
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		var trailer metadata.MD
		err := invoker(ctx, method, req, reply, cc, append(opts, grpc.Trailer(&trailer))...)
		return fromStatus(err, trailer)
	}
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(unary),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes)),
		grpc.WithInitialWindowSize(windowBytes),
		grpc.WithInitialConnWindowSize(windowBytes),
	}
}

// ClientDialOptions are the gRPC dial options a host must use with plugins
// built on this SDK: typed errors and message size limits.
func ClientDialOptions() []grpc.DialOption { return clientOptions() }
