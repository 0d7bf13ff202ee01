package sdk

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// Provider sessions (the Session RPC in provider.proto): the host sends
// Chat, ChatStream and Embed calls over long-lived streams, one call at a
// time per stream, instead of an RPC per call. Per call this saves the
// stream's set-up and tear-down on both sides (HEADERS and trailers, the
// stream's state, a handler goroutine hand-off in the plugin): about a
// third of a small call's CPU across the two processes, and most of its
// tail (bench/README.md, "Plugin sessions").
//
// The host side keeps idle sessions in a pool; a call takes one (or opens
// one), and gives it back when its last reply has come. A call that is
// abandoned (its context ended, or the caller's send failed during a
// stream) cancels its session's stream, which ends the call's context in
// the plugin, so a session never carries a call the host no longer
// waits for.

// maxIdleSessions bounds the idle sessions a client keeps. Each is a
// stream and one parked goroutine in the plugin; sessions beyond it (after
// a burst of concurrent calls) are closed when their call ends.
const maxIdleSessions = 64

// Session server: the plugin side, in the SDK's provider server.

func (s *providerServer) Session(stream grpc.BidiStreamingServer[pb.SessionCall, pb.SessionReply]) error {
	ctx := stream.Context()
	for {
		call, err := stream.Recv()
		if err != nil {
			// io.EOF: the host closed the session; otherwise the stream
			// was cancelled or the connection closed. Either way there is
			// no call to answer.
			return nil
		}
		if err := s.serveCall(ctx, stream, call); err != nil {
			// The reply could not be sent: the stream is gone.
			return nil
		}
	}
}

// serveCall runs one call of a session and sends its replies, the last
// with done set. It returns an error only when a reply could not be sent.
func (s *providerServer) serveCall(ctx context.Context, stream grpc.BidiStreamingServer[pb.SessionCall, pb.SessionReply], call *pb.SessionCall) (sendErr error) {
	if call.TimeoutUs > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(call.TimeoutUs)*time.Microsecond)
		defer cancel()
	}
	method := "Session"
	defer func() {
		if p := recover(); p != nil {
			sendErr = stream.Send(errorReply(ctx, recovered(sessionMethod(method), p)))
		}
	}()
	var reply *pb.SessionReply
	switch c := call.Call.(type) {
	case *pb.SessionCall_Chat:
		method = "Chat"
		resp, err := s.impl.Chat(ctx, c.Chat)
		if err != nil {
			return stream.Send(errorReply(ctx, err))
		}
		reply = &pb.SessionReply{Reply: &pb.SessionReply_Chat{Chat: resp}, Done: true}
	case *pb.SessionCall_ChatStream:
		method = "ChatStream"
		snd := &streamSends{stream: stream}
		// A panicking handler's sends end before the recovery's reply.
		defer snd.end()
		err := s.impl.ChatStream(ctx, c.ChatStream, snd.send)
		if sendErr = snd.end(); sendErr != nil {
			return sendErr
		}
		if err != nil {
			return stream.Send(errorReply(ctx, err))
		}
		reply = &pb.SessionReply{Done: true}
	case *pb.SessionCall_Embed:
		method = "Embed"
		resp, err := s.impl.Embed(ctx, c.Embed)
		if err != nil {
			return stream.Send(errorReply(ctx, err))
		}
		reply = &pb.SessionReply{Reply: &pb.SessionReply_Embed{Embed: resp}, Done: true}
	default:
		reply = errorReply(ctx, Errorf(Unsupported, "this plugin's SDK does not know the session call %T; update the plugin", call.Call))
	}
	return stream.Send(reply)
}

// streamSends is the send a ChatStream handler gets on a session. A
// handler may call it from a goroutine of its own, even after it has
// returned (one left reading its upstream). On an RPC such a send fails,
// the stream being over; on a session it would put the event into the
// session's next call, another request's answer. So sends are serialised,
// and refused once the call is over.
type streamSends struct {
	stream grpc.BidiStreamingServer[pb.SessionCall, pb.SessionReply]
	mu     sync.Mutex
	over   bool
	err    error // the first failed Send's
}

func (s *streamSends) send(ev *pb.ChatEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.over:
		return errCallOver
	case s.err != nil:
		return s.err
	}
	if err := s.stream.Send(&pb.SessionReply{Reply: &pb.SessionReply_ChatEvent{ChatEvent: ev}}); err != nil {
		s.err = err
		return err
	}
	return nil
}

