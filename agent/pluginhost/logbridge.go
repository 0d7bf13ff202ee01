package pluginhost

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
)

// stderrLogger receives a plugin's stderr line by line (go-plugin writes
// each line, then a newline) and logs it under the plugin's name. JSON lines
// (slog's or hclog's JSON handlers) keep their level and message.
type stderrLogger struct {
	logger *slog.Logger
	mu     sync.Mutex
	buf    bytes.Buffer
}

// maxLogLine bounds the part of a plugin's stderr line held while waiting
// for its end; go-plugin hands over a long line in chunks of its 64 KiB
// read buffer.
const maxLogLine = 64 << 10

func (w *stderrLogger) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadBytes('\n')
		if err != nil {
			if len(line) >= maxLogLine {
				// A plugin that never ends its line (a progress bar
				// drawn with \r, binary output) must not grow the
				// agent's memory: log what came so far as one record.
				w.log(line)
				w.buf.Reset()
				break
			}
			// Incomplete line: keep it for the next write.
			w.buf.Reset()
			w.buf.Write(line)
			break
		}
		w.log(bytes.TrimRight(line, "\r\n"))
	}
	return len(p), nil
}

func (w *stderrLogger) log(line []byte) {
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	var rec map[string]any
	if json.Unmarshal(line, &rec) == nil {
		msg, _ := firstString(rec, "msg", "@message", "message")
		lvl, _ := firstString(rec, "level", "@level")
		if msg != "" {
			attrs := make([]any, 0, 2*len(rec))
			for k, v := range rec {
				switch k {
				case "msg", "@message", "message", "level", "@level", "time", "@timestamp":
					continue
				case "plugin", "subsystem":
					// The agent's own keys on this logger: a second
					// "plugin" (go-plugin's lines carry the path under
					// it) would make a duplicate JSON key.
					k = "plugin_" + k
				}
				attrs = append(attrs, k, v)
			}
			w.logger.Log(context.Background(), parseLevel(lvl), msg, attrs...)
			return
		}
	}
	w.logger.Info(string(line))
}

func firstString(m map[string]any, keys ...string) (string, bool) {
	for _, k := range keys {
		if s, ok := m[k].(string); ok {
			return s, true
		}
	}
	return "", false
}

func parseLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "trace", "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error", "fatal", "critical":
		return slog.LevelError
	}
	return slog.LevelInfo
}
