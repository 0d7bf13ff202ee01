package pluginhost

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestStderrLoggerKeepsTheAgentsKeys(t *testing.T) {
	var out bytes.Buffer
	w := &stderrLogger{logger: slog.New(slog.NewJSONHandler(&out, nil)).With("subsystem", "plugins", "plugin", "memvec")}
	w.Write([]byte(`{"@level":"error","@message":"plugin process exited","@module":"go-plugin","plugin":"/usr/lib/vigil/plugins/memvec","subsystem":"x"}` + "\n"))
	var rec map[string]any
	if err := json.Unmarshal(out.Bytes(), &rec); err != nil {
		t.Fatalf("%s: %v", out.Bytes(), err)
	}
	want := map[string]any{"level": "ERROR", "msg": "plugin process exited", "plugin": "memvec", "subsystem": "plugins",
		"plugin_plugin": "/usr/lib/vigil/plugins/memvec", "plugin_subsystem": "x", "@module": "go-plugin"}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %v, want %v (record %s)", k, rec[k], v, out.Bytes())
		}
	}
}

func TestStderrLoggerBoundsAnEndlessLine(t *testing.T) {
	var out bytes.Buffer
	w := &stderrLogger{logger: slog.New(slog.NewTextHandler(&out, nil))}
	chunk := bytes.Repeat([]byte("x"), 16<<10)
	for range 64 { // 1 MiB without a newline
		w.Write(chunk)
	}
	if w.buf.Len() > maxLogLine {
		t.Errorf("holding %d bytes of an unfinished line; want at most %d", w.buf.Len(), maxLogLine)
	}
	if n := bytes.Count(out.Bytes(), []byte("\n")); n != 1<<20/maxLogLine {
		t.Errorf("%d records for 1 MiB of one line, want one per %d bytes", n, maxLogLine)
	}
}

func TestStderrLoggerLastWords(t *testing.T) {
	long := strings.Repeat("é", maxLastWords) // two bytes each: cut inside one
	for _, tc := range []struct {
		name, stderr, want string
	}{
		{"nothing", "", ""},
		{"blank lines", "\n  \n", ""},
		{"last line", "loading\ncannot open /etc/mine.yaml\n", "cannot open /etc/mine.yaml"},
		{"python traceback", "Traceback (most recent call last):\n  File \"x.py\", line 1\nImportError: no grpc\n", "ImportError: no grpc"},
		{"go panic, not its stack", "panic: boom [recovered]\n\ngoroutine 1 [running]:\nmain.main()\n\t/src/main.go:3 +0x1\n", "panic: boom [recovered]"},
		{"go fatal error", "fatal error: all goroutines are asleep - deadlock!\n\ngoroutine 1 [chan receive]:\n", "fatal error: all goroutines are asleep - deadlock!"},
		{"json record", `{"level":"ERROR","msg":"no token"}` + "\n", "no token"},
		{"unfinished line", "first\nsecond without newline", "first"},
		{"long", "x" + long + "\n", "x" + strings.Repeat("é", maxLastWords/2-1) + "..."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &stderrLogger{logger: slog.New(slog.DiscardHandler)}
			w.Write([]byte(tc.stderr))
			if got := w.lastWords(); got != tc.want {
				t.Errorf("lastWords() = %q, want %q", got, tc.want)
			}
		})
	}
}
