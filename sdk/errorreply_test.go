package sdk

import (
	"context"
	"testing"
	"time"
	"unicode/utf8"

	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
	"google.golang.org/protobuf/proto"
)

// TestErrorReplyInvalidUTF8: an error whose message or field is not
// valid UTF-8 (an upstream's error body cut in the middle of a character,
// a body in another encoding) still reaches the agent over a session
// with its class and retry-after. Protobuf refuses to marshal such a
// string, which would otherwise break the session and lose the class.
func TestErrorReplyInvalidUTF8(t *testing.T) {
	e := &Error{Class: RateLimited, Message: "upstream HTTP 429: trop de requêtes \xc3", Field: "x\xff", RetryAfter: 2 * time.Second}
	r := errorReply(context.Background(), e)
	b, err := proto.Marshal(r)
	if err != nil {
		t.Fatalf("marshal the error reply: %v", err)
	}
	var got pb.SessionReply
	if err := proto.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	se := got.GetError()
	if se.GetClass() != pb.ErrorClass_RATE_LIMITED || se.GetRetryAfterMs() != 2000 ||
		!utf8.ValidString(se.GetMessage()) || se.GetMessage() != "upstream HTTP 429: trop de requêtes \uFFFD" {
		t.Errorf("reply = %v", se)
	}
}
