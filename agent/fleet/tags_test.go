package fleet

import (
	"bytes"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"
)

func TestTagsRoundTrip(t *testing.T) {
	g, p, e, d, a := 0.87, 123.45, 0.0123, 2, 1
	s := Summary{
		Models: []Model{{Name: "llama", Version: "3.1"}, {Name: "bert", Version: "v2"}, {Name: "raw"}},
		Health: Health{GPUUtil: &g, WorstP95Ms: &p, WorstErrorRate: &e, Drifting: &d, Alerts: &a},
	}
	tags, size := BuildTags("inference", "1.0.0", s)
	if size > MaxTagBytes || size != encodedSize(tags) {
		t.Fatalf("size %d (encoded %d)", size, encodedSize(tags))
	}
	got := DecodeTags(tags)
	if got.Role != "inference" || got.Version != "1.0.0" || got.ModelsOmitted != 0 {
		t.Fatalf("decoded %+v", got)
	}
	want := []Model{{"bert", "v2"}, {"llama", "3.1"}, {"raw", ""}}
	if fmt.Sprint(got.Models) != fmt.Sprint(want) {
		t.Errorf("models %v, want %v (sorted)", got.Models, want)
	}
	h := got.Health
	if *h.GPUUtil != 0.87 || *h.WorstP95Ms != 123.5 || *h.WorstErrorRate != 0.0123 || *h.Drifting != 2 || *h.Alerts != 1 {
		t.Errorf("health %s", formatHealth(h))
	}
	// Unknown health fields stay unknown.
	tags, _ = BuildTags("", "1", Summary{})
	if dh := DecodeTags(tags).Health; dh.GPUUtil != nil || dh.Alerts != nil {
		t.Errorf("empty health decoded as %+v", dh)
	}
	// Separators in names cannot break the encoding.
	tags, _ = BuildTags("", "1", Summary{Models: []Model{{Name: "a,b@c", Version: "+1;"}}})
	if m := DecodeTags(tags).Models; len(m) != 1 || m[0].Name != "a_b_c" || m[0].Version != "_1_" {
		t.Errorf("sanitized models = %+v", m)
	}
}

// TestTagsManyModels checks serf's 512-byte limit with more models than fit:
// the list is cut, the cut is recorded, and the rest of the tags survive.
func TestTagsManyModels(t *testing.T) {
	g := 0.5
	for _, n := range []int{10, 40, 200, 5000} {
		var models []Model
		for i := range n {
			models = append(models, Model{Name: fmt.Sprintf("model-%04d", i), Version: fmt.Sprintf("v%d", i%7)})
		}
		tags, size := BuildTags("inference", "1.0.0-rc.1", Summary{Models: models, Health: Health{GPUUtil: &g}})
		if size > MaxTagBytes || encodedSize(tags) > MaxTagBytes {
			t.Fatalf("%d models: %d bytes > %d", n, size, MaxTagBytes)
		}
		got := DecodeTags(tags)
		if len(got.Models)+got.ModelsOmitted != n {
			t.Errorf("%d models: %d kept + %d omitted", n, len(got.Models), got.ModelsOmitted)
		}
		if got.Health.GPUUtil == nil || got.Role != "inference" {
			t.Errorf("%d models: health or role lost: %+v", n, got)
		}
		if n >= 40 && (got.ModelsOmitted == 0 || size < MaxTagBytes-20) {
			t.Errorf("%d models: kept %d, %d bytes: the list should have been cut near the limit", n, len(got.Models), size)
		}
	}
	// One huge model name cannot push the tags over the limit either.
	tags, size := BuildTags("r", "1", Summary{Models: []Model{{Name: strings.Repeat("x", 2000)}}})
	if size > MaxTagBytes || DecodeTags(tags).ModelsOmitted != 1 {
		t.Errorf("huge name: %d bytes, %+v", size, DecodeTags(tags))
	}
}

