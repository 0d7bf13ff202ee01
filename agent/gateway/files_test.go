package gateway

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/vigilml/vigil/agent/gateway/tokens"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// tinyPDF is a minimal one-page PDF.
const tinyPDF = "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 72 72]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"

var pdfDataURL = "data:application/pdf;base64," + base64.StdEncoding.EncodeToString([]byte(tinyPDF))

func filePart(data, name string) string {
	return `{"type":"file","file":{"file_data":"` + data + `","filename":"` + name + `"}}`
}

// TestFilePartsValidation: every refusal is a 400 whose param names the
// part's field, and none reaches the provider.
func TestFilePartsValidation(t *testing.T) {
	h := newHarness(t, testCfg())
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	cases := []struct{ name, body, param, msg string }{
		{"file in a system message", `{"model":"single","messages":[{"role":"system","content":[` + filePart(pdfDataURL, "a.pdf") + `]},{"role":"user","content":"hi"}]}`,
			"messages[0].content[0].type", "only allowed in user messages"},
		{"no file", imageBody("single", `[{"type":"file"}]`), "messages[0].content[0].file", "file is required"},
		{"file_id", imageBody("single", `[{"type":"file","file":{"file_id":"file-abc"}}]`), "messages[0].content[0].file.file_id", "Files API"},
		{"no file_data", imageBody("single", `[{"type":"file","file":{"filename":"a.pdf"}}]`), "messages[0].content[0].file.file_data", "file_data is required"},
		{"no filename", imageBody("single", `[{"type":"file","file":{"file_data":"`+pdfDataURL+`"}}]`), "messages[0].content[0].file.filename", "filename is required"},
		{"plain base64", imageBody("single", `[`+filePart(b64(tinyPDF), "a.pdf")+`]`), "messages[0].content[0].file.file_data", "must be a data: URL"},
		{"not a PDF type", imageBody("single", `[`+filePart("data:text/plain;base64,"+b64("hi"), "a.txt")+`]`), "messages[0].content[0].file.file_data", `file type "text/plain"`},
		{"not base64", imageBody("single", `[`+filePart("data:application/pdf;base64,***", "a.pdf")+`]`), "messages[0].content[0].file.file_data", "not base64"},
		{"not ;base64", imageBody("single", `[`+filePart("data:application/pdf,abc", "a.pdf")+`]`), "messages[0].content[0].file.file_data", "data:application/pdf;base64,<data>"},
		{"no data", imageBody("single", `[`+filePart("data:application/pdf;base64,", "a.pdf")+`]`), "messages[0].content[0].file.file_data", "holds no data"},
		{"not a PDF", imageBody("single", `[`+filePart("data:application/pdf;base64,"+b64("hello, world"), "a.pdf")+`]`), "messages[0].content[0].file.file_data", "not a PDF file"},
		{"shorter than the magic", imageBody("single", `[`+filePart("data:application/pdf;base64,"+b64("%P"), "a.pdf")+`]`), "messages[0].content[0].file.file_data", "not a PDF file"},
	}
	for _, tc := range cases {
		w := h.do(t, "/chat", tc.body)
		e := errBody(t, w)
		if w.Code != 400 || e.Param == nil || *e.Param != tc.param || !strings.Contains(e.Message, tc.msg) {
			t.Errorf("%s: %d param %v: %s", tc.name, w.Code, e.Param, e.Message)
		}
	}
	if n := h.a.count("solo"); n != 0 {
		t.Fatalf("refused requests reached the provider %d times", n)
	}
}

// TestFileDataSizeLimit: a file over maxFileBytes decoded is refused
// without decoding past the limit; one at the limit is taken.
func TestFileDataSizeLimit(t *testing.T) {
	at := make([]byte, maxFileBytes)
	copy(at, tinyPDF)
	if err := checkFileData("data:application/pdf;base64," + base64.StdEncoding.EncodeToString(at)); err != nil {
		t.Fatalf("a file of exactly %d bytes: %v", maxFileBytes, err)
	}
	over := append(at, 0)
	err := checkFileData("data:application/pdf;base64," + base64.StdEncoding.EncodeToString(over))
	if err == nil || !strings.Contains(err.Error(), "over 32 MiB") {
		t.Fatalf("a file of %d bytes: %v", len(over), err)
	}
}

