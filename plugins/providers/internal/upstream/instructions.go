// Package upstream holds what Vigil's own provider plugins (openai,
// anthropic) share beyond the public sdk/providerhttp: the prompt
// instructions for JSON answers and the GOMAXPROCS default of a plugin
// that mostly waits on its upstream. The HTTP plumbing itself (endpoint,
// slots, watchdog, error classes) is sdk/providerhttp, which third-party
// providers use too.
package upstream

// JSONObjectInstruction and SchemaInstruction are appended to the system
// prompt for upstreams that cannot be asked for JSON natively (Anthropic,
// and OpenAI-compatible servers configured with structured_output: prompt
// or json_object). The gateway validates and repairs the answer either way.
const JSONObjectInstruction = "Respond with a single JSON object and nothing else: no prose, no code fences."

// SchemaInstruction asks for a JSON value matching schema (JSON text).
func SchemaInstruction(schema string) string {
	return "Respond with a single JSON value that matches this JSON Schema, and nothing else (no prose, no code fences):\n" + schema
}
