// Command observe measures how many observations per second a running
// Vigil agent accepts durably through POST /v1/observations: a request
// counts only once the agent answered 202, which it does only after the
// batch was committed and fsynced. Several clients send batches in a loop;
// each batch holds -batch observations with -features features (numeric and
// categorical), latency, status, prediction and request_id, the shape a
// model server sends.
//
// With -vigil it starts that binary itself (dev mode, a temporary data
// directory, a free loopback port) and stops it afterwards; with -addr it
// uses an agent that is already running.
//
//	go build -o bin/vigil ./cmd/vigil
//	go run ./bench/observe -vigil bin/vigil -clients 8 -duration 20s
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	vigil := flag.String("vigil", "", "start this vigil binary (dev mode, temp data dir) and benchmark it")
	addr := flag.String("addr", "", "benchmark the agent already listening at host:port")
	clients := flag.Int("clients", 8, "concurrent clients")
	batch := flag.Int("batch", 100, "observations per request")
	features := flag.Int("features", 10, "features per observation")
	duration := flag.Duration("duration", 20*time.Second, "how long to send")
	warmup := flag.Duration("warmup", 2*time.Second, "sending before measuring starts")
	flag.Parse()
	if (*vigil == "") == (*addr == "") {
		fmt.Fprintln(os.Stderr, "set exactly one of -vigil and -addr")
		os.Exit(2)
	}
	if *vigil != "" {
		a, pid, stop, err := startAgent(*vigil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer stop()
		*addr = a
		agentPID = pid
	}
	if err := run(*addr, *clients, *batch, *features, *duration, *warmup); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// agentPID is the agent this program started (0 with -addr), whose CPU
// time is read from /proc to report CPU per observation: a figure that,
// unlike throughput, does not depend on what else the machine is doing.
var agentPID int

// cpuSeconds is the user+system CPU time of pid so far.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command: state is field 3; utime
	// and stime are fields 14 and 15.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

func startAgent(bin string) (string, int, func(), error) {
	dir, err := os.MkdirTemp("", "vigil-bench-observe-")
	if err != nil {
		return "", 0, nil, err
	}
	addr, err := freePort()
	if err != nil {
		return "", 0, nil, err
	}
	cmd := exec.Command(bin, "agent", "-dev", "-data-dir", dir, "-http-addr", addr, "-log-level", "warn")
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	cmd.Env = append(os.Environ(), "VIGIL_TELEMETRY_GPU_ENABLED=false")
	if err := cmd.Start(); err != nil {
		return "", 0, nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		os.RemoveAll(dir)
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if r, err := http.Get("http://" + addr + "/v1/health"); err == nil {
			r.Body.Close()
			return addr, cmd.Process.Pid, stop, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return "", 0, nil, fmt.Errorf("agent did not answer on %s within 15s", addr)
}

// bodies builds n distinct request bodies.
func bodies(n, batch, features int, seed uint64) [][]byte {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([][]byte, n)
	colors := []string{"red", "green", "blue", "amber"}
	for i := range out {
		items := make([]map[string]any, batch)
		for j := range items {
			f := make(map[string]any, features)
			for k := range features {
				if k%5 == 4 {
					f["cat_"+strconv.Itoa(k)] = colors[r.IntN(len(colors))]
				} else {
					f["num_"+strconv.Itoa(k)] = float64(int(r.NormFloat64()*1e4)) / 1e3
				}
			}
			status := 200
			if r.IntN(200) == 0 {
				status = 503
			}
			items[j] = map[string]any{
				"model":      "fraud",
				"version":    "v" + strconv.Itoa(1+r.IntN(2)),
				"latency_ms": float64(int(r.ExpFloat64()*2000)) / 100,
				"status":     status,
				"features":   f,
				"prediction": r.IntN(2),
				"request_id": fmt.Sprintf("req-%d-%d-%d", seed, i, j),
			}
		}
		b, err := json.Marshal(map[string]any{"observations": items})
		if err != nil {
			panic(err)
		}
		out[i] = b
	}
	return out
}

func run(addr string, clients, batch, features int, duration, warmup time.Duration) error {
	url := "http://" + addr + "/v1/observations"
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var (
		measuring atomic.Bool
		accepted  atomic.Int64
		failed    atomic.Int64
		mu        sync.Mutex
		lat       []time.Duration
		firstErr  atomic.Value
	)
	ctx, cancel := context.WithTimeout(context.Background(), warmup+duration)
	defer cancel()
	bodySize := 0
	var wg sync.WaitGroup
	for c := range clients {
		bs := bodies(32, batch, features, uint64(c))
		bodySize = len(bs[0])
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for i := 0; ctx.Err() == nil; i++ {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(bs[i%len(bs)]))
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				resp, err := hc.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				d := time.Since(t0)
				if resp.StatusCode != http.StatusAccepted {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, "HTTP "+resp.Status)
					continue
				}
				if measuring.Load() {
					accepted.Add(int64(batch))
					mine = append(mine, d)
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	time.Sleep(warmup)
	measuring.Store(true)
	start := time.Now()
	cpu0 := cpuSeconds(agentPID)
	<-ctx.Done()
	elapsed := time.Since(start)
	cpu := cpuSeconds(agentPID) - cpu0
	wg.Wait()
	slices.Sort(lat)
	q := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[int(p*float64(len(lat)-1))]
	}
	fmt.Printf("clients=%d batch=%d features=%d body=%dB duration=%s\n", clients, batch, features, bodySize, elapsed.Round(time.Millisecond))
	fmt.Printf("accepted durably: %d observations, %.0f observations/s (%.0f batches/s)\n",
		accepted.Load(), float64(accepted.Load())/elapsed.Seconds(), float64(len(lat))/elapsed.Seconds())
	fmt.Printf("batch latency: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
		float64(q(0.5).Microseconds())/1000, float64(q(0.99).Microseconds())/1000, float64(q(1).Microseconds())/1000)
	if agentPID != 0 && accepted.Load() > 0 {
		per := cpu / float64(accepted.Load())
		fmt.Printf("agent CPU: %.2f cores busy, %.2f µs per observation (%.0f observations/s per fully used core)\n",
			cpu/elapsed.Seconds(), per*1e6, 1/per)
	}
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d requests failed; first: %v", n, firstErr.Load())
	}
	return nil
}
