package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"
)

// TestJSONDurationsReadable checks that a duration logged in JSON reads as
// the text handler and the configuration write it ("1.5s"), not as a bare
// count of nanoseconds.
func TestJSONDurationsReadable(t *testing.T) {
	var buf bytes.Buffer
	New(&buf, "json", new(slog.LevelVar)).Info("x", "after", 1500*time.Millisecond,
		slog.Group("g", "took", 2*time.Minute))
	var line struct {
		After string `json:"after"`
		G     struct {
			Took string `json:"took"`
		} `json:"g"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if line.After != "1.5s" || line.G.Took != "2m0s" {
		t.Errorf("durations logged as %q and %q, want 1.5s and 2m0s: %s", line.After, line.G.Took, buf.String())
	}
}
