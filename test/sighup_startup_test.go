package test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigilml/vigil/internal/testutil"
)

// TestConfigReloadOnSIGHUPDuringStartup sends SIGHUP while the agent is
// still starting and checks that it survives and reloads once it runs.
//
// The configuration file is a named pipe, so the agent's start-up waits in
// the read of its configuration until the test writes it: the test knows
// the agent is in that read when the pipe opens for writing without
// blocking (it has a reader), sends SIGHUP then, and only then writes the
// configuration. The reload that follows reads the pipe again, which
// proves the SIGHUP became a reload; the second configuration it gets
// changes the log level, which the reload applies.
func TestConfigReloadOnSIGHUPDuringStartup(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "vigil.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("data_dir: %s\napi:\n  addr: 127.0.0.1:0\n", filepath.Join(dir, "data"))

	stdout, stderr := &testutil.SyncBuffer{}, &testutil.SyncBuffer{}
	cmd := exec.Command(vigilBin, "agent", "-config", fifo)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("agent stdout:\n%s\nagent stderr:\n%s", stdout, stderr)
		}
	})

	// alive fails the test if the agent has exited (a SIGHUP it does not
	// catch kills it).
	alive := func(what string) {
		t.Helper()
		select {
		case err := <-done:
			done <- err
			t.Fatalf("agent exited waiting for %s: %v", what, err)
		default:
		}
	}

	// feed waits until the agent has the pipe open for reading, runs
	// before, and writes body for the agent to read.
	feed := func(what, body string, before func()) {
		t.Helper()
		var w *os.File
		waitFor(t, func() bool {
			f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
			if err == nil {
				w = f
				return true
			}
			if !errors.Is(err, syscall.ENXIO) { // ENXIO: no reader yet
				t.Fatalf("open %s for writing: %v", fifo, err)
			}
			alive(what)
			return false
		}, "the agent reading its configuration for "+what)
		before()
		if _, err := w.WriteString(body); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}

	feed("start-up", base, func() {
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	})
	waitFor(t, func() bool { alive("the banner"); return apiLine.MatchString(stdout.String()) }, "the banner")
	feed("the reload", base+"log_level: debug\n", func() {})
	waitFor(t, func() bool {
		return strings.Contains(stderr.String(), `"msg":"configuration reloaded","applied":["log_level"]`)
	}, "the reload applying log_level")
	if !strings.Contains(stderr.String(), "SIGHUP received during start-up") {
		t.Errorf("the agent did not log the SIGHUP it received while starting")
	}

	// SIGTERM still stops it cleanly.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Errorf("agent exit: %v; want 0", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("agent did not stop on SIGTERM")
	}
}

// TestConfigSIGTERMStopsAHangingStart checks that SIGTERM still stops an
// agent whose start-up hangs (here, in the read of a configuration that
// never comes): only SIGHUP is caught that early.
func TestConfigSIGTERMStopsAHangingStart(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "vigil.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(vigilBin, "agent", "-config", fifo)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
			<-done
		}
	})
	var w *os.File
	waitFor(t, func() bool {
		f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		w = f
		return err == nil
	}, "the agent reading its configuration")
	defer w.Close()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
			t.Errorf("agent exit: %v; want killed by SIGTERM", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("SIGTERM did not stop a start-up that hangs")
	}
}
