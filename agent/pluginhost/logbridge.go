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
	// last and panicked are the last message logged and the last one that
	// starts a Go panic or fatal error, for lastWords.
	last, panicked string
}

// maxLastWords bounds the message lastWords returns.
const maxLastWords = 300

// lastWords is what best explains why a plugin that wrote to standard
// error stopped: the line that starts a Go panic or fatal error (the stack
// trace follows it), else the last message (the exception line that
// closes a Python traceback, a "cannot open config" before an exit). Empty
// when the plugin wrote nothing. It is what a start error quotes, since
// the whole output is only in the agent's log.
func (w *stderrLogger) lastWords() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.last
	if w.panicked != "" {
		s = w.panicked
	}
	if len(s) > maxLastWords {
		s = strings.ToValidUTF8(s[:maxLastWords], "") + "..."
	}
	return s
}

// remember notes msg for lastWords; w.mu is held.
func (w *stderrLogger) remember(msg string) {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return
	}
	w.last = msg
	if strings.HasPrefix(msg, "panic: ") || strings.HasPrefix(msg, "fatal error: ") {
		w.panicked = msg
	}
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
			w.remember(msg)
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
	msg := string(line)
	w.remember(msg)
	w.logger.Info(msg)
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
