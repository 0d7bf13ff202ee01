package store

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestDiskFull checks that a write that cannot be stored fails with
// ErrDiskFull, is counted, stores nothing, and leaves reads working.
//
// "injected" caps the file with bbolt's MaxSize (an internal hook), so it
// runs everywhere. "tmpfs" mounts a 2MiB tmpfs (we are root in CI here) and
// fills it for a real ENOSPC; when mounting is impossible it says so and
// runs the injected variant instead of skipping.
func TestDiskFull(t *testing.T) {
	injected := func(t *testing.T) {
		cfg := testConfig(t)
		s := openTest(t, cfg, options{bolt: func(o *bolt.Options) { o.MaxSize = 1 << 20 }})
		fillUntilFull(t, s)
	}
	t.Run("injected", injected)
	t.Run("tmpfs", func(t *testing.T) {
		dir := t.TempDir()
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).CombinedOutput(); err != nil {
			t.Logf("cannot mount a tmpfs here (%v: %s); running the injected size-cap variant instead", err, out)
			injected(t)
			return
		}
		t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
		cfg := DefaultConfig()
		cfg.Path = filepath.Join(dir, "vigil.db")
		s := openTest(t, cfg, options{})
		fillUntilFull(t, s)
	})
}

func fillUntilFull(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	stored := 0
	var err error
	for i := 0; i < 2000; i++ {
		batch := make([]Sample, 1000)
		for j := range batch {
			batch[j] = Sample{Name: "fill", Labels: Labels{{"j", fmt.Sprint(j % 50)}}, Time: now.Add(time.Duration(i*1000+j) * time.Microsecond), Value: float64(i)}
		}
		if err = s.Append(ctx, batch); err != nil {
			break
		}
		stored += len(batch)
	}
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("after %d samples: got %v, want ErrDiskFull", stored, err)
	}
	t.Logf("full after %d samples: %v", stored, err)
	if got := s.Stats().WriteErrors[reasonDiskFull]; got != 1 {
		t.Errorf("disk_full errors = %d, want 1", got)
	}
	// Reads keep working and see exactly what was acknowledged.
	if n := len(readAll(t, s)); n != stored {
		t.Fatalf("read %d samples, want the %d acknowledged", n, stored)
	}
	out, qerr := s.Query(ctx, QueryRequest{Name: "fill", Matchers: []Matcher{{MatchEqual, "j", "0"}}, Start: now.Add(-time.Minute), End: now.Add(time.Hour)})
	if qerr != nil || len(out) != 1 {
		t.Fatalf("query while full: %v %v", len(out), qerr)
	}
	// Small writes may still fit in free pages; the store must not be wedged.
	if err := s.Append(ctx, []Sample{{Name: "fill", Time: now, Value: 1}}); err != nil && !errors.Is(err, ErrDiskFull) {
		t.Fatalf("small write after full: %v", err)
	}
}
