package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/vigilml/vigil/internal/openaiwire"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// FilesCapability is the provider capability that says a plugin carries
// file parts (ContentPart type "file": a PDF inline as a data: URL). A
// plugin built without it would drop them, or refuse the part type.
const FilesCapability = "files"

// fileMediaType is the one file type the gateway passes on: both OpenAI
// (file parts, input_file) and Anthropic (document blocks) take PDFs.
const fileMediaType = "application/pdf"

// maxFileBytes caps one file's decoded size; the upstreams cap a
// request's files in the tens of megabytes, and the request body limit
// (api.max_body_bytes, 8 MiB by default) binds first unless raised.
const maxFileBytes = 32 << 20

// pdfMagic opens every PDF file.
var pdfMagic = []byte("%PDF-")

// checkFilePart accepts {"file": {"file_data": "data:application/pdf;
// base64,...", "filename": ...}}. sub is the field under the part's
// "file" that is wrong (".file_data", ".filename", ...).
func checkFilePart(p openaiwire.ContentPart) (sub string, err error) {
	f := p.File
	if f == nil {
		return "", fmt.Errorf("file is required in a file part: {\"file_data\": \"data:application/pdf;base64,...\", \"filename\": ...}")
	}
	if f.FileID != "" {
		return ".file_id", fmt.Errorf("file.file_id names a file in OpenAI's Files API, which the gateway does not reach: send file_data (data:application/pdf;base64,...) and filename")
	}
	if f.FileData == "" {
		return ".file_data", fmt.Errorf("file.file_data is required: data:application/pdf;base64,<data>")
	}
	if f.Filename == "" {
		return ".filename", fmt.Errorf("file.filename is required with file_data, as OpenAI requires it")
	}
	if err := checkFileData(f.FileData); err != nil {
		return ".file_data", fmt.Errorf("file.file_data: %v", err)
	}
	return "", nil
}

// checkFileData checks a file's data: URL: application/pdf, base64, at
// most maxFileBytes decoded, and a PDF (it starts with %PDF-). The data is
// checked as it is decoded, without holding the decoded file.
func checkFileData(u string) error {
	rest, ok := strings.CutPrefix(u, "data:")
	if !ok {
		return fmt.Errorf("must be a data: URL, data:application/pdf;base64,<data> (plain base64 is not taken: OpenAI wants the data: URL)")
	}
	meta, data, ok := strings.Cut(rest, ",")
	mediaType, enc, _ := strings.Cut(meta, ";")
	if !ok || enc != "base64" {
		return fmt.Errorf("a data: URL must be data:application/pdf;base64,<data>")
	}
	if mediaType != fileMediaType {
		return fmt.Errorf("file type %q is not taken: the gateway carries PDF files (%s) only", mediaType, fileMediaType)
	}
	if data == "" {
		return fmt.Errorf("the data: URL holds no data")
	}
	var head [5]byte
	dec := base64.NewDecoder(base64.StdEncoding, strings.NewReader(data))
	n, err := io.ReadFull(dec, head[:])
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return fmt.Errorf("the data is not base64: %v", err)
	}
	rest2, err := io.Copy(io.Discard, io.LimitReader(dec, maxFileBytes))
	if err != nil {
		return fmt.Errorf("the data is not base64: %v", err)
	}
	if int64(n)+rest2 > maxFileBytes {
		return fmt.Errorf("the file is over %d MiB decoded", maxFileBytes>>20)
	}
	if !bytes.Equal(head[:n], pdfMagic) {
		return fmt.Errorf("the data is not a PDF file (it does not start with %%PDF-)")
	}
	return nil
}

// usesFiles reports whether req has a message with a file part.
func usesFiles(req *pb.ChatRequest) bool {
	return usesPart(req, "file")
}

// inputFile turns a Responses input_file part (file_data as a data: URL,
// and filename) into a chat file part, checked here so that errors name
// the Responses fields.
func inputFile(pf string, keys map[string]json.RawMessage, role string) (map[string]any, *Error) {
	if role != "user" {
		return nil, invalid(pf+".type", "%s.type \"input_file\" is only allowed in user messages", pf)
	}
	for _, k := range sortedKeys(keys) {
		switch k {
		case "type", "file_data", "filename", "file_id", "file_url":
		default:
			return nil, invalid(pf+"."+k, "%s.%s is not supported in an input_file part", pf, k)
		}
	}
	if !isNull(keys["file_id"]) {
		return nil, invalid(pf+".file_id", "%s.file_id names a file in OpenAI's Files API, which the gateway does not reach: send file_data (data:application/pdf;base64,...) and filename", pf)
	}
	if !isNull(keys["file_url"]) {
		return nil, invalid(pf+".file_url", "%s.file_url is not supported: chat completions, which the gateway's plugins speak, has no file URLs; send file_data (data:application/pdf;base64,...) and filename", pf)
	}
	var data, name string
	if jsonType(keys["file_data"]) != "a string" || json.Unmarshal(keys["file_data"], &data) != nil || data == "" {
		return nil, invalid(pf+".file_data", "%s.file_data is required: data:application/pdf;base64,<data>", pf)
	}
	if jsonType(keys["filename"]) != "a string" || json.Unmarshal(keys["filename"], &name) != nil || name == "" {
		return nil, invalid(pf+".filename", "%s.filename is required with file_data, as OpenAI requires it", pf)
	}
	if err := checkFileData(data); err != nil {
		return nil, invalid(pf+".file_data", "%s.file_data: %v", pf, err)
	}
	return map[string]any{"type": "file", "file": map[string]any{"file_data": data, "filename": name}}, nil
}
