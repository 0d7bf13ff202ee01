// Command fleet measures a fleet of N Vigil agents against N bare `serf
// agent` processes on this machine: time until every node sees every node,
// time for a tag change to reach every node (p50/p95 over trials), time for
// every node to mark a kill -9 node failed, and RSS per agent. Both run
// memberlist's "local" timing profile on loopback. Run it through
// bench/fleet.sh, which builds both binaries.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	serfclient "github.com/hashicorp/serf/client"
)

type node struct {
	name   string
	gossip string
	ctl    string // vigil API or serf RPC address
	cfg    string // vigil config path
	cmd    *exec.Cmd
	exited chan struct{}
	log    string
	rpc    *serfclient.RPCClient
	mu     sync.Mutex
}

type fleetKind interface {
	start(n *node, join string, dir string) error
	// view returns name -> (status, role) as the node sees the fleet.
	view(n *node) (map[string][2]string, error)
	setRole(n *node, role string) error
}

type vigilKind struct{ bin string }

func (k vigilKind) writeConfig(n *node, join, role, dir string) error {
	j := ""
	if join != "" {
		j = "\n  join: [" + join + "]"
	}
	cfg := fmt.Sprintf(`node_name: %s
data_dir: %s
log_level: warn
log_format: json
api: {addr: %s}
telemetry: {gpu: {enabled: false}, host: {interval: 60s}}
gossip:
  enabled: true
  bind: %s
  profile: local
  tags_min_interval: 1s
  role: %s%s
`, n.name, filepath.Join(dir, n.name), n.ctl, n.gossip, role, j)
	return os.WriteFile(n.cfg, []byte(cfg), 0o600)
}

func (k vigilKind) start(n *node, join, dir string) error {
	n.cfg = filepath.Join(dir, n.name+".yaml")
	if err := k.writeConfig(n, join, "r0", dir); err != nil {
		return err
	}
	n.cmd = exec.Command(k.bin, "agent", "-config", n.cfg)
	return startLogged(n, dir)
}

// startLogged starts n.cmd with its output in DIR/NAME.log.
func startLogged(n *node, dir string) error {
	n.log = filepath.Join(dir, n.name+".log")
	f, err := os.Create(n.log)
	if err != nil {
		return err
	}
	defer f.Close()
	n.cmd.Stdout, n.cmd.Stderr = f, f
	return n.cmd.Start()
}

var httpc = &http.Client{Timeout: 5 * time.Second}

