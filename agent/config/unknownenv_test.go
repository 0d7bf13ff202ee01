package config

import (
	"slices"
	"testing"
)

// TestUnknownEnv checks that a VIGIL_* variable naming no setting (a typo,
// otherwise ignored silently) is listed, and that the settings' variables,
// the CLI's and those the configuration names as secret sources are not.
func TestUnknownEnv(t *testing.T) {
	c := Default()
	c.API.Tokens = []Token{{Name: "ops", Scope: ScopeWrite, SecretEnv: "VIGIL_OPS_TOKEN"}}
	environ := []string{
		"PATH=/usr/bin",
		"VIGIL_LOG_LEVEL=debug",
		"VIGIL_API_ADR=0.0.0.0:7070", // typo
		"VIGIL_ALERTS_RULES_LATENCY_P95_WARNING=50",
		"VIGIL_HTTP_ADDR=127.0.0.1:7070",
		"VIGIL_TOKEN_FILE=/etc/vigil/token",
		"VIGIL_CLIENT_CERT=/etc/vigil/cli.pem",
		"VIGIL_CLIENT_KEY=/etc/vigil/cli-key.pem",
		"VIGIL_OPS_TOKEN=0123456789abcdef",
		"VIGIL_TELEMETRY_HOST_MOUNT_POINTS=/", // a list: files only
	}
	got := UnknownEnv(environ, c)
	want := []string{"VIGIL_API_ADR", "VIGIL_TELEMETRY_HOST_MOUNT_POINTS"}
	if !slices.Equal(got, want) {
		t.Errorf("UnknownEnv = %v, want %v", got, want)
	}
}
