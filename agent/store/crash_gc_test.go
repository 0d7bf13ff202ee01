package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// gcCrashEpoch is the virtual time of sample id 0 in the series GC crash
// test; sample batch id0 is stamped gcCrashEpoch + id0 seconds.
var gcCrashEpoch = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

func gcCrashTime(id0 int64) time.Time { return gcCrashEpoch.Add(time.Duration(id0) * time.Second) }

func gcCrashConfig(path string) Config {
	cfg := DefaultConfig()
	cfg.Path = path
	cfg.Retention = 2 * time.Minute
	cfg.Partition = time.Minute
	return cfg
}

// TestHelperGCWriter is run by TestCrashDuringSeriesGC in a child process
// (like TestHelperWriter). Every batch is a new series stamped 10 virtual
// seconds after the previous one, and maintenance runs every millisecond,
// so partitions are dropped and series removed all the time while the
// process is killed.
func TestHelperGCWriter(t *testing.T) {
	path := os.Getenv(helperPathEnv)
	if path == "" {
		return
	}
	base, _ := strconv.ParseInt(os.Getenv(helperBaseEnv), 10, 64)
	var clock atomic.Int64 // virtual now, ms
	clock.Store(gcCrashTime(base).UnixMilli())
	now := func() time.Time { return time.UnixMilli(clock.Load()) }
	s, err := open(gcCrashConfig(path), nil, options{now: now, maintainEvery: time.Millisecond})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	fmt.Println("ready")
	var next atomic.Int64
	for w := 0; w < 4; w++ {
		go func() {
			for {
				id0 := base + next.Add(helperBatch) - helperBatch
				ts := gcCrashTime(id0)
				for {
					cur := clock.Load()
					if cur >= ts.UnixMilli() || clock.CompareAndSwap(cur, ts.UnixMilli()) {
						break
					}
				}
				batch := make([]Sample, helperBatch)
				for i := range batch {
					batch[i] = Sample{Name: "churn", Labels: Labels{{"k", strconv.FormatInt(id0, 10)}}, Time: ts.Add(time.Duration(i) * time.Millisecond), Value: float64(id0 + int64(i))}
				}
				err := s.Append(context.Background(), batch)
				if errors.Is(err, ErrInvalidSample) {
					// Stalled while the other writers moved the virtual
					// clock past the retention: refused, not acknowledged.
					continue
				}
				if err != nil {
					fmt.Println("error", err)
					os.Exit(2)
				}
				os.Stdout.WriteString("ack " + strconv.FormatInt(id0, 10) + "\n")
			}
		}()
	}
	select {}
}

// TestCrashDuringSeriesGC kills a writer whose store drops partitions and
// removes series continuously, and checks after each kill that every
// acknowledged sample still inside the retention is there with its series
// (name and labels): a crash mid-GC loses nothing still retained, and no
// kept record refers to a removed series.
func TestCrashDuringSeriesGC(t *testing.T) {
	path := t.TempDir() + "/vigil.db"
	var checked, removedBefore int
	gcSeen := false
	// At least 10 kills; more (up to 60, each running longer) until the
	// writer got far enough, under -race on a loaded machine, to have
	// removed series before one of the kills.
	for cycle := 0; cycle < 10 || (cycle < 60 && (checked == 0 || removedBefore == 0 || !gcSeen)); cycle++ {
		run := time.Duration(20+rand.IntN(60)) * time.Millisecond * time.Duration(1+cycle/10)
		acked := runAndKillWriter(t, "TestHelperGCWriter", path, int64(cycle)*1_000_000, run)
		if len(acked) == 0 {
			continue
		}
		last := acked[0]
		for _, id0 := range acked {
			last = max(last, id0)
		}
		tLast := gcCrashTime(last)
		s, err := open(gcCrashConfig(path), nil, options{now: func() time.Time { return tLast }, maintainEvery: time.Hour})
		if err != nil {
			t.Fatalf("cycle %d: reopen after kill -9: %v", cycle, err)
		}
		// The index holds about the retained window's series (2m / 10s),
		// not every series the cycle created.
		if n := s.Stats().Series; len(acked) >= 40 && n < len(acked)-10 {
			gcSeen = true
		}
		present := map[int64]string{}
		for _, smp := range readAll(t, s) {
			if smp.Name == "" {
				t.Fatalf("cycle %d: sample %v refers to a series not in the index", cycle, smp.Value)
			}
			present[int64(smp.Value)] = smp.Name + smp.Labels.String()
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		// The killed writer's clock may have run up to 3 batches (30s)
		// past the last acknowledgement; samples of the last minute are
		// inside the retention (2m) for either clock.
		for _, id0 := range acked {
			if gcCrashTime(id0).Before(tLast.Add(-time.Minute)) {
				removedBefore++
				continue
			}
			want := fmt.Sprintf(`churn{k="%d"}`, id0)
			for i := int64(0); i < helperBatch; i++ {
				if got := present[id0+i]; got != want {
					t.Fatalf("cycle %d: acknowledged sample %d: found as %q, want %s", cycle, id0+i, got, want)
				}
				checked++
			}
		}
	}
	if checked == 0 || removedBefore == 0 || !gcSeen {
		t.Fatalf("checked %d retained samples, %d batches aged out, series removed: %v: the writer did not run long enough to exercise GC", checked, removedBefore, gcSeen)
	}
	t.Logf("%d retained samples present after kills; %d acknowledged batches aged out", checked, removedBefore)
}
