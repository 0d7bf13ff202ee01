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

// quietLines are serf's routine lines that it logs above their worth, by
// message prefix, with the level to log them at instead.
var quietLines = []struct {
	prefix string
	level  slog.Level
}{
	// A late answer or ack (past the query's timeout, or a relayed copy
	// of one already counted) to a query of this node's: routine on every
	// node that asks, and nothing to act on. The asker already reports
	// the nodes that did not answer in time (fleet stats' missing).
	{"reply for non-running query", slog.LevelDebug},
	// Every node logs each vigil keyring list at info; listing changes
	// nothing (install, use and remove stay at info).
	{"Received list-keys query", slog.LevelDebug},
}

// parseLine splits one log line into its level and message. A line without
// a known prefix is logged at info; quietLines are lowered.
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
	for _, q := range quietLines {
		if strings.HasPrefix(line, q.prefix) {
			level = min(level, q.level)
			break
		}
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
