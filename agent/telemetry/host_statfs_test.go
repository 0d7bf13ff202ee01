package telemetry

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shirou/gopsutil/v4/disk"
)

// A statfs that hangs (a dead NFS server) costs one timeout, not a stuck
// collector: the mount point is then skipped at once, with no second call
// piling up behind the first, until the hung call returns.
func TestHungFileSystemIsSkipped(t *testing.T) {
	h := newHostCollector(hostOnly().Host, testLogger(t))
	h.statfsTimeout = 50 * time.Millisecond
	release := make(chan struct{})
	var calls atomic.Int32
	h.usageFn = func(_ context.Context, path string) (*disk.UsageStat, error) {
		calls.Add(1)
		if path == "/mnt/nfs" {
			<-release
		}
		return &disk.UsageStat{Path: path, Total: 100, Used: 40, Free: 50}, nil
	}
	ctx := context.Background()

	if u, err := h.usage(ctx, "/"); err != nil || u.Total != 100 {
		t.Fatalf("a healthy file system: %v %v", u, err)
	}
	if _, err := h.usage(ctx, "/mnt/nfs"); err == nil || !strings.Contains(err.Error(), "did not answer within") {
		t.Fatalf("hung statfs: %v", err)
	}
	// Skipped now, without a new call.
	before := calls.Load()
	if _, err := h.usage(ctx, "/mnt/nfs"); err == nil || !strings.Contains(err.Error(), "skipped until it does") {
		t.Fatalf("second read of the hung mount: %v", err)
	}
	if calls.Load() != before {
		t.Errorf("a second statfs was started behind the hung one")
	}
	// Others are still read.
	if _, err := h.usage(ctx, "/"); err != nil {
		t.Fatalf("a healthy file system while another hangs: %v", err)
	}
	// Once the hung call returns, the mount point is read again.
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for {
		u, err := h.usage(ctx, "/mnt/nfs")
		if err == nil && u.Total == 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mount point was not read again after its statfs returned: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A configured interface or mount point that is not on the host is warned
// about once (a typo otherwise just gives no series), and noted when it
// appears.
func TestAbsentConfiguredNamesWarnedOnce(t *testing.T) {
	var buf strings.Builder
	h := newHostCollector(hostOnly().Host, slog.New(slog.NewTextHandler(&buf, nil)))
	here := map[string]bool{"eth0": true}
	found := func(n string) bool { return here[n] }
	names := []string{"eth0", "eht1"}
	h.noteAbsent("telemetry.host.interfaces", names, found)
	h.noteAbsent("telemetry.host.interfaces", names, found)
	if n := strings.Count(buf.String(), "level=WARN"); n != 1 || !strings.Contains(buf.String(), "name=eht1") {
		t.Fatalf("want one warning naming eht1:\n%s", buf.String())
	}
	here["eht1"] = true
	h.noteAbsent("telemetry.host.interfaces", names, found)
	if !strings.Contains(buf.String(), "is on this host now") {
		t.Errorf("its arrival is not noted:\n%s", buf.String())
	}
}
