package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"slices"
	"strings"

	"github.com/vigilml/vigil/internal/openaiwire"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// ImagesCapability is the provider capability that says a plugin carries
// image parts (Message.parts). A plugin built without it would read only
// Message.content, the text, and answer as if no image had been sent.
const ImagesCapability = "images"

// imageMediaTypes are the image types a data: URL may carry: the ones
// both OpenAI and Anthropic accept.
var imageMediaTypes = []string{"image/png", "image/jpeg", "image/gif", "image/webp"}

// messageContent reads a message's content: a string, or an array of
// text, image_url and file parts. text is the text (parts joined); parts
// are set only when the content holds an image or a file, so that
// text-only requests stay what they were for every plugin.
func messageContent(raw json.RawMessage, role string) (text string, parts []*pb.ContentPart, param string, err error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil, "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil, "", nil
	}
	var in []openaiwire.ContentPart
	if err := json.Unmarshal(raw, &in); err != nil {
		return "", nil, "", fmt.Errorf("must be a string or an array of content parts")
	}
	if len(in) == 0 {
		// As OpenAI answers ("expected an array with minimum length 1"):
		// an empty array is no content, not empty text.
		return "", nil, "", fmt.Errorf("is an empty array; send at least one content part, or a string")
	}
	var b strings.Builder
	images := false
	for i, p := range in {
		switch p.Type {
		case "text":
			if p.Text == nil {
				// As OpenAI answers: a text part's text is required
				// (an empty string is text; a missing one is a mistake).
				return "", nil, fmt.Sprintf("[%d].text", i), fmt.Errorf("part %d is a text part without text", i)
			}
			b.WriteString(*p.Text)
		case "image_url":
			if role != "user" {
				return "", nil, fmt.Sprintf("[%d].type", i), fmt.Errorf("part %d is an image; images are only allowed in user messages", i)
			}
			if err := checkImagePart(p); err != nil {
				return "", nil, fmt.Sprintf("[%d].image_url", i), fmt.Errorf("part %d: %v", i, err)
			}
			images = true
		case "file":
			if role != "user" {
				return "", nil, fmt.Sprintf("[%d].type", i), fmt.Errorf("part %d is a file; files are only allowed in user messages", i)
			}
			if sub, err := checkFilePart(p); err != nil {
				return "", nil, fmt.Sprintf("[%d].file%s", i, sub), fmt.Errorf("part %d: %v", i, err)
			}
			images = true
		default:
			return "", nil, fmt.Sprintf("[%d].type", i), fmt.Errorf("part %d has type %q; the gateway takes text, image_url and file parts", i, p.Type)
		}
	}
	// A key the gateway does not know is refused, as everywhere else in a
	// request, not dropped (a cache_control, say, would change what the
	// request costs without a word). Checked after the types, so that a
	// part of a type the gateway does not take is named as such.
	strict := json.NewDecoder(bytes.NewReader(raw))
	strict.DisallowUnknownFields()
	if strict.Decode(new([]openaiwire.ContentPart)) != nil {
		if p := unknownFieldPath(raw, reflect.TypeOf(in)); p != "" {
			return "", nil, p, fmt.Errorf("unknown key %q in a content part: the gateway does not support it (yet)", p[strings.LastIndex(p, ".")+1:])
		}
	}
	if !images {
		return b.String(), nil, "", nil
	}
	parts = make([]*pb.ContentPart, len(in))
	for i, p := range in {
		switch p.Type {
		case "text":
			parts[i] = &pb.ContentPart{Type: "text", Text: p.TextOrEmpty()}
		case "file":
			parts[i] = &pb.ContentPart{Type: "file", FileData: p.File.FileData, Filename: p.File.Filename}
		default:
			parts[i] = &pb.ContentPart{Type: "image_url", ImageUrl: p.ImageURL.URL, ImageDetail: p.ImageURL.Detail}
		}
	}
	return b.String(), parts, "", nil
}

// checkImagePart accepts an http(s) URL or a base64 data: URL of a PNG,
// JPEG, GIF or WebP image, with an optional detail of auto, low or high.
func checkImagePart(p openaiwire.ContentPart) error {
	if p.ImageURL == nil || p.ImageURL.URL == "" {
		return fmt.Errorf("image_url.url is required")
	}
	switch p.ImageURL.Detail {
	case "", "auto", "low", "high":
	default:
		return fmt.Errorf("image_url.detail %q is not auto, low or high", p.ImageURL.Detail)
	}
	u := p.ImageURL.URL
	if rest, ok := strings.CutPrefix(u, "data:"); ok {
		_, err := decodeDataURL(rest)
		return err
	}
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		return fmt.Errorf("image_url.url must be an http(s) URL or a data: URL (data:image/png;base64,...)")
	}
	return nil
}

// decodeDataURL checks what follows "data:" in an image's data URL: a
// media type the upstreams take, ";base64," and base64 data.
func decodeDataURL(rest string) (mediaType string, err error) {
	meta, data, ok := strings.Cut(rest, ",")
	mediaType, enc, _ := strings.Cut(meta, ";")
	if !ok || enc != "base64" {
		return "", fmt.Errorf("a data: URL must be data:<image type>;base64,<data>")
	}
	if !slices.Contains(imageMediaTypes, mediaType) {
		return "", fmt.Errorf("image type %q is not one of %s", mediaType, strings.Join(imageMediaTypes, ", "))
	}
	if data == "" {
		return "", fmt.Errorf("the data: URL holds no data")
	}
	// Checked as it is decoded, without holding the decoded image: it
	// may be megabytes, and only the upstream needs it.
	if _, err := io.Copy(io.Discard, base64.NewDecoder(base64.StdEncoding, strings.NewReader(data))); err != nil {
		return "", fmt.Errorf("the data: URL's data is not base64: %v", err)
	}
	return mediaType, nil
}

// usesImages reports whether req has a message with an image.
func usesImages(req *pb.ChatRequest) bool {
	return usesPart(req, "image_url")
}

// usesPart reports whether req has a message with a part of type typ.
func usesPart(req *pb.ChatRequest, typ string) bool {
	for _, m := range req.GetMessages() {
		for _, p := range m.GetParts() {
			if p.GetType() == typ {
				return true
			}
		}
	}
	return false
}

// Image tokens, approximately: OpenAI bills a low-detail image at 85
// tokens and a high-detail one at 85 plus 170 per 512-pixel tile of the
// scaled image; the gateway does not look at the image, so it counts
// every image that is not low-detail as a 1024x1024 one (four tiles). The
// upstream's usage is what cost and budgets use when it is reported.
const (
	imageTokensLow  = 85
	imageTokensHigh = 85 + 4*170
)

// imageTokens is the approximate prompt cost of a message's images.
func imageTokens(m *pb.Message) int {
	n := 0
	for _, p := range m.GetParts() {
		if p.GetType() != "image_url" {
			continue
		}
		if p.GetImageDetail() == "low" {
			n += imageTokensLow
		} else {
			n += imageTokensHigh
		}
	}
	return n
}
