package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"testing"

	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// tinyPDF is a minimal one-page PDF.
const tinyPDF = "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 72 72]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"

var pdfDataURL = "data:application/pdf;base64," + base64.StdEncoding.EncodeToString([]byte(tinyPDF))

func fileReq() *pb.ChatRequest {
	req := chatReq("gpt-test")
	req.Messages[1].Content = "summarize"
	req.Messages[1].Parts = []*pb.ContentPart{
		{Type: "text", Text: "summarize"},
		{Type: "file", FileData: pdfDataURL, Filename: "report.pdf"},
	}
	return req
}

// TestFilesSentUpstream: a file part goes upstream as OpenAI's file part
// ({"type": "file", "file": {"file_data", "filename"}}), whole and
// streamed; the stub (which refuses malformed file parts and data that is
// not a PDF) echoes the name and decoded size.
func TestFilesSentUpstream(t *testing.T) {
	p, stub := setup(t, nil)
	resp, err := p.Chat(context.Background(), fileReq())
	if err != nil {
		t.Fatal(err)
	}
	want := "echo: summarize[file report.pdf " + strconv.Itoa(len(tinyPDF)) + " bytes]"
	if resp.GetContent() != want {
		t.Fatalf("answer %q, want %q", resp.GetContent(), want)
	}
	msgs := stub.LastRequest("/v1/chat/completions", "gpt-test")["messages"].([]any)
	got, _ := json.Marshal(msgs[1].(map[string]any)["content"])
	wantJSON := `[{"text":"summarize","type":"text"},{"file":{"file_data":"` + pdfDataURL + `","filename":"report.pdf"},"type":"file"}]`
	if string(got) != wantJSON {
		t.Fatalf("content upstream:\n%s\nwant\n%s", got, wantJSON)
	}
	var text string
	err = p.ChatStream(context.Background(), fileReq(), func(ev *pb.ChatEvent) error { text += ev.GetDelta(); return nil })
	if err != nil || text != want {
		t.Fatalf("stream %q %v", text, err)
	}
	bad := fileReq()
	bad.Messages[1].Parts[1].FileData = ""
	if _, err := p.Chat(context.Background(), bad); err == nil || !containsAll(err.Error(), "parts[1].file_data") {
		t.Fatalf("empty file data: %v", err)
	}
	// The stub refuses data that is not a PDF, as OpenAI does; the
	// upstream's 400 names the field.
	bad = fileReq()
	bad.Messages[1].Parts[1].FileData = "data:application/pdf;base64," + base64.StdEncoding.EncodeToString([]byte("hello"))
	if _, err := p.Chat(context.Background(), bad); err == nil || !containsAll(err.Error(), "file_data", "not a valid PDF") {
		t.Fatalf("not a PDF: %v", err)
	}
}
