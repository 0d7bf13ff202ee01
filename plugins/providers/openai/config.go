package main

import (
	"strings"
	"time"

	"github.com/vigilml/vigil/plugins/providers/internal/upstream"
	"github.com/vigilml/vigil/sdk"
)

// config is the plugin's configuration, handed over by Configure.
type config struct {
	baseURL        string
	apiKey         string
	timeout        time.Duration
	maxConcurrency int
	headers        map[string]string
	streamUsage    bool
	// structured is how json_object and json_schema requests are sent:
	// native (response_format as asked), json_object (JSON mode, the
	// schema in the system prompt) or prompt (no response_format; the
	// instruction and schema in the system prompt).
	structured string
}

func defaultConfig() config {
	return config{baseURL: "https://api.openai.com/v1", timeout: 60 * time.Second, maxConcurrency: 64, streamUsage: true, structured: structuredNative}
}

// The structured_output modes.
const (
	structuredNative     = "native"
	structuredJSONObject = "json_object"
	structuredPrompt     = "prompt"
)

// parseConfig checks every key and returns the problems by field. Numbers
// arrive as float64 (they travel as a protobuf Struct).
func parseConfig(m map[string]any, getenv func(string) (string, bool)) (config, []sdk.FieldError) {
	c := defaultConfig()
	o := upstream.NewOptions(m)
	o.Known("base_url", "api_key", "api_key_file", "api_key_env", "timeout", "max_concurrency", "headers", "stream_usage", "structured_output")
	if s, ok := o.URL("base_url"); ok {
		c.baseURL = strings.TrimRight(s, "/")
	}
	c.apiKey = o.APIKey(getenv)
	if d, ok := o.Duration("timeout"); ok {
		c.timeout = d
	}
	if n, ok := o.Whole("max_concurrency", 1, 100000); ok {
		c.maxConcurrency = n
	}
	if b, ok := o.Bool("stream_usage"); ok {
		c.streamUsage = b
	}
	if v, ok := o.Str("structured_output"); ok {
		switch v {
		case structuredNative, structuredJSONObject, structuredPrompt:
			c.structured = v
		default:
			o.Bad("structured_output", "%q is not native, json_object or prompt", v)
		}
	}
	if h, ok := o.Headers("headers", "is set by the plugin; use api_key_file for the key", "Authorization", "Content-Type"); ok {
		c.headers = h
	}
	return c, o.Errors()
}
