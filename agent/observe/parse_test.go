package observe

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func TestParseRejects(t *testing.T) {
	longName := strings.Repeat("n", 129)
	longString := strings.Repeat("s", 1025)
	var manyFeatures strings.Builder
	for i := range 257 {
		if i > 0 {
			manyFeatures.WriteByte(',')
		}
		fmt.Fprintf(&manyFeatures, `"f%d":1`, i)
	}
	ok := `{"model":"m"}`
	cases := []struct {
		name   string
		body   string
		ndjson bool
		index  int
		field  string
		msg    string // substring of the message
	}{
		{"missing model", `[` + ok + `,{"version":"v"}]`, false, 1, "model", "is required"},
		{"model null", `[{"model":null}]`, false, 0, "model", "must be a string, got null"},
		{"model number", `[{"model":3}]`, false, 0, "model", "must be a string, got a number"},
		{"model empty", `[{"model":""}]`, false, 0, "model", "must not be empty"},
		{"model too long", `[{"model":"` + longName + `"}]`, false, 0, "model", "observe.max_name_bytes"},
		{"model control char", `[{"model":"a\nb"}]`, false, 0, "model", "control characters"},
		{"NaN literal feature", `[` + ok + `,` + ok + `,` + ok + `,{"model":"m","features":{"age":NaN}}]`, false, 3, "features.age", "must be a finite number, got NaN"},
		{"Infinity literal latency", `[{"model":"m","latency_ms":Infinity}]`, false, 0, "latency_ms", "finite"},
		{"-Infinity literal prediction", `[{"model":"m","prediction":-Infinity}]`, false, 0, "prediction", "finite"},
		{"1e999 feature", `[{"model":"m","features":{"x":1e999}}]`, false, 0, "features.x", "got 1e999"},
		{"-1e999 latency", `[{"model":"m","latency_ms":-1e999}]`, false, 0, "latency_ms", "finite"},
		{"NaN string feature", `[{"model":"m","features":{"x":"NaN"}}]`, false, 0, "features.x", `"NaN"`},
		{"inf string label", `[{"model":"m","label":"-inf"}]`, false, 0, "label", "finite"},
		{"Infinity string latency", `[{"model":"m","latency_ms":"Infinity"}]`, false, 0, "latency_ms", "finite"},
		{"1e999 string feature", `[{"model":"m","features":{"x":"1e999"}}]`, false, 0, "features.x", "finite"},
		{"latency string", `[{"model":"m","latency_ms":"12"}]`, false, 0, "latency_ms", "must be a number, got a string"},
		{"negative latency", `[{"model":"m","latency_ms":-1}]`, false, 0, "latency_ms", "must not be negative"},
		{"status too big", `[{"model":"m","status":600}]`, false, 0, "status", "100 to 599"},
		{"status fraction", `[{"model":"m","status":200.5}]`, false, 0, "status", "integer"},
		{"error not bool", `[{"model":"m","error":1}]`, false, 0, "error", "true or false"},
		{"too many features", `[{"model":"m","features":{` + manyFeatures.String() + `}}]`, false, 0, "features", "observe.max_features (256)"},
		{"feature string too long", `[{"model":"m","features":{"x":"` + longString + `"}}]`, false, 0, "features.x", "observe.max_string_bytes"},
		{"feature name too long", `[{"model":"m","features":{"` + longName + `":1}}]`, false, 0, "features." + longName, "observe.max_name_bytes"},
		{"feature name empty", `[{"model":"m","features":{"":1}}]`, false, 0, "features.", "must not be empty"},
		{"duplicate feature", `[{"model":"m","features":{"x":1,"x":2}}]`, false, 0, "features.x", "appears twice"},
		{"feature object", `[{"model":"m","features":{"x":{"y":1}}}]`, false, 0, "features.x", "got an object"},
		{"feature array", `[{"model":"m","features":{"x":[1]}}]`, false, 0, "features.x", "got an array"},
		{"feature bool", `[{"model":"m","features":{"x":true}}]`, false, 0, "features.x", "got a boolean"},
		{"feature null", `[{"model":"m","features":{"x":null}}]`, false, 0, "features.x", "got null"},
		{"features array", `[{"model":"m","features":[1,2]}]`, false, 0, "features", "must be an object"},
		{"prediction object", `[{"model":"m","prediction":{}}]`, false, 0, "prediction", "got an object"},
		{"request_id too long", `[{"model":"m","request_id":"` + longString + `"}]`, false, 0, "request_id", "observe.max_string_bytes"},
		{"request_id number", `[{"model":"m","request_id":7}]`, false, 0, "request_id", "must be a string"},
		{"unknown field", `[{"model":"m","latency":3}]`, false, 0, "latency", "unknown field"},
		{"duplicate field", `[{"model":"m","model":"n"}]`, false, 0, "model", "appears twice"},
		{"timestamp seconds", `[{"model":"m","timestamp":1732665600}]`, false, 0, "timestamp", "Unix seconds"},
		{"timestamp future", `[{"model":"m","timestamp":"2026-11-27T12:10:00Z"}]`, false, 0, "timestamp", "max_future_skew"},
		{"timestamp old", `[{"model":"m","timestamp":"2026-11-25T12:00:00Z"}]`, false, 0, "timestamp", "older than observe.retention"},
		{"timestamp text", `[{"model":"m","timestamp":"yesterday"}]`, false, 0, "timestamp", "RFC 3339"},
		{"timestamp bool", `[{"model":"m","timestamp":true}]`, false, 0, "timestamp", "got a boolean"},
		{"timestamp huge", `[{"model":"m","timestamp":1e300}]`, false, 0, "timestamp", "not a plausible"},
		{"bad string escape", `[` + ok + `,{"model":"a\qb"}]`, false, 1, "model", "bad escape"},
		{"invalid UTF-8", "[{\"model\":\"a\xffb\"}]", false, 0, "model", "UTF-8"},
		{"syntax in item", `[` + ok + `,{"model":"m",}]`, false, 1, "", "invalid JSON"},
		{"missing comma", `[` + ok + ` ` + ok + `]`, false, 0, "", "',' or ']'"},
		{"item not object", `[` + ok + `,3]`, false, 1, "", "'{'"},
		{"ndjson second line", ok + "\n\n" + `{"model":"m","features":{"a":NaN}}` + "\n", true, 1, "features.a", "finite"},
		{"ndjson two objects on a line", ok + ok + "\n", true, 0, "", "one JSON object per line"},
		{"wrapper wrong key", `{"items":[]}`, false, -1, "", `unknown field "items"`},
		{"wrapper not array", `{"observations":{}}`, false, -1, "observations", "must be an array"},
		{"latency beyond the sketch", `[{"model":"m","latency_ms":1.7e308}]`, false, 0, "latency_ms", "must be at most 1e+09"},
		{"latency above a billion ms", `[{"model":"m","latency_ms":1000000000.5}]`, false, 0, "latency_ms", "must be at most"},
		{"wrapper empty", `{}`, false, -1, "observations", "is required"},
		{"wrapper unknown second key", `{"observations":[` + ok + `],"extra":1}`, false, -1, "", `unknown field "extra"`},
		{"wrapper key twice", `{"observations":[],"observations":[]}`, false, -1, "observations", "appears twice"},
		{"wrapper trailing comma", `{"observations":[],}`, false, -1, "", "invalid JSON at byte 18"},
		{"empty body", ``, false, -1, "", "empty"},
		{"trailing garbage", `[` + ok + `] x`, false, -1, "", "end of the body"},
		{"leading zero", `[{"model":"m","latency_ms":01}]`, false, 0, "", "invalid JSON at byte 28"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obs, err := ParseObservations([]byte(c.body), c.ndjson, DefaultConfig(), testNow)
			if err == nil {
				t.Fatalf("accepted: %+v", obs)
			}
			var ie *ItemError
			if !errors.As(err, &ie) {
				t.Fatalf("error %T %v is not an *ItemError", err, err)
			}
			if ie.Index != c.index || ie.Field != c.field {
				t.Errorf("index %d field %q, want %d %q (%v)", ie.Index, ie.Field, c.index, c.field, err)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("message %q does not contain %q", err, c.msg)
			}
			if c.index >= 0 {
				prefix := fmt.Sprintf("observations[%d]", c.index)
				if c.field != "" {
					prefix += "." + c.field + ": "
				}
				if !strings.HasPrefix(err.Error(), prefix) {
					t.Errorf("message %q does not start with %q", err, prefix)
				}
			}
		})
	}
}

