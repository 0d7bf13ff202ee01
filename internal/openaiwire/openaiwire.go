// Package openaiwire holds the pieces of OpenAI's Chat Completions wire
// format that both sides of Vigil's gateway speak: the agent's gateway
// reads them from clients and writes them in answers, and the openai
// provider plugin writes them to upstreams and reads their answers. One
// declaration keeps the two in step. The field names and JSON tags are
// OpenAI's (https://platform.openai.com/docs/api-reference/chat).
package openaiwire

// ToolCall is one function call of an assistant message, in a request's
// history or in an answer.
type ToolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function FunctionCall `json:"function"`
}

// FunctionCall is a tool call's function: its name and its arguments, a
// JSON text as the model wrote it.
type FunctionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// TokenLogprob is the log probability of one output token, with the most
// likely alternatives at its position when top_logprobs was asked for.
type TokenLogprob struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
	// Bytes are the token's UTF-8 bytes as integers; null when the
	// upstream gives none.
	Bytes       []int        `json:"bytes"`
	TopLogprobs []TopLogprob `json:"top_logprobs"`
}

// TopLogprob is one alternative token at a position.
type TopLogprob struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

// ContentPart is one part of a message's content: {"type": "text",
// "text"}, {"type": "image_url", "image_url": {"url", "detail"}} or
// {"type": "file", "file": {"file_data", "filename"}}.
type ContentPart struct {
	Type     string    `json:"type"`
	Text     *string   `json:"text,omitempty"`
	ImageURL *ImageURL `json:"image_url,omitempty"`
	File     *File     `json:"file,omitempty"`
}

// File is a file part's file ({"type": "file", "file": {...}}): inline as
// a data: URL (file_data, with its filename), or an uploaded file's id.
type File struct {
	FileData string `json:"file_data,omitempty"`
	FileID   string `json:"file_id,omitempty"`
	Filename string `json:"filename,omitempty"`
}

// ImageURL is an image part's image: an http(s) URL or a base64 data:
// URL, and OpenAI's detail (auto, low, high), empty when not given.
type ImageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitempty"`
}

// TextOrEmpty is a text part's text ("" when it has none).
func (p ContentPart) TextOrEmpty() string {
	if p.Text == nil {
		return ""
	}
	return *p.Text
}
