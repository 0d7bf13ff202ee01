package pluginhost

import (
	"bytes"
	"encoding/json"
	"log/slog"
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