// TestFilePartsConversion: a file part reaches the provider as a "file"
// ContentPart with its data: URL and filename, in order with the text.
func TestFilePartsConversion(t *testing.T) {
	h := newHarness(t, testCfg())
	w := h.do(t, "/chat", imageBody("single", `[{"type":"text","text":"summarize "},`+filePart(pdfDataURL, "report.pdf")+`,{"type":"text","text":"please"}]`))
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	m := h.a.last["solo"].GetMessages()[0]
	want := []*pb.ContentPart{{Type: "text", Text: "summarize "}, {Type: "file", FileData: pdfDataURL, Filename: "report.pdf"}, {Type: "text", Text: "please"}}
	if m.GetContent() != "summarize please" || len(m.GetParts()) != len(want) {
		t.Fatalf("message %v", m)
	}
	for i, p := range m.GetParts() {
		if p.GetType() != want[i].GetType() || p.GetText() != want[i].GetText() || p.GetFileData() != want[i].GetFileData() || p.GetFilename() != want[i].GetFilename() || p.GetImageUrl() != "" {
			t.Errorf("part %d = %v, want %v", i, p, want[i])
		}
	}
}

// TestFilesNeedTheCapability: a request with a file skips a target whose
// plugin does not declare "files" (even one that takes images) and goes
// to the next; with none left, 400 unsupported. A file alone does not
// need "images".
func TestFilesNeedTheCapability(t *testing.T) {
	h := newHarness(t, testCfg())
	h.g.providers = capFleet{fleet{"pa": h.a, "pb": h.b}, map[string][]string{"pa": {"chat", "stream", ImagesCapability}, "pb": {"chat", "stream", FilesCapability}}}
	file := `[{"type":"text","text":"what is this?"},` + filePart(pdfDataURL, "a.pdf") + `]`
	for _, stream := range []string{"", `,"stream":true`} {
		body := strings.TrimSuffix(imageBody("chain", file), "}") + stream + "}"
		if w := h.do(t, "/chat", body); w.Code != 200 || w.Header().Get("x-vigil-provider") != "pb" {
			t.Fatalf("file%s on chain: %d %s %s", stream, w.Code, w.Header().Get("x-vigil-provider"), w.Body)
		}
		body = strings.TrimSuffix(imageBody("single", file), "}") + stream + "}"
		w := h.do(t, "/chat", body)
		if e := errBody(t, w); w.Code != 400 || e.Code != "unsupported" || !strings.Contains(e.Message, "provider pa does not take files") {
			t.Fatalf("file%s on single: %d %s", stream, w.Code, w.Body)
		}
	}
	if n := h.a.count("m1") + h.a.count("solo"); n != 0 {
		t.Fatalf("pa got %d requests with files", n)
	}
	// An image still goes to pa, which takes images.
	img := `[{"type":"image_url","image_url":{"url":"https://x.test/a.png"}}]`
	if w := h.do(t, "/chat", imageBody("single", img)); w.Code != 200 {
		t.Fatalf("image on single: %d %s", w.Code, w.Body)
	}
}