// end refuses further sends, and returns the first failed Send's error.
func (s *streamSends) end() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.over = true
	return s.err
}

// errCallOver is what a ChatStream handler's send returns once the
// handler has returned: its call is over, and its session may carry
// another.
var errCallOver = errors.New("send after ChatStream returned: the call is over")

// sessionMethod names a call within a session in panic reports by the
// full method name of the RPC it stands for, so that a panic reads the
// same whichever way the call came.
func sessionMethod(method string) string {
	return "/vigil.plugin.v1.Provider/" + method
}

// errorReply is the session form of toStatus: err as a done reply. Its
// strings are made valid UTF-8, which protobuf requires: a message cut in
// the middle of a character (an upstream's error body) would otherwise
// fail to marshal, break the session and lose the error's class.
func errorReply(ctx context.Context, err error) *pb.SessionReply {
	e := asError(ctx, err)
	class := pb.ErrorClass(pb.ErrorClass_value[strings.ToUpper(string(e.Class))])
	if class == pb.ErrorClass_ERROR_CLASS_UNSPECIFIED {
		class = pb.ErrorClass_INTERNAL
	}
	return &pb.SessionReply{Done: true, Reply: &pb.SessionReply_Error{Error: &pb.SessionError{
		Class:        class,
		Message:      strings.ToValidUTF8(e.Message, "\uFFFD"),
		Field:        strings.ToValidUTF8(e.Field, "\uFFFD"),
		RetryAfterMs: e.RetryAfter.Milliseconds(),
	}}}
}

// asError types a handler's error as toStatus does for an RPC: an *Error
// as it is, a gRPC status by its code, a context's end as a timeout,
// anything else as internal.
func asError(_ context.Context, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if st, ok := status.FromError(err); ok {
		c, ok := codeClasses[st.Code()]
		if !ok {
			c = Internal
		}
		return &Error{Class: c, Message: st.Message()}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Class: Timeout, Message: err.Error()}
	case errors.Is(err, context.Canceled):
		return &Error{Class: Timeout, Message: "call cancelled"}
	}
	return &Error{Class: Internal, Message: err.Error()}
}

// fromSessionError turns a session's error reply back into an *Error.
func fromSessionError(se *pb.SessionError) *Error {
	e := &Error{Message: se.Message, Field: se.Field}
	if se.Class == pb.ErrorClass_ERROR_CLASS_UNSPECIFIED {
		e.Class = Internal
	} else {
		e.Class = Class(strings.ToLower(se.Class.String()))
	}
	if se.RetryAfterMs > 0 {
		e.RetryAfter = time.Duration(se.RetryAfterMs) * time.Millisecond
	}
	return e
}

// Session client: the host side, in the SDK's provider client.

// sessions is a provider client's pool of idle sessions.
type sessions struct {
	c pb.ProviderClient
	// unsupported is set once the plugin has answered UNIMPLEMENTED to a
	// session (a plugin built without this SDK, or with an older one):
	// every call is then an RPC of its own.
	unsupported atomic.Bool
	mu          sync.Mutex
	idle        []*session
}

type session struct {
	stream grpc.BidiStreamingClient[pb.SessionCall, pb.SessionReply]
	cancel context.CancelFunc
	// used is false until the session has carried a call: only a new
	// session's first answer can say that the plugin has no sessions.
	used bool
}

// get returns an idle session, or opens one for a call with context ctx;
// nil when the plugin has no sessions.
func (p *sessions) get(ctx context.Context) (*session, error) {
	if p.unsupported.Load() {
		return nil, nil
	}
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		s := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return s, nil
	}
	p.mu.Unlock()
	// A session outlives the call that opened it, so its stream has a
	// context of its own; an abandoned call cancels it. Opening it waits
	// for the plugin's connection when that is not ready (reconnecting):
	// no longer than the call may, as an RPC of its own would.
	sctx, cancel := context.WithCancel(context.Background())
	opening := context.AfterFunc(ctx, cancel)
	stream, err := p.c.Session(sctx)
	if !opening() {
		// The call ended while the session opened: it has been
		// cancelled.
		cancel()
		return nil, fromStatus(status.FromContextError(ctx.Err()).Err(), nil)
	}
	if err != nil {
		cancel()
		return nil, fromStatus(err, nil)
	}
	return &session{stream: stream, cancel: cancel}, nil
}

