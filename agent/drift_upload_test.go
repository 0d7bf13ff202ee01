package agent

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigilml/vigil/agent/observe"
)

// TestUploadRefusesNonFiniteStrings: an uploaded reference sample refuses
// strings that spell a non-finite number ("NaN", "-inf", "1e999"), as
// observations do, naming the item; other strings stay categories.
func TestUploadRefusesNonFiniteStrings(t *testing.T) {
	cfg := observe.DefaultConfig()
	for _, bad := range []string{`[1,"NaN"]`, `["-inf"]`, `[2,3,"1e999"]`} {
		_, err := parseValues("features.x", json.RawMessage(bad), cfg, 100, false)
		if err == nil || !strings.Contains(err.Error(), "features.x[") || !strings.Contains(err.Error(), "must be a finite number") {
			t.Errorf("%s: %v, want an error naming features.x[i]", bad, err)
		}
	}
	vs, err := parseValues("features.x", json.RawMessage(`[1,"DE","nano","Infinite"]`), cfg, 100, false)
	if err != nil || len(vs) != 4 {
		t.Errorf("ordinary strings: %v %v", vs, err)
	}
}

// TestReferenceRangeTimes: from and to of a reference range are RFC 3339
// or Unix milliseconds; a number that looks like Unix seconds is refused
// with a hint instead of being searched as a range in January 1970.
func TestReferenceRangeTimes(t *testing.T) {
	for _, tc := range []struct {
		raw     string
		want    time.Time
		wantErr string
	}{
		{`"2026-11-20T00:00:00Z"`, time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), ""},
		{`1764201600000`, time.UnixMilli(1764201600000), ""},
		{`0`, time.UnixMilli(0), ""},
		{`1764201600`, time.Time{}, "field from: 1764201600 looks like Unix seconds: send Unix milliseconds"},
		{`1764201600.5`, time.Time{}, "looks like Unix seconds"},
		{`-1`, time.Time{}, "want an RFC 3339 time or Unix milliseconds"},
		{`"2026-11-20"`, time.Time{}, "is not an RFC 3339 time"},
		{`null`, time.Time{}, "field from is required"},
	} {
		got, err := parseTime("from", json.RawMessage(tc.raw))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: %v, %v; want an error containing %q", tc.raw, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("%s: %v, %v; want %v", tc.raw, got, err, tc.want)
		}
	}
}

// TestReferenceRangeBothBad: with from and to both wrong, the 400 names
// both on one line (a JSON message, read on a terminal by vigil).
func TestReferenceRangeBothBad(t *testing.T) {
	a, _, _ := newTestAgent(t)
	ts := httptest.NewServer(a.API())
	defer ts.Close()
	resp, err := http.Post(ts.URL+"/v1/models/m/reference", "application/json", strings.NewReader(`{"version":"v1","from":"yesterday","to":1764201600}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error struct{ Message string } `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	m := body.Error.Message
	if resp.StatusCode != 400 || !strings.Contains(m, "field from") || !strings.Contains(m, "field to") || strings.Contains(m, "\n") {
		t.Errorf("%d %q; want 400 naming from and to on one line", resp.StatusCode, m)
	}
}

// TestReferenceUploadErrorMembers: a refused reference upload carries the
// offending field (and, for one value of a list, its index) as members of
// the error, as a refused observation batch does, besides the message.
func TestReferenceUploadErrorMembers(t *testing.T) {
	a, _, _ := newTestAgent(t)
	ts := httptest.NewServer(a.API())
	defer ts.Close()
	idx := func(i int) *int { return &i }
	for _, tc := range []struct {
		body  string
		field string
		index *int
	}{
		{`{"features": {"amount": [1]}}`, "version", nil},
		{`{"version": 7, "features": {"amount": [1]}}`, "version", nil},
		{`{"version": "v1", "features": {"amount": [1, 2, true]}}`, "features.amount", idx(2)},
		{`{"version": "v1", "features": {"amount": [1, "NaN"]}}`, "features.amount", idx(1)},
		{`{"version": "v1", "features": {"amount": 5}}`, "features.amount", nil},
		{`{"version": "v1", "features": {"amount": []}}`, "features.amount", nil},
		{`{"version": "v1", "features": {"": [1]}}`, "features", nil},
		{`{"version": "v1", "prediction": [0, null]}`, "prediction", idx(1)},
		{`{"version": "v1", "prediction": [0, 1], "label": [0]}`, "label", nil},
		{`{"version": "v1", "features": {"a": [1]}, "label": [0]}`, "label", nil},
		{`{"version": "v1", "from": "2026-11-20T00:00:00Z", "to": "2026-11-19T00:00:00Z"}`, "to", nil},
		{`{"version": "v1", "from": "yesterday", "to": 1764201600000}`, "from", nil},
		{`{"version": "v1", "from": "yesterday", "to": 1764201600}`, "from", nil},
	} {
		resp, err := http.Post(ts.URL+"/v1/models/m/reference", "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error map[string]json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatalf("%s: %v in %s", tc.body, err, raw)
		}
		e := body.Error
		var field string
		_ = json.Unmarshal(e["field"], &field)
		if resp.StatusCode != 400 || string(e["code"]) != `"invalid_request"` || field != tc.field || !strings.Contains(string(e["message"]), tc.field) {
			t.Errorf("%s: %d %s; want 400 invalid_request with field %q named in the message too", tc.body, resp.StatusCode, raw, tc.field)
		}
		switch raw, ok := e["index"]; {
		case tc.index == nil && ok:
			t.Errorf("%s: index %s, want none", tc.body, raw)
		case tc.index != nil && string(raw) != strconv.Itoa(*tc.index):
			t.Errorf("%s: index %s, want %d", tc.body, raw, *tc.index)
		}
	}
}

// TestObservationErrorMembers: a refused observation batch names the item
// and the field as members (the shape reference uploads share); an error
// about the whole body has neither.
func TestObservationErrorMembers(t *testing.T) {
	a, _, _ := newTestAgent(t)
	ts := httptest.NewServer(a.API())
	defer ts.Close()
	for _, tc := range []struct {
		body, want string
	}{
		{`[{"model": "m"}, {"model": "m", "features": {"age": "NaN"}}]`, `{"code":"invalid_request","field":"features.age","index":1}`},
		{`{"nope": 1}`, `{"code":"invalid_request"}`},
	} {
		resp, err := http.Post(ts.URL+"/v1/observations", "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error map[string]any `json:"error"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := body.Error["message"].(string); !ok {
			t.Errorf("%s: no message in %v", tc.body, body.Error)
		}
		delete(body.Error, "message")
		got, _ := json.Marshal(body.Error)
		if resp.StatusCode != 400 || string(got) != tc.want {
			t.Errorf("%s: %d %s, want 400 %s", tc.body, resp.StatusCode, got, tc.want)
		}
	}
}
