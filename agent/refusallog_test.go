package agent

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// TestRefusalLogOncePerEpisode: while the store refuses writes (a full
// disk), only the first refused request of an episode is logged at error
// level; the episode's end is logged once, with how many were refused.
func TestRefusalLogOncePerEpisode(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var l refusalLog
	full := errors.New("store: disk full: no space left on device")
	l.stored(log) // nothing refused yet: nothing to say
	for range 3 {
		l.refused(log, "observations", full)
	}
	l.refused(log, "labels", full)
	l.stored(log)
	l.stored(log)
	l.refused(log, "labels", full)

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var errs, infos []string
	for _, ln := range lines {
		switch {
		case strings.Contains(ln, "level=ERROR"):
			errs = append(errs, ln)
		case strings.Contains(ln, "level=INFO"):
			infos = append(infos, ln)
		default:
			t.Errorf("unexpected line %q", ln)
		}
	}
	if len(errs) != 2 || !strings.Contains(errs[0], `msg="observations not stored;`) || !strings.Contains(errs[1], `msg="labels not stored;`) ||
		!strings.Contains(errs[0], "no space left on device") {
		t.Errorf("error lines %q; want one per episode, naming what and why", errs)
	}
	if len(infos) != 1 || !strings.Contains(infos[0], "refused_requests=4") {
		t.Errorf("info lines %q; want one end of episode with refused_requests=4", infos)
	}
}
