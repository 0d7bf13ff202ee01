package test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// notifyMsg is one datagram the agent sent to NOTIFY_SOCKET.
type notifyMsg struct {
	at    time.Time
	state string
}

// fakeSystemd opens a unix datagram socket, as systemd does for Type=notify
// services, and collects what arrives on it.
type fakeSystemd struct {
	path string
	msgs chan notifyMsg
}

func newFakeSystemd(t *testing.T) *fakeSystemd {
	t.Helper()
	// Unix socket paths are limited to 108 bytes; t.TempDir can be longer.
	dir, err := os.MkdirTemp("", "vigil-notify-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fakeSystemd{path: filepath.Join(dir, "notify.sock"), msgs: make(chan notifyMsg, 1024)}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: f.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				close(f.msgs)
				return
			}
			f.msgs <- notifyMsg{at: time.Now(), state: string(buf[:n])}
		}
	}()
	return f
}

// next returns the next message, failing the test if none comes in time.
func (f *fakeSystemd) next(t *testing.T, within time.Duration) notifyMsg {
	t.Helper()
	select {
	case m, ok := <-f.msgs:
		if !ok {
			t.Fatal("notify socket closed")
		}
		return m
	case <-time.After(within):
		t.Fatalf("no sd_notify message within %s", within)
	}
	return notifyMsg{}
}

// TestSystemdNotify starts the real agent under a fake NOTIFY_SOCKET with a
// watchdog: READY=1 once the API answers, WATCHDOG=1 at half the watchdog
// interval while healthy and none while a health check fails, STOPPING=1
// on SIGTERM.
func TestSystemdNotify(t *testing.T) {
	const watchdog = time.Second // pings expected every 500ms
	sd := newFakeSystemd(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	a := startAgent(t, []string{
		"NOTIFY_SOCKET=" + sd.path,
		"WATCHDOG_USEC=" + "1000000",
		"WATCHDOG_PID=", // empty, so no PID match is required (the agent is our child)
	}, "-dev", "-data-dir", dataDir, "-http-addr", "127.0.0.1:0")
	base := "http://" + a.addr

	// READY=1 first, and by then the API answers.
	m := sd.next(t, 10*time.Second)
	if m.state != "READY=1" {
		t.Fatalf("first message = %q, want READY=1", m.state)
	}
	if status, body := get(t, base+"/v1/health", ""); status != 200 {
		t.Fatalf("READY=1 sent but /v1/health = %d %s", status, body)
	}

	// WATCHDOG=1 at the rate: systemd needs a ping within every WATCHDOG_USEC;
	// the agent aims for half that.
	var pings []time.Time
	for len(pings) < 6 {
		m := sd.next(t, 2*watchdog)
		if m.state != "WATCHDOG=1" {
			t.Fatalf("unexpected message %q while waiting for watchdog pings", m.state)
		}
		pings = append(pings, m.at)
	}
	for i := 1; i < len(pings); i++ {
		if gap := pings[i].Sub(pings[i-1]); gap >= watchdog {
			t.Errorf("watchdog gap %s >= WATCHDOG_USEC %s", gap, watchdog)
		}
	}
	mean := pings[len(pings)-1].Sub(pings[1]) / time.Duration(len(pings)-2)
	if mean < watchdog/2*7/10 || mean > watchdog/2*13/10 {
		t.Errorf("mean watchdog period %s, want about %s", mean, watchdog/2)
	}

	// A failing health check withholds the pings; they resume when it passes.
	moved := dataDir + ".moved"
	if err := os.Rename(dataDir, moved); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(a.stderr.String(), "withholding systemd watchdog pings") }, "log of withheld pings")
	drain(sd.msgs)
	select {
	case m := <-sd.msgs:
		t.Errorf("got %q while the data dir check fails", m.state)
	case <-time.After(2 * watchdog):
	}
	if err := os.Rename(moved, dataDir); err != nil {
		t.Fatal(err)
	}
	if m := sd.next(t, 2*watchdog); m.state != "WATCHDOG=1" {
		t.Errorf("after recovery got %q, want WATCHDOG=1", m.state)
	}

	// SIGTERM: STOPPING=1, no pings after it, exit 0.
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := a.waitExit(t, 12*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d", code)
	}
	var after []string
	for {
		m := sd.next(t, 5*time.Second)
		after = append(after, m.state)
		if m.state == "STOPPING=1" {
			break
		}
		if m.state != "WATCHDOG=1" {
			t.Fatalf("unexpected message %q before STOPPING=1", m.state)
		}
	}
	select {
	case m := <-sd.msgs:
		t.Errorf("message %q after STOPPING=1 (sequence %v)", m.state, after)
	default:
	}
}

// drain discards what has already arrived.
func drain(c chan notifyMsg) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}
