package fleet

import (
	"context"
	"log"
	"log/slog"
	"strings"
)

// logBridge turns serf's and memberlist's std-library log lines
// ("[WARN] memberlist: ...") into slog records at the matching level.
type logBridge struct {
	logger *slog.Logger
	// onLine, when set, sees every line (the fleet watches for decryption
	// failures and name conflicts) and returns the level to log it at.
	onLine func(level slog.Level, msg string) slog.Level
}

// newStdLogger returns a *log.Logger that writes through b.
func newStdLogger(b *logBridge) *log.Logger { return log.New(b, "", 0) }

var levelPrefixes = []struct {
	prefix string
	level  slog.Level
}{
	{"[TRACE]", slog.LevelDebug - 4},
	{"[DEBUG]", slog.LevelDebug},
	{"[INFO]", slog.LevelInfo},
	{"[WARN]", slog.LevelWarn},
	{"[ERR]", slog.LevelError},
	{"[ERROR]", slog.LevelError},
}

// parseLine splits one log line into its level and message. A line without
// a known prefix is logged at info.
func parseLine(line string) (slog.Level, string, string) {
	line = strings.TrimSpace(line)
	level := slog.LevelInfo
	for _, p := range levelPrefixes {
		if rest, ok := strings.CutPrefix(line, p.prefix); ok {
			level, line = p.level, strings.TrimSpace(rest)
			break
		}
	}
	component := ""
	if c, rest, ok := strings.Cut(line, ": "); ok && (c == "serf" || c == "memberlist") {
		component, line = c, rest
	}
	return level, component, line
}

func (b *logBridge) Write(p []byte) (int, error) {
	for _, line := range strings.Split(string(p), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		level, component, msg := parseLine(line)
		if b.onLine != nil {
			level = b.onLine(level, msg)
		}
		if !b.logger.Enabled(context.Background(), level) {
			continue
		}
		if component != "" {
			b.logger.Log(context.Background(), level, msg, "component", component)
		} else {
			b.logger.Log(context.Background(), level, msg)
		}
	}
	return len(p), nil
}