func TestCheckHealth(t *testing.T) {
	nan, inf, neg := math.NaN(), math.Inf(1), -1.0
	for _, h := range []Health{{GPUUtil: &nan}, {WorstP95Ms: &inf}, {WorstErrorRate: &neg}} {
		if err := checkHealth(h); err == nil {
			t.Errorf("%+v accepted", h)
		}
	}
	ok := 0.1
	if err := checkHealth(Health{GPUUtil: &ok}); err != nil {
		t.Error(err)
	}
}

func TestParseLogLine(t *testing.T) {
	cases := []struct {
		in    string
		level slog.Level
		comp  string
		msg   string
	}{
		{"[DEBUG] memberlist: Stream connection from=1.2.3.4", slog.LevelDebug, "memberlist", "Stream connection from=1.2.3.4"},
		{"[WARN] serf: Shutdown without a Leave", slog.LevelWarn, "serf", "Shutdown without a Leave"},
		{"[ERR] memberlist: failed to receive", slog.LevelError, "memberlist", "failed to receive"},
		{"[INFO] serf: EventMemberJoin: a 127.0.0.1", slog.LevelInfo, "serf", "EventMemberJoin: a 127.0.0.1"},
		{"no prefix at all", slog.LevelInfo, "", "no prefix at all"},
		// serf's routine noise, lowered to debug.
		{"[WARN] serf: reply for non-running query (LTime: 7, ID: 42) From: n2", slog.LevelDebug, "serf", "reply for non-running query (LTime: 7, ID: 42) From: n2"},
		{"[INFO] serf: Received list-keys query", slog.LevelDebug, "serf", "Received list-keys query"},
		// Their neighbours keep their level.
		{"[WARN] serf: query reply ID mismatch (Local: 1, Response: 2)", slog.LevelWarn, "serf", "query reply ID mismatch (Local: 1, Response: 2)"},
		{"[INFO] serf: Received install-key query", slog.LevelInfo, "serf", "Received install-key query"},
	}
	for _, c := range cases {
		level, comp, msg := parseLine(c.in)
		if level != c.level || comp != c.comp || msg != c.msg {
			t.Errorf("parseLine(%q) = %v %q %q", c.in, level, comp, msg)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := DevConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(*Config){
		"gossip.bind":               func(c *Config) { c.Bind = "nohost" },
		"gossip.advertise":          func(c *Config) { c.Advertise = "0.0.0.0:7946" },
		"gossip.encrypt_key":        func(c *Config) { c.EncryptKey = "c2hvcnQ=" },
		"gossip.retry_interval":     func(c *Config) { c.RetryInterval = 0 },
		"gossip.retry_max_interval": func(c *Config) { c.RetryMaxInterval = time.Millisecond },
		"gossip.profile":            func(c *Config) { c.Profile = "wan" },
		"gossip.role":               func(c *Config) { c.Role = "a,b" },
		"gossip.join[0]":            func(c *Config) { c.Join = []string{""} },
		"gossip.query_timeout":      func(c *Config) { c.QueryTimeout = 0 },
	}
	for key, mod := range cases {
		c := DefaultConfig()
		mod(&c)
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), key+": ") {
			t.Errorf("%s: got %v", key, err)
		}
	}
	if _, err := DecodeKey("not base64"); err == nil {
		t.Error("bad base64 accepted")
	}
}

// TestLogBridgeQuietLines: serf's "reply for non-running query" (WARN) and
// "Received list-keys query" (INFO), logged on every node, reach the
// agent's log at debug only, as the rest of the bridge's lines keep theirs.
func TestLogBridgeQuietLines(t *testing.T) {
	var out bytes.Buffer
	std := newStdLogger(&logBridge{logger: slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	std.Print("[WARN] serf: reply for non-running query (LTime: 7, ID: 42) From: n2")
	std.Print("[INFO] serf: Received list-keys query")
	std.Print("[INFO] serf: Received install-key query")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{
		`level=DEBUG msg="reply for non-running query`,
		`level=DEBUG msg="Received list-keys query"`,
		`level=INFO msg="Received install-key query"`,
	}
	if len(lines) != len(want) {
		t.Fatalf("logged %d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d = %q, want %q", i, lines[i], w)
		}
	}
}
