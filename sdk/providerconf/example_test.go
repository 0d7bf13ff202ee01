package providerconf_test

import (
	"fmt"
	"time"

	"github.com/vigilml/vigil/sdk"
	"github.com/vigilml/vigil/sdk/providerconf"
)

// config is what a provider keeps from Configure.
type config struct {
	providerconf.HTTP
	organization string
}

// parseConfig is the body of a provider's Configure: the HTTP settings
// every gateway.providers entry may carry, plus one key of the plugin's
// own.
func parseConfig(m map[string]any) (config, []sdk.FieldError) {
	r := providerconf.New(m)
	r.Known(append(providerconf.HTTPKeys(), "organization")...)
	c := config{HTTP: r.HTTP(providerconf.HTTP{
		BaseURL: "https://api.example.com/v1", Timeout: 60 * time.Second, MaxConcurrency: 64,
	}, "Authorization", "Content-Type")}
	if s, ok := r.String("organization"); ok {
		if s == "" {
			r.Bad("organization", "must not be empty")
		}
		c.organization = s
	}
	return c, r.Errors()
}

func Example() {
	// As a gateway.providers entry arrives: timeout as a Go duration
	// string, max_concurrency as a float64.
	c, errs := parseConfig(map[string]any{
		"base_url": "http://127.0.0.1:8000/v1/", "api_key": "sk-test",
		"timeout": "1m30s", "max_concurrency": float64(8), "organization": "research",
	})
	fmt.Println(c.BaseURL, c.Timeout, c.MaxConcurrency, c.organization, len(errs))

	// Every problem at once, each naming its key.
	_, errs = parseConfig(map[string]any{
		"base_url": "api.example.com", "timeout": "soon", "max_concurrency": 0.5,
		"headers": map[string]any{"Authorization": "Bearer x"}, "organisation": "research",
	})
	for _, e := range errs {
		fmt.Printf("%s: %s\n", e.Field, e.Message)
	}
	// Output:
	// http://127.0.0.1:8000/v1 1m30s 8 research 0
	// organisation: unknown key (known: base_url, api_key, api_key_file, api_key_env, timeout, max_concurrency, headers, organization)
	// base_url: "api.example.com" must start with http:// or https://
	// timeout: "soon" is not a positive duration such as 60s
	// max_concurrency: must be a whole number from 1 to 100000, got 0.5
	// headers.Authorization: is set by the plugin
}
