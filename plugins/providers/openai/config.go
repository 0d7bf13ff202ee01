package main

import (
	"time"

	"github.com/vigilml/vigil/sdk"
	"github.com/vigilml/vigil/sdk/providerconf"
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
	r := providerconf.New(m)
	r.LookupEnv = getenv
	r.Known(append(providerconf.HTTPKeys(), "stream_usage", "structured_output")...)
	h := r.HTTP(providerconf.HTTP{BaseURL: c.baseURL, Timeout: c.timeout, MaxConcurrency: c.maxConcurrency}, "Authorization", "Content-Type")
	c.baseURL, c.apiKey, c.timeout, c.maxConcurrency, c.headers = h.BaseURL, h.APIKey, h.Timeout, h.MaxConcurrency, h.Headers
	if b, ok := r.Bool("stream_usage"); ok {
		c.streamUsage = b
	}
	if v, ok := r.String("structured_output"); ok {
		switch v {
		case structuredNative, structuredJSONObject, structuredPrompt:
			c.structured = v
		default:
			r.Bad("structured_output", "%q is not native, json_object or prompt", v)
		}
	}
	return c, r.Errors()
}
