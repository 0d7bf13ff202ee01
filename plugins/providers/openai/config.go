package main

import (
	"fmt"
	"net/url"
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
}

func defaultConfig() config {
	return config{baseURL: "https://api.openai.com/v1", timeout: 60 * time.Second, maxConcurrency: 64, streamUsage: true}
}

// parseConfig checks every key and returns the problems by field. Numbers
// arrive as float64 (they travel as a protobuf Struct).
func parseConfig(m map[string]any, getenv func(string) (string, bool)) (config, []sdk.FieldError) {
	c := defaultConfig()
	var errs []sdk.FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, sdk.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	str := func(key string) (string, bool) {
		v, ok := m[key]
		if !ok || v == nil {
			return "", false
		}
		s, isStr := v.(string)
		if !isStr {
			bad(key, "must be a string, got %T", v)
			return "", false
		}
		return s, true
	}
	known := map[string]bool{"base_url": true, "api_key": true, "api_key_file": true, "api_key_env": true, "timeout": true, "max_concurrency": true, "headers": true, "stream_usage": true}
	for k := range m {
		if !known[k] {
			bad(k, "unknown key (known: base_url, api_key, api_key_file, api_key_env, timeout, max_concurrency, headers, stream_usage)")
		}
	}
	if s, ok := str("base_url"); ok {
		u, err := url.Parse(s)
		switch {
		case err != nil:
			bad("base_url", "not a URL: %v", err)
		case u.Scheme != "http" && u.Scheme != "https":
			bad("base_url", "%q must start with http:// or https://", s)
		case u.Host == "":
			bad("base_url", "%q has no host", s)
		default:
			c.baseURL = strings.TrimRight(s, "/")
		}
	}
	c.apiKey = upstream.APIKey(str, getenv, bad)
	if s, ok := str("timeout"); ok {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			bad("timeout", "%q is not a positive duration such as 60s", s)
		} else {
			c.timeout = d
		}
	}
	if v, ok := m["max_concurrency"]; ok {
		f, isNum := v.(float64)
		if !isNum || f != float64(int(f)) || f < 1 || f > 100000 {
			bad("max_concurrency", "must be a whole number from 1 to 100000, got %v", v)
		} else {
			c.maxConcurrency = int(f)
		}
	}
	if v, ok := m["stream_usage"]; ok {
		b, isBool := v.(bool)
		if !isBool {
			bad("stream_usage", "must be true or false, got %v", v)
		} else {
			c.streamUsage = b
		}
	}
	if v, ok := m["headers"]; ok && v != nil {
		hm, isMap := v.(map[string]any)
		if !isMap {
			bad("headers", "must be a map of header names to values")
		} else {
			c.headers = map[string]string{}
			for k, hv := range hm {
				s, isStr := hv.(string)
				switch {
				case !isStr:
					bad("headers."+k, "must be a string")
				case strings.EqualFold(k, "Authorization") || strings.EqualFold(k, "Content-Type"):
					bad("headers."+k, "is set by the plugin; use api_key_file for the key")
				case strings.ContainsAny(k, " :\r\n") || strings.ContainsAny(s, "\r\n"):
					bad("headers."+k, "is not a valid header")
				default:
					c.headers[k] = s
				}
			}
		}
	}
	return c, errs
}
