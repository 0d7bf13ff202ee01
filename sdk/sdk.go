// Package sdk is what a Vigil plugin author imports. A plugin is a separate
// program that the Vigil agent starts and talks to over gRPC through
// github.com/hashicorp/go-plugin; this package hides that plumbing.
//
// A plugin is one of three kinds: a drift Detector, an LLM Provider or a
// VectorStore. Implement the kind's interface and hand it to the matching
// Serve function from main:
//
//	func main() {
//		sdk.ServeDetector(sdk.Info{Name: "ks", Version: "1.0.0"}, &myDetector{})
//	}
//
// The contract is defined in protobuf under sdk/proto/vigil/plugin/v1 and
// versioned: contract version 1 only ever grows (new fields, RPCs and enum
// values); a breaking change would be version 2, served side by side through
// go-plugin's VersionedPlugins. Request and response messages are the
// generated protobuf types, so the Go interfaces and the wire never drift
// apart.
//
// Errors: return an *Error with a Class (InvalidRequest, RateLimited, ...)
// so the agent can act on it: retry, fall back or give up. A handler's
// error that is (or wraps) context.DeadlineExceeded or context.Canceled,
// such as an HTTP client's once the call's ctx has ended, reaches the agent
// as class timeout; any other error as class internal. A panic in a
// handler is caught and returned as class internal; the plugin keeps
// serving.
//
// Settings: package sdk/providerconf reads the map a Configurer gets.
// Testing: package sdk/conformance runs a built plugin as the agent does
// and checks the contract (also as "vigil plugins check"). Complete
// examples: sdk/examples/meanshift (a detector) and sdk/examples/openaicompat
// (an LLM provider in front of an OpenAI-compatible HTTP API).
//
// Logging: write to standard error (log/slog's default handler does).
// go-plugin forwards each line into the agent's log under the plugin's name.
// Standard output belongs to the go-plugin handshake: never print to it.
package sdk

import (
	"github.com/hashicorp/go-plugin"
)

// ContractVersion is the version of the plugin contract this SDK speaks. It
// is the go-plugin protocol version of the plugin set.
const ContractVersion = 1

// Handshake is the go-plugin handshake shared by the agent and every
// plugin. It is not a security measure (the agent checks a plugin's SHA-256
// for that); it keeps a plugin binary from being run by mistake as a
// normal program.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ContractVersion,
	MagicCookieKey:   "VIGIL_PLUGIN",
	MagicCookieValue: "7c1b0e8e-vigil-plugin-contract",
}

// Kind is a kind of plugin.
type Kind string

// The plugin kinds. They are also the names under which go-plugin
// dispenses each kind.
const (
	KindDetector    Kind = "detector"
	KindProvider    Kind = "provider"
	KindVectorStore Kind = "vectorstore"
)

// Kinds lists every kind, in a fixed order.
var Kinds = []Kind{KindDetector, KindProvider, KindVectorStore}

// Info describes a plugin. Serve fills in the kind and contract version.
type Info struct {
	// Name is the plugin's own name, such as "ks" or "openai": 1 to 63 of
	// a-z, 0-9, '.', '_' and '-', starting with a letter or digit (the
	// agent refuses to register any other).
	Name string
	// Version is the plugin's release, a semantic version such as "1.2.3"
	// (the conformance kit's info check fails on anything else).
	Version string
	// Capabilities are optional features, named per kind in docs/plugins.md;
	// a provider's are among ProviderCapabilities (the conformance kit's info
	// check fails on any other name: a misspelt one is never looked at).
	Capabilities []string
}

// ProviderCapabilities are the capability names a provider may declare in
// this version of the contract (docs/plugins.md, "Capabilities"). Detectors
// and vector stores have none defined; what they declare is shown, not
// used.
var ProviderCapabilities = []string{
	"chat", "stream", "embeddings", "count_tokens",
	"images", "files", "tools", "logprobs", "penalties", "reasoning_effort", "openai_params",
}

// FieldError is one problem with a plugin's configuration.
type FieldError struct {
	Field   string
	Message string
}

// Configurer is implemented by plugins that take configuration. The agent
// calls Configure once after start (and again after a restart) with the
// plugin's section of the agent's config file (plugins.config.<name>, or
// for a provider run by the LLM gateway its gateway.providers entry: see
// docs/plugins.md, "Settings a provider instance receives"). Values are
// JSON's: string, float64 (every number), bool, nil, []any and
// map[string]any. Return every problem, each naming its key in Field (an
// empty Field is the configuration as a whole); an empty result accepts
// the configuration. A plugin that does not implement Configurer accepts
// only an empty configuration. Package sdk/providerconf reads the map with
// typed getters that name the key in each problem, and reads the settings
// of a gateway.providers entry (base_url, api_key, timeout, ...) in one
// call.
type Configurer interface {
	Configure(config map[string]any) []FieldError
}