func (k vigilKind) view(n *node) (map[string][2]string, error) {
	resp, err := httpc.Get("http://" + n.ctl + "/v1/fleet/members")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Members []struct {
			Name   string            `json:"name"`
			Status string            `json:"status"`
			Tags   map[string]string `json:"tags"`
		} `json:"members"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	v := map[string][2]string{}
	for _, m := range out.Members {
		v[m.Name] = [2]string{m.Status, m.Tags["role"]}
	}
	return v, nil
}

func (k vigilKind) setRole(n *node, role string) error {
	if err := k.writeConfig(n, "", role, filepath.Dir(n.cfg)); err != nil {
		return err
	}
	return n.cmd.Process.Signal(syscall.SIGHUP)
}

type serfKind struct{ bin string }

func (k serfKind) start(n *node, join, dir string) error {
	args := []string{"agent", "-node", n.name, "-bind", n.gossip, "-rpc-addr", n.ctl, "-profile", "local", "-log-level", "warn", "-tag", "role=r0"}
	if join != "" {
		args = append(args, "-join", join)
	}
	n.cmd = exec.Command(k.bin, args...)
	return startLogged(n, dir)
}

func (k serfKind) client(n *node) (*serfclient.RPCClient, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.rpc != nil {
		return n.rpc, nil
	}
	c, err := serfclient.NewRPCClient(n.ctl)
	if err != nil {
		return nil, err
	}
	n.rpc = c
	return c, nil
}

func (k serfKind) view(n *node) (map[string][2]string, error) {
	c, err := k.client(n)
	if err != nil {
		return nil, err
	}
	ms, err := c.Members()
	if err != nil {
		return nil, err
	}
	v := map[string][2]string{}
	for _, m := range ms {
		v[m.Name] = [2]string{m.Status, m.Tags["role"]}
	}
	return v, nil
}

func (k serfKind) setRole(n *node, role string) error {
	c, err := k.client(n)
	if err != nil {
		return err
	}
	return c.UpdateTags(map[string]string{"role": role}, nil)
}

var usedPorts = map[int]bool{}

// freePort returns a loopback port free for TCP and UDP that this run has
// not handed out before.
func freePort() int {
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(p))
		l.Close()
		if err == nil {
			u.Close()
			if usedPorts[p] {
				continue
			}
			usedPorts[p] = true
			return p
		}
	}
}

// waitAll polls every node in nodes (16 at a time) until cond holds for
// each, and returns the time from start when the last one first held.
func waitAll(k fleetKind, nodes []*node, start time.Time, limit time.Duration, cond func(map[string][2]string) bool) (time.Duration, error) {
	var mu sync.Mutex
	done := map[string]time.Duration{}
	deadline := start.Add(limit)
	for time.Now().Before(deadline) {
		for _, n := range nodes {
			select {
			case <-n.exited:
				b, _ := os.ReadFile(n.log)
				return 0, fmt.Errorf("%s exited:\n%s", n.name, b)
			default:
			}
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for _, n := range nodes {
			mu.Lock()
			_, ok := done[n.name]
			mu.Unlock()
			if ok {
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				v, err := k.view(n)
				if err == nil && cond(v) {
					mu.Lock()
					done[n.name] = time.Since(start)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(done) == len(nodes) {
			var last time.Duration
			for _, d := range done {
				last = max(last, d)
			}
			return last, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0, fmt.Errorf("only %d of %d nodes within %s", len(done), len(nodes), limit)
}

func rssMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func pct(ds []time.Duration, q float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(q*float64(len(s)-1)+0.5)]
}

func run(name string, k fleetKind, n, trials int) error {
	dir, err := os.MkdirTemp("", "fleetbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	nodes := make([]*node, n)
	for i := range nodes {
		nodes[i] = &node{name: fmt.Sprintf("n%03d", i), gossip: "127.0.0.1:" + strconv.Itoa(freePort()), ctl: "127.0.0.1:" + strconv.Itoa(freePort())}
	}
	defer func() {
		for _, nd := range nodes {
			if nd.rpc != nil {
				_ = nd.rpc.Close()
			}
			if nd.cmd != nil && nd.cmd.Process != nil {
				_ = nd.cmd.Process.Kill()
				<-nd.exited
			}
		}
	}()
	start := time.Now()
	for i, nd := range nodes {
		join := ""
		if i > 0 {
			join = nodes[0].gossip
		}
		if err := k.start(nd, join, dir); err != nil {
			return err
		}
		nd.exited = make(chan struct{})
		go func(nd *node) { _ = nd.cmd.Wait(); close(nd.exited) }(nd)
		if i == 0 {
			time.Sleep(300 * time.Millisecond) // let the seed bind
		}
	}
	launched := time.Since(start)
	allAlive := func(v map[string][2]string) bool {
		alive := 0
		for _, s := range v {
			if s[0] == "alive" {
				alive++
			}
		}
		return alive == n
	}
	conv, err := waitAll(k, nodes, start, 5*time.Minute, allAlive)
	if err != nil {
		return fmt.Errorf("%s n=%d: convergence: %w", name, n, err)
	}
	time.Sleep(2 * time.Second)
	var rss []float64
	for _, nd := range nodes {
		rss = append(rss, rssMB(nd.cmd.Process.Pid))
	}
	sort.Float64s(rss)

	var tagTimes []time.Duration
	for i := range trials {
		nd := nodes[(i*7+1)%n]
		role := fmt.Sprintf("t%d", i+1)
		t0 := time.Now()
		if err := k.setRole(nd, role); err != nil {
			return err
		}
		d, err := waitAll(k, nodes, t0, time.Minute, func(v map[string][2]string) bool { return v[nd.name][1] == role })
		if err != nil {
			return fmt.Errorf("%s n=%d: tag trial %d: %w", name, n, i, err)
		}
		tagTimes = append(tagTimes, d)
		if os.Getenv("FLEETBENCH_VERBOSE") != "" {
			fmt.Fprintf(os.Stderr, "%s n=%d tag trial %d on %s: %s\n", name, n, i, nd.name, d)
		}
		time.Sleep(1500 * time.Millisecond) // beyond vigil's tags_min_interval
	}

	victim := nodes[n-1]
	if victim.rpc != nil {
		_ = victim.rpc.Close()
		victim.rpc = nil
	}
	t0 := time.Now()
	_ = victim.cmd.Process.Kill()
	<-victim.exited
	victim.cmd = nil
	fail, err := waitAll(k, nodes[:n-1], t0, 2*time.Minute, func(v map[string][2]string) bool { return v[victim.name][0] == "failed" })
	if err != nil {
		return fmt.Errorf("%s n=%d: failure detection: %w", name, n, err)
	}
	fmt.Printf("| %-5s | %3d | %5.1f s | %5.1f s | %5.2f s | %5.2f s | %5.1f s | %5.1f MB | %5.1f MB |\n",
		name, n, launched.Seconds(), conv.Seconds(), pct(tagTimes, 0.5).Seconds(), pct(tagTimes, 0.95).Seconds(), fail.Seconds(), rss[len(rss)/2], rss[len(rss)-1])
	return nil
}

func main() {
	vigil := flag.String("vigil", "bin/vigil", "vigil binary")
	serf := flag.String("serf", "", "serf binary (go install github.com/hashicorp/serf/cmd/serf@v0.11.0)")
	sizes := flag.String("n", "50,100", "fleet sizes")
	trials := flag.Int("trials", 10, "tag-change trials per run")
	flag.Parse()
	fmt.Println("| kind  |   N | launch  | all see all | tag p50 | tag p95 | failed seen | RSS p50 | RSS max |")
	fmt.Println("|-------|----:|--------:|------------:|--------:|--------:|------------:|--------:|--------:|")
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 2 {
			fmt.Fprintf(os.Stderr, "bad size %q\n", s)
			os.Exit(2)
		}
		kinds := []struct {
			name string
			k    fleetKind
		}{{"vigil", vigilKind{*vigil}}}
		if *serf != "" {
			kinds = append(kinds, struct {
				name string
				k    fleetKind
			}{"serf", serfKind{*serf}})
		}
		for _, kk := range kinds {
			if err := run(kk.name, kk.k, n, *trials); err != nil {
				fmt.Fprintln(os.Stderr, "error:", err)
				os.Exit(1)
			}
		}
	}
}