// TestFilesInCacheKeyAndTokens: the file's data and name are part of the
// cache key; a file adds no tokens to the gateway's count (it is not
// counted: see docs/gateway.md), and its bytes are not counted as text.
func TestFilesInCacheKeyAndTokens(t *testing.T) {
	msg := func(data, name string) *pb.ChatRequest {
		return &pb.ChatRequest{Messages: []*pb.Message{{Role: "user", Content: "x", Parts: []*pb.ContentPart{{Type: "text", Text: "x"}, {Type: "file", FileData: data, Filename: name}}}}}
	}
	other := "data:application/pdf;base64," + base64.StdEncoding.EncodeToString([]byte(tinyPDF+" "))
	keys := map[string]bool{}
	for _, r := range []*pb.ChatRequest{{Messages: []*pb.Message{{Role: "user", Content: "x"}}}, msg(pdfDataURL, "a.pdf"), msg(other, "a.pdf"), msg(pdfDataURL, "b.pdf")} {
		keys[cacheKey("a", "", r)] = true
	}
	if len(keys) != 4 {
		t.Fatalf("%d distinct keys for 4 requests", len(keys))
	}
	plain := messageTokens(tokens.O200kBase, &pb.Message{Role: "user", Content: "x"})
	if n := messageTokens(tokens.O200kBase, msg(pdfDataURL, "a.pdf").Messages[0]); n != plain {
		t.Errorf("a file counts %d tokens, want %d (not counted)", n, plain)
	}
	if b := bytesBound(msg(pdfDataURL, "a.pdf")); b > 1000 {
		t.Errorf("the byte bound counts the file's bytes as text: %d", b)
	}
}

// TestResponsesInputFile: input_file becomes a chat file part; its
// refusals name the Responses fields.
func TestResponsesInputFile(t *testing.T) {
	h := newHarness(t, testCfg())
	in := func(part string) string {
		return `{"model":"single","input":[{"role":"user","content":[{"type":"input_text","text":"read "},` + part + `]}]}`
	}
	w := h.responses(t, in(`{"type":"input_file","file_data":"`+pdfDataURL+`","filename":"r.pdf"}`))
	responseObject(t, w)
	m := h.a.last["solo"].GetMessages()[0]
	if ps := m.GetParts(); len(ps) != 2 || ps[1].GetType() != "file" || ps[1].GetFileData() != pdfDataURL || ps[1].GetFilename() != "r.pdf" || m.GetContent() != "read " {
		t.Fatalf("message %v", m)
	}
	for _, c := range []struct{ part, param, msg string }{
		{`{"type":"input_file","file_id":"file-1"}`, "input[0].content[1].file_id", "Files API"},
		{`{"type":"input_file","file_url":"https://x.test/a.pdf","filename":"a.pdf"}`, "input[0].content[1].file_url", "file_url is not supported"},
		{`{"type":"input_file","filename":"a.pdf"}`, "input[0].content[1].file_data", "file_data is required"},
		{`{"type":"input_file","file_data":"` + pdfDataURL + `"}`, "input[0].content[1].filename", "filename is required"},
		{`{"type":"input_file","file_data":"data:image/png;base64,aGk=","filename":"a.png"}`, "input[0].content[1].file_data", `file type "image/png"`},
		{`{"type":"input_file","file_data":"data:application/pdf;base64,aGVsbG8=","filename":"a.pdf"}`, "input[0].content[1].file_data", "not a PDF file"},
		{`{"type":"input_file","file_data":"` + pdfDataURL + `","filename":"a.pdf","detail":"low"}`, "input[0].content[1].detail", "not supported in an input_file part"},
	} {
		w := h.responses(t, in(c.part))
		e := errBody(t, w)
		if w.Code != 400 || e.Param == nil || *e.Param != c.param || !strings.Contains(e.Message, c.msg) {
			t.Errorf("%s: %d param %v: %s", c.part, w.Code, e.Param, e.Message)
		}
	}
	w = h.responses(t, `{"model":"single","input":[{"role":"assistant","content":[{"type":"input_file","file_data":"`+pdfDataURL+`","filename":"a.pdf"}]},{"role":"user","content":"x"}]}`)
	if e := errBody(t, w); w.Code != 400 || e.Param == nil || *e.Param != "input[0].content[0].type" {
		t.Errorf("input_file in an assistant message: %d %s", w.Code, w.Body)
	}
}
