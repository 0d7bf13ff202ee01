package version

import "testing"

// Plugin turns what the Makefile links in (git describe, or its fallback)
// into the semantic version a plugin's Info must carry.
func TestPlugin(t *testing.T) {
	defer func(v string) { Version = v }(Version)
	for _, tc := range []struct{ linked, want string }{
		{"v0.2.0", "0.2.0"},
		{"v0.2.0-3-gabc1234", "0.2.0-3-gabc1234"},
		{"v0.2.0-3-gabc1234-dirty", "0.2.0-3-gabc1234-dirty"},
		{"0.1.0-dev", "0.1.0-dev"},
		{"v0.0.0-20261127233105-bb26c7185be8", "0.0.0-20261127233105-bb26c7185be8"},
		{"v0.0.0-20261127233105-bb26c7185be8+dirty", "0.0.0-20261127233105-bb26c7185be8+dirty"},
		{"abc1234", "0.0.0-dev"}, // git describe --always of an untagged tree
		{"v1.2", "0.0.0-dev"},    // not three numbers
		{"1.2.3-", "0.0.0-dev"},  // empty pre-release
	} {
		Version = tc.linked
		if got := Plugin(); got != tc.want {
			t.Errorf("linked %q: Plugin() = %q, want %q", tc.linked, got, tc.want)
		}
	}
}
