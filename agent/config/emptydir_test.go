package config

import (
	"strings"
	"testing"
)

// TestEmptyDirectoryNamesBothExtensions: a directory without configuration
// files is an error that names both extensions the loader reads (it said
// only *.yaml, though *.yml files are read too).
func TestEmptyDirectoryNamesBothExtensions(t *testing.T) {
	_, err := Load(Options{Path: t.TempDir(), Env: noEnv})
	if err == nil || !strings.Contains(err.Error(), "*.yaml or *.yml") {
		t.Errorf("empty directory: error = %v; want one naming *.yaml or *.yml", err)
	}
}