func TestParseTooManyItems(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxBatchItems = 3
	body := `[{"model":"m"},{"model":"m"},{"model":"m"},{"model":"m"}]`
	_, err := ParseObservations([]byte(body), false, cfg, testNow)
	if err == nil || !strings.Contains(err.Error(), "observe.max_batch_items (3)") {
		t.Fatalf("got %v", err)
	}
	nd := strings.ReplaceAll(strings.Trim(body, "[]"), "},{", "}\n{")
	_, err = ParseObservations([]byte(nd), true, cfg, testNow)
	if err == nil || !strings.Contains(err.Error(), "observe.max_batch_items (3)") {
		t.Fatalf("ndjson: got %v", err)
	}
}

func TestParseAccepts(t *testing.T) {
	body := `{"observations": [
	  {"model": "fraud", "version": "v2", "timestamp": "2026-11-27T11:59:00.5Z", "latency_ms": 12.25,
	   "status": 503, "features": {"age": 41, "country": "DE", "score": -0.5e-3, "esc": "a\u00e9\"\ud83d\ude00"},
	   "prediction": "fraud", "request_id": "r-1", "label": "ok"},
	  {"model": "fraud", "timestamp": 1795780740000, "status": 404, "prediction": 1, "version": null, "label": null},
	  {"model": "fraud", "error": true, "features": null},
	  {"model": "fraud", "error": false, "status": 200, "latency_ms": 1e9}
	]}`
	obs, err := ParseObservations([]byte(body), false, DefaultConfig(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(obs) != 4 {
		t.Fatalf("%d observations", len(obs))
	}
	o := obs[0]
	if o.Model != "fraud" || o.Version != "v2" || o.UnixMs != time.Date(2026, 11, 27, 11, 59, 0, 5e8, time.UTC).UnixMilli() ||
		!o.HasLatency || o.LatencyMs != 12.25 || o.Status != 503 || !o.Error || o.RequestID != "r-1" ||
		o.Prediction != Str("fraud") || o.Label != Str("ok") {
		t.Errorf("first: %+v", o)
	}
	want := []Feature{{"age", Num(41)}, {"country", Str("DE")}, {"score", Num(-0.5e-3)}, {"esc", Str("aé\"😀")}}
	if fmt.Sprint(o.Features) != fmt.Sprint(want) {
		t.Errorf("features %v, want %v", o.Features, want)
	}
	o = obs[1]
	if o.Version != DefaultVersion || o.UnixMs != 1795780740000 || o.Status != 404 || o.Error || o.Prediction != Num(1) || !o.Label.IsNone() || o.HasLatency {
		t.Errorf("second (4xx is not an error, null version defaults): %+v", o)
	}
	if !obs[2].Error || obs[2].UnixMs != testNow.UnixMilli() || obs[2].Features != nil {
		t.Errorf("third (error true, timestamp defaults to now): %+v", obs[2])
	}
	if obs[3].Error || obs[3].LatencyMs != MaxLatencyMs {
		t.Errorf("fourth: status 200 and error false is not an error; latency_ms may be 1e9: %+v", obs[3])
	}
	// The same as NDJSON and as a bare array.
	nd := "{\"model\":\"a\",\"latency_ms\":1}\r\n\n  {\"model\":\"b\"}"
	obs, err = ParseObservations([]byte(nd), true, DefaultConfig(), testNow)
	if err != nil || len(obs) != 2 || obs[1].Model != "b" {
		t.Fatalf("ndjson: %v %+v", err, obs)
	}
	obs, err = ParseObservations([]byte(` [ ] `), false, DefaultConfig(), testNow)
	if err != nil || len(obs) != 0 {
		t.Fatalf("empty array: %v %+v", err, obs)
	}
}

// fastFloat must agree exactly with strconv.ParseFloat wherever it answers.
func TestFastFloatMatchesParseFloat(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	check := func(s string) {
		want, err := strconv.ParseFloat(s, 64)
		got, ok := fastFloat([]byte(s))
		if !ok {
			return
		}
		if err != nil || math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("%s: fast %v, ParseFloat %v (%v)", s, got, want, err)
		}
	}
	for _, s := range []string{"0", "-0", "1", "0.1", "0.3", "123456789012345", "-99.999", "0.000001", "1.7976931348623157", "9007199254740993"} {
		check(s)
	}
	for range 200_000 {
		digits := r.IntN(16) + 1
		s := strconv.FormatUint(r.Uint64N(uint64(math.Pow10(min(digits, 15)))), 10)
		if p := r.IntN(len(s) + 1); p < len(s) {
			s = s[:p] + "." + s[p:]
			if s[0] == '.' {
				s = "0" + s
			}
		}
		if r.IntN(2) == 0 {
			s = "-" + s
		}
		check(s)
	}
}

func TestParseLabels(t *testing.T) {
	labels, err := ParseLabels([]byte(`{"labels":[{"request_id":"a","label":1},{"label":"x","request_id":"b"}]}`), false, DefaultConfig())
	if err != nil || len(labels) != 2 || labels[0] != (Label{"a", Num(1)}) || labels[1] != (Label{"b", Str("x")}) {
		t.Fatalf("%v %+v", err, labels)
	}
	for _, c := range []struct{ body, want string }{
		{`[{"request_id":"a","label":1},{"label":1}]`, "labels[1].request_id: is required"},
		{`[{"request_id":"a"}]`, "labels[0].label: is required"},
		{`[{"request_id":"a","label":null}]`, "labels[0].label: must be a number or a string, got null"},
		{`[{"request_id":"a","label":NaN}]`, "labels[0].label: must be a finite number"},
		{`[{"request_id":"","label":1}]`, "labels[0].request_id: must be 1 to 1024 bytes"},
		{`[{"request_id":"a","label":1,"extra":2}]`, "labels[0].extra: unknown field"},
		{`{"observations":[]}`, `unknown field "observations"`},
	} {
		if _, err := ParseLabels([]byte(c.body), false, DefaultConfig()); err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.body, err, c.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero config must be valid (defaults): %v", err)
	}
	bad := Config{Retention: time.Hour, MaxBytes: 100, MaxFutureSkew: 2 * time.Hour, MaxFeatures: -1, MaxModels: 1 << 30}
	err := bad.Validate()
	for _, key := range []string{"observe.retention", "observe.max_bytes", "observe.max_future_skew", "observe.max_features", "observe.max_models"} {
		if err == nil || !strings.Contains(err.Error(), key+":") {
			t.Errorf("error %v does not name %s", err, key)
		}
	}
}

func TestParseFeatureOrderVaries(t *testing.T) {
	body := `[{"model":"m","features":{"a":1,"b":2}},{"model":"m","features":{"b":3,"a":4}},{"model":"m","features":{"a":5,"c":"x","d":6}},{"model":"m"},{"model":"m","features":{"a":7}}]`
	obs, err := ParseObservations([]byte(body), false, DefaultConfig(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(obs[0].Features, obs[1].Features, obs[2].Features, obs[3].Features, obs[4].Features)
	want := "[{a 1} {b 2}] [{b 3} {a 4}] [{a 5} {c x} {d 6}] [] [{a 7}]"
	if got != want {
		t.Errorf("features\n%s\nwant\n%s", got, want)
	}
	if _, err := ParseObservations([]byte(`[{"model":"m","features":{"a":1,"b":2}},{"model":"m","features":{"b":1,"b":2}}]`), false, DefaultConfig(), testNow); err == nil || !strings.HasPrefix(err.Error(), "observations[1].features.b: appears twice") {
		t.Errorf("duplicate after a cached name: %v", err)
	}
	// A shorter item between two longer ones must not let a duplicate by.
	for _, body := range []string{
		`[{"model":"m","features":{"a":1,"b":2,"c":3}},{"model":"m","features":{"c":1}},{"model":"m","features":{"c":1,"b":2,"c":3}}]`,
		`[{"model":"m","features":{"a":1,"b":2}},{"model":"m","features":{}},{"model":"m","features":{"a":1,"a":2}}]`,
		`[{"model":"m","features":{"a":1,"b":2}},{"model":"m","features":{"a":1,"b":2,"a":3}}]`,
	} {
		if _, err := ParseObservations([]byte(body), false, DefaultConfig(), testNow); err == nil || !strings.Contains(err.Error(), "appears twice") {
			t.Errorf("%s: got %v, want a duplicate", body, err)
		}
	}
}