// put gives a session whose call is over back to the pool.
func (p *sessions) put(s *session) {
	p.mu.Lock()
	if len(p.idle) < maxIdleSessions {
		p.idle = append(p.idle, s)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	s.cancel()
}

// errNoSessions says that the plugin answered the session's first call
// with UNIMPLEMENTED: the caller sends the call as an RPC instead (the
// plugin has not run it).
var errNoSessions = errors.New("plugin has no sessions")

// do sends call on a session and hands each reply to onReply until the
// one with done set. It returns errNoSessions when the plugin has none
// (the caller then makes the call as an RPC), and a *Error for a failed
// call.
func (p *sessions) do(ctx context.Context, call *pb.SessionCall, onReply func(*pb.SessionReply) error) error {
	var (
		s     *session
		fresh bool
		stop  func() bool
	)
	// ended is the error for a call whose context ended: a timeout, as
	// for an RPC.
	ended := func() error { return fromStatus(status.FromContextError(ctx.Err()).Err(), nil) }
	for {
		var err error
		if s, err = p.get(ctx); err != nil {
			return err
		}
		if s == nil {
			return errNoSessions
		}
		if dl, ok := ctx.Deadline(); ok {
			left := time.Until(dl)
			if left <= 0 {
				p.put(s)
				return fromStatus(status.FromContextError(context.DeadlineExceeded).Err(), nil)
			}
			call.TimeoutUs = max(left.Microseconds(), 1)
		}
		fresh = !s.used
		s.used = true
		// The call's end (its deadline, or the caller giving up) cancels
		// the session's stream: the plugin ends the call's context, and
		// the Recv below returns.
		stop = context.AfterFunc(ctx, s.cancel)
		err = s.stream.Send(call)
		if err == nil {
			break
		}
		stop()
		s.cancel()
		// io.EOF: the stream had ended before this call, which was not
		// sent; its status comes from Recv.
		eof := errors.Is(err, io.EOF)
		if eof {
			_, err = s.stream.Recv()
		}
		if fresh && status.Code(err) == codes.Unimplemented {
			p.unsupported.Store(true)
			return errNoSessions
		}
		if ctx.Err() != nil {
			return ended()
		}
		if eof && !fresh {
			// A pooled session that died while idle: its connection
			// closed under it (gRPC has reconnected since, or the plugin
			// is gone, and then the next session fails to open). The
			// call is sent on another session instead; a new session's
			// failure is the call's.
			continue
		}
		return fromStatus(err, nil)
	}
	abandon := func(err error) error {
		stop()
		s.cancel()
		if ctx.Err() != nil {
			return ended()
		}
		return err
	}
	for {
		reply, err := s.stream.Recv()
		if err != nil {
			if fresh && status.Code(err) == codes.Unimplemented {
				p.unsupported.Store(true)
				stop()
				s.cancel()
				return errNoSessions
			}
			if errors.Is(err, io.EOF) {
				err = Errorf(Unavailable, "the plugin ended the session before answering")
			}
			return abandon(fromStatus(err, nil))
		}
		if se := reply.GetError(); se != nil {
			if !stop() {
				// The call's context ended as the error came: the stream
				// is being cancelled, so the session cannot be reused.
				s.cancel()
			} else {
				p.put(s)
			}
			return fromSessionError(se)
		}
		if reply.Reply != nil {
			if err := onReply(reply); err != nil {
				// The caller gave up (a stream's client went away): the
				// plugin must stop too.
				stop()
				s.cancel()
				return err
			}
		}
		if reply.Done {
			if !stop() {
				s.cancel()
			} else {
				p.put(s)
			}
			return nil
		}
	}
}

// answer makes a call with one answer (Chat, Embed) on a session; get
// picks the answer out of the reply. ok is false when the plugin has no
// sessions: the caller then sends the call as an RPC.
func answer[T any](ctx context.Context, p *sessions, call *pb.SessionCall, method string, get func(*pb.SessionReply) *T) (resp *T, ok bool, err error) {
	err = p.do(ctx, call, func(r *pb.SessionReply) error {
		if resp = get(r); resp == nil {
			return unexpectedReply(method, r)
		}
		return nil
	})
	if err == errNoSessions {
		return nil, false, nil
	}
	if err == nil && resp == nil {
		err = Errorf(Internal, "plugin ended its session's %s call without an answer", method)
	}
	return resp, true, err
}

// unexpectedReply is the error for a reply of the wrong kind for its call.
func unexpectedReply(want string, r *pb.SessionReply) error {
	return Errorf(Internal, "plugin answered a %s call on its session with %T", want, r.Reply)
}
