package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"

	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// tinyPDF is a minimal one-page PDF.
const tinyPDF = "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 72 72]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"

var pdfBase64 = base64.StdEncoding.EncodeToString([]byte(tinyPDF))

func fileReq() *pb.ChatRequest {
	return &pb.ChatRequest{Model: "claude-test", Messages: []*pb.Message{
		{Role: "user", Content: "summarize ", Parts: []*pb.ContentPart{
			{Type: "text", Text: "summarize "},
			{Type: "file", FileData: "data:application/pdf;base64," + pdfBase64, Filename: "report.pdf"},
		}},
	}}
}

// TestFilesTranslated: a file part becomes a document block (base64 PDF
// source, the filename as its title), in order with the text; the stub,
// which checks document blocks as the Messages API does, echoes it.
func TestFilesTranslated(t *testing.T) {
	p, stub := setup(t, nil)
	body, err := p.state().messagesBody(fileReq(), false)
	if err != nil {
		t.Fatal(err)
	}
	want := literal(t, `{
		"model": "claude-test", "max_tokens": 4096,
		"messages": [{"role": "user", "content": [
			{"type": "text", "text": "summarize "},
			{"type": "document", "title": "report.pdf", "source": {"type": "base64", "media_type": "application/pdf", "data": "`+pdfBase64+`"}}]}]
	}`)
	if got := asJSON(t, body); !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		t.Fatalf("request body:\n%s", g)
	}
	resp, err := p.Chat(context.Background(), fileReq())
	if err != nil {
		t.Fatal(err)
	}
	if want := "echo: summarize [document report.pdf " + strconv.Itoa(len(tinyPDF)) + " bytes]"; resp.GetContent() != want {
		t.Fatalf("answer %q, want %q", resp.GetContent(), want)
	}
	// What the Messages API does not take is refused before any call,
	// with the part named.
	for data, msg := range map[string]string{
		"data:text/plain;base64,aGk=":         `not "text/plain"`,
		"data:application/pdf,abc":            "data:application/pdf;base64,<data>",
		"https://docs.test/report.pdf":        "must be a data: URL",
		"data:application/pdf;base64,":        "data:application/pdf;base64,<data>",
		"application/pdf;base64," + pdfBase64: "must be a data: URL",
	} {
		req := fileReq()
		req.Messages[0].Parts[1].FileData = data
		if _, err := p.Chat(context.Background(), req); err == nil || !strings.Contains(err.Error(), "messages[0].parts[1].file_data") || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v", data, err)
		}
	}
	if n := stub.Calls("/v1/messages", "claude-test"); n != 1 {
		t.Fatalf("%d upstream requests", n)
	}
}
