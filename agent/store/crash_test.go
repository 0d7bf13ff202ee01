package store

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	helperPathEnv = "VIGIL_STORE_HELPER_PATH"
	helperBaseEnv = "VIGIL_STORE_HELPER_BASE"
	helperBatch   = 10
)

// TestHelperWriter is not a test on its own: TestCrashDurability runs the
// test binary again with -test.run=^TestHelperWriter$ and the path in the
// environment. It appends from 4 goroutines and prints "ack N" after each
// Append returned, i.e. after samples N..N+9 were acknowledged, until it is
// killed. Without the environment variable it returns at once.
func TestHelperWriter(t *testing.T) {
	path := os.Getenv(helperPathEnv)
	if path == "" {
		return
	}
	base, _ := strconv.ParseInt(os.Getenv(helperBaseEnv), 10, 64)
	cfg := DefaultConfig()
	cfg.Path = path
	s, err := Open(cfg, nil)
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
				batch := make([]Sample, helperBatch)
				for i := range batch {
					batch[i] = Sample{Name: "crash", Labels: Labels{{"w", strconv.Itoa(w)}}, Time: time.Now(), Value: float64(id0 + int64(i))}
				}
				if err := s.Append(context.Background(), batch); err != nil {
					fmt.Println("error", err)
					os.Exit(2)
				}
				// One write per line: atomic on a pipe.
				os.Stdout.WriteString("ack " + strconv.FormatInt(id0, 10) + "\n")
			}
		}()
	}
	select {}
}

// TestCrashDurability kills a writer process with SIGKILL at random moments
// and checks, after each kill, that every sample it acknowledged is in the
// store. VIGIL_CRASH_CYCLES sets the number of kills (default 20; the
// 100-cycle run is bench/crash-cycles.sh).
func TestCrashDurability(t *testing.T) {
	cycles := 20
	if v := os.Getenv("VIGIL_CRASH_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("VIGIL_CRASH_CYCLES=%q: want a positive number", v)
		}
		cycles = n
	}
	path := t.TempDir() + "/vigil.db"
	var totalAcked int
	for cycle := 0; cycle < cycles; cycle++ {
		acked := runAndKillWriter(t, "TestHelperWriter", path, int64(cycle)*1_000_000_000, time.Duration(5+rand.IntN(60))*time.Millisecond)
		totalAcked += len(acked)

		s, err := Open(Config{Path: path}, nil)
		if err != nil {
			t.Fatalf("cycle %d: reopen after kill -9: %v", cycle, err)
		}
		present := map[int64]bool{}
		for _, smp := range readAll(t, s) {
			present[int64(smp.Value)] = true
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		for _, id0 := range acked {
			for i := int64(0); i < helperBatch; i++ {
				if !present[id0+i] {
					t.Fatalf("cycle %d: acknowledged sample %d missing after kill -9", cycle, id0+i)
				}
			}
		}
	}
	if totalAcked < cycles {
		t.Fatalf("only %d acknowledged batches over %d cycles: the writer barely ran", totalAcked, cycles)
	}
	t.Logf("%d cycles, %d acknowledged batches all present", cycles, totalAcked)
}

func runAndKillWriter(t *testing.T, helper, path string, base int64, after time.Duration) []int64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+helper+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperPathEnv+"="+path, helperBaseEnv+"="+strconv.FormatInt(base, 10))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	var mu sync.Mutex
	var acked []int64
	var failure string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "ready":
				close(ready)
			case strings.HasPrefix(line, "ack "):
				n, err := strconv.ParseInt(line[4:], 10, 64)
				if err == nil {
					mu.Lock()
					acked = append(acked, n)
					mu.Unlock()
				}
			case strings.HasPrefix(line, "error"):
				mu.Lock()
				failure = line
				mu.Unlock()
			}
		}
	}()
	select {
	case <-ready:
	case <-done:
	case <-time.After(20 * time.Second):
	}
	time.Sleep(after)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if failure != "" {
		t.Fatalf("writer failed: %s", failure)
	}
	return acked
}
