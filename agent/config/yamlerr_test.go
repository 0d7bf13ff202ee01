package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestYAMLSyntaxErrorsNameTheLine checks that a YAML syntax error names
// file and line as file:LINE: (the line once, not again in the message),
// including the cases where yaml.v3 gives no line (a problem on line 1, an
// unknown anchor) or the line of the enclosing block rather than of the
// tab, and that a tab used for indentation gets a hint.
func TestYAMLSyntaxErrorsNameTheLine(t *testing.T) {
	const tabHint = "YAML does not allow tabs for indentation"
	tests := []struct {
		name    string
		body    string
		want    string
		tabHint bool
	}{
		{"tab before a list item", "api:\n\t- bad\n", "tab.yaml:2: invalid YAML: found character that cannot start any token", true},
		{"tab on line 1", "\tlog_level: info\n", "tab.yaml:1: invalid YAML: found character that cannot start any token", true},
		{"tab after spaces in a mapping", "log_level: info\napi:\n  addr: 127.0.0.1:1\n\taccess_log: true\n", "tab.yaml:4: invalid YAML: found a tab character that violates indentation", true},
		{"tab in a list", "telemetry:\n  host:\n    mount_points:\n      - /\n\t    - /data\n", "tab.yaml:5: invalid YAML:", true},
		{"unclosed flow sequence", "api:\n  addr: [\n", "tab.yaml:2: invalid YAML: did not find expected node content", false},
		{"bad character on line 1", "log_level: @info\n", "tab.yaml:1: invalid YAML: found character that cannot start any token", false},
		{"mapping value on line 1", "log_level: info: debug\n", "tab.yaml:1: invalid YAML: mapping values are not allowed in this context", false},
		{"unknown anchor", "log_level: info\n\nnode_name: *nope\n", "tab.yaml:3: invalid YAML: unknown anchor 'nope' referenced", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "tab.yaml", tt.body)
			_, err := Load(Options{Path: p, Env: noEnv})
			if err == nil {
				t.Fatalf("Load succeeded; want %q", tt.want)
			}
			msg := strings.ReplaceAll(err.Error(), filepath.Dir(p)+"/", "")
			if !strings.HasPrefix(msg, tt.want) {
				t.Errorf("error %q; want it to start %q", msg, tt.want)
			}
			if strings.Contains(msg, "line ") {
				t.Errorf("error %q names the line twice", msg)
			}
			if strings.Contains(msg, tabHint) != tt.tabHint {
				t.Errorf("error %q: tab hint shown %v, want %v", msg, !tt.tabHint, tt.tabHint)
			}
		})
	}
}
