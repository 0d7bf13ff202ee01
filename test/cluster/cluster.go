// Package cluster runs real multi-agent Vigil fleets on loopback for tests:
// N `vigil agent` processes with their own free API and gossip ports, data
// directories and config files, joined into one fleet.
//
// A typical test:
//
//	c := cluster.Start(t, cluster.Options{Binary: vigilBin, N: 5})
//	c.WaitConverged(20 * time.Second)
//	c.Nodes[2].Kill()
//	c.WaitStatus(c.Nodes[2].Name, "failed", 30*time.Second)
//
// Every process is killed and reaped when the test ends, and the harness
// fails the test if any agent it started is still running after that.
package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/vigilml/vigil/agent/fleet"
	"github.com/vigilml/vigil/internal/testutil"
)

// Options describe a cluster.
type Options struct {
	// Binary is the vigil binary to run (see Build).
	Binary string
	// N is the number of nodes Start runs and joins. Default 3.
	N int
	// EncryptKey, when set, is every node's gossip.encrypt_key.
	EncryptKey string
	// Config, when set, edits each node's configuration before it starts
	// (see Node.Set for the dotted keys).
	Config func(n *Node)
	// NoJoin leaves gossip.join unset: the nodes start alone.
	NoJoin bool
	// Netns runs each node in its own network namespace on a bridge, so
	// that Partition and Loss can cut traffic between nodes (needs root,
	// iproute2 and nftables). Nodes then use the fixed ports 7070 (API)
	// and 7946 (gossip) on their own IP.
	Netns bool
}

// Cluster is a running fleet of agents.
type Cluster struct {
	t    testing.TB
	opts Options
	dir  string
	// Nodes are the fleet's members: WaitConverged expects each running
	// one to see every other running one alive.
	Nodes []*Node

	net *network

	mu  sync.Mutex
	all []*Node // every node started, for teardown
}

// Node is one agent of the cluster.
type Node struct {
	c *Cluster
	// Name is the agent's node_name.
	Name string
	// API is the base URL of its local API; GossipAddr its gossip host:port.
	API        string
	GossipAddr string
	DataDir    string
	ConfigPath string

	cfg   map[string]any
	netns string // the node's network namespace (Options.Netns)
	ip    string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	err    error
	output *testutil.SyncBuffer
	starts int
}

// Build compiles ./cmd/vigil of the module in dir (or the current module
// when dir is "") into out, for Options.Binary. Call it once per test
// binary, from TestMain.
func Build(out string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-o", out, "./cmd/vigil")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module")
	}
	return filepath.Dir(mod), nil
}

// Start runs opts.N agents, node-0 first and the others joining it, waits
// until each serves its API, and registers the teardown. It does not wait
// for convergence: call WaitConverged.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Binary == "" {
		t.Fatal("cluster: Options.Binary is empty: build vigil once in TestMain with cluster.Build")
	}
	if opts.N <= 0 {
		opts.N = 3
	}
	c := &Cluster{t: t, opts: opts, dir: t.TempDir()}
	if opts.Netns {
		c.net = newNetwork(t) // its cleanup runs after the processes are gone
	}
	t.Cleanup(c.teardown)
	// node-0 first: the others' configs join its gossip address, which is
	// only final once it runs.
	first := c.NewNode("node-0", nil)
	c.Nodes = append(c.Nodes, first)
	if err := first.start(); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < opts.N; i++ {
		c.Nodes = append(c.Nodes, c.NewNode(fmt.Sprintf("node-%d", i), nil))
	}
	var wg sync.WaitGroup
	errs := make([]error, len(c.Nodes))
	for i, n := range c.Nodes[1:] {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = n.start() }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// NewNode prepares a node that is not one of c.Nodes (a stranger with the
// wrong key, say): its config joins node-0 unless Options.NoJoin, mod edits
// it, and the harness tears it down. Call Start on it.
func (c *Cluster) NewNode(name string, mod func(n *Node)) *Node {
	c.t.Helper()
	dir := filepath.Join(c.dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		c.t.Fatal(err)
	}
	n := &Node{c: c, Name: name, DataDir: filepath.Join(dir, "data"), ConfigPath: filepath.Join(dir, "vigil.yaml"), output: &testutil.SyncBuffer{}}
	if c.net != nil {
		n.netns, n.ip = c.net.addNode()
		n.API = "http://" + n.ip + ":7070"
		n.GossipAddr = n.ip + ":7946"
	} else {
		n.pickPorts()
	}
	gossip := map[string]any{
		"enabled":           true,
		"bind":              n.GossipAddr,
		"profile":           "local",
		"tags_min_interval": "1s",
		"query_timeout":     "2s",
		"retry_interval":    "500ms",
	}
	if c.opts.EncryptKey != "" {
		gossip["encrypt_key"] = c.opts.EncryptKey
	}
	api := map[string]any{"addr": strings.TrimPrefix(n.API, "http://")}
	if c.net != nil {
		api["insecure_allow_remote"] = true // reachable only on the test bridge
	}
	n.cfg = map[string]any{
		"node_name":        name,
		"data_dir":         n.DataDir,
		"log_level":        "debug",
		"log_format":       "json",
		"shutdown_timeout": "5s",
		"api":              api,
		"telemetry":        map[string]any{"gpu": map[string]any{"enabled": false}, "host": map[string]any{"interval": "10s"}},
		"gossip":           gossip,
	}
	if !c.opts.NoJoin && len(c.Nodes) > 0 && c.Nodes[0] != nil {
		gossip["join"] = []any{c.Nodes[0].GossipAddr}
	}
	if c.opts.Config != nil {
		c.opts.Config(n)
	}
	if mod != nil {
		mod(n)
	}
	c.mu.Lock()
	c.all = append(c.all, n)
	c.mu.Unlock()
	return n
}

// Add makes n one of the fleet's expected members.
func (c *Cluster) Add(n *Node) { c.Nodes = append(c.Nodes, n) }

// pickPorts chooses free loopback ports: TCP for the API, TCP and UDP for
// gossip (memberlist needs both on one port).
func (n *Node) pickPorts() {
	n.API = "http://127.0.0.1:" + strconv.Itoa(freePort(false))
	n.GossipAddr = "127.0.0.1:" + strconv.Itoa(freePort(true))
}

func freePort(udpToo bool) int {
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if !udpToo {
			l.Close()
			return port
		}
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
}

// Set sets a dotted configuration key ("gossip.role") for the node's next
// start or Reload; a nil value deletes the key.
func (n *Node) Set(key string, value any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := n.cfg
	parts := strings.Split(key, ".")
	for _, p := range parts[:len(parts)-1] {
		sub, ok := m[p].(map[string]any)
		if !ok {
			sub = map[string]any{}
			m[p] = sub
		}
		m = sub
	}
	last := parts[len(parts)-1]
	if value == nil {
		delete(m, last)
	} else {
		m[last] = value
	}
}

// Get returns a dotted configuration key's value, or nil.
func (n *Node) Get(key string) any {
	n.mu.Lock()
	defer n.mu.Unlock()
	var v any = n.cfg
	for _, p := range strings.Split(key, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func (n *Node) writeConfig() error {
	n.mu.Lock()
	b, err := yaml.Marshal(n.cfg)
	n.mu.Unlock()
	if err != nil {
		return err
	}
	return os.WriteFile(n.ConfigPath, b, 0o600)
}

// Start runs the node's agent and waits until its API answers.
func (n *Node) Start() {
	n.c.t.Helper()
	if err := n.start(); err != nil {
		n.c.t.Fatal(err)
	}
}

// start runs the agent; when a port it was given has been taken in the
// meantime (another test on the host), it picks new ports and tries again.
func (n *Node) start() error {
	var err error
	for range 3 {
		if err = n.startOnce(); err == nil || n.netns != "" || !strings.Contains(err.Error(), "in use") {
			return err
		}
		n.pickPorts()
		n.Set("api.addr", strings.TrimPrefix(n.API, "http://"))
		n.Set("gossip.bind", n.GossipAddr)
	}
	return err
}

func (n *Node) startOnce() error {
	if n.Running() {
		return fmt.Errorf("%s is already running", n.Name)
	}
	if err := n.writeConfig(); err != nil {
		return err
	}
	n.mu.Lock()
	n.starts++
	fmt.Fprintf(n.output, "==== start %d of %s\n", n.starts, n.Name)
	cmd := exec.Command(n.c.opts.Binary, "agent", "-config", n.ConfigPath)
	if n.netns != "" {
		cmd = exec.Command("ip", "netns", "exec", n.netns, n.c.opts.Binary, "agent", "-config", n.ConfigPath)
	}
	cmd.Stdout, cmd.Stderr = n.output, n.output
	cmd.Env = append(os.Environ(), "VIGIL_CLUSTER_TEST="+n.c.dir)
	if err := cmd.Start(); err != nil {
		n.mu.Unlock()
		return fmt.Errorf("start %s: %w", n.Name, err)
	}
	done := make(chan struct{})
	n.cmd, n.done = cmd, done
	n.mu.Unlock()
	go func() {
		err := cmd.Wait()
		n.mu.Lock()
		n.err = err
		n.mu.Unlock()
		close(done)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("%s exited during start-up (%v):\n%s", n.Name, n.ExitErr(), n.Output())
		default:
		}
		resp, err := http.Get(n.API + "/v1/health")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not serve its API within 20s:\n%s", n.Name, n.Output())
}

// ExitErr is how the node's last process ended: nil for exit status 0
// (or while it runs), else cmd.Wait's error.
func (n *Node) ExitErr() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

// Running reports whether the node's process is alive.
func (n *Node) Running() bool {
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// PID is the agent's process id (0 when never started).
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Kill sends SIGKILL (no graceful leave) and waits for the process to go.
func (n *Node) Kill() { n.signal(syscall.SIGKILL, 10*time.Second) }

// Stop sends SIGTERM (a graceful leave) and waits for the process to exit.
func (n *Node) Stop() { n.signal(syscall.SIGTERM, 20*time.Second) }

func (n *Node) signal(sig syscall.Signal, within time.Duration) {
	n.c.t.Helper()
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil || !n.Running() {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(within):
		_ = cmd.Process.Kill()
		<-done
		n.c.t.Fatalf("%s did not exit within %s of %v", n.Name, within, sig)
	}
}

// Restart stops the node (gracefully) and starts it with its current
// configuration.
func (n *Node) Restart() {
	n.c.t.Helper()
	n.Stop()
	n.Start()
}

// Reload writes the current configuration and sends SIGHUP.
func (n *Node) Reload() {
	n.c.t.Helper()
	if err := n.writeConfig(); err != nil {
		n.c.t.Fatal(err)
	}
	n.mu.Lock()
	cmd := n.cmd
	n.mu.Unlock()
	if cmd == nil || !n.Running() {
		n.c.t.Fatalf("%s is not running", n.Name)
	}
	_ = cmd.Process.Signal(syscall.SIGHUP)
}

// Output is everything the agent printed, across restarts.
func (n *Node) Output() string { return n.output.String() }

// GetJSON fetches an API path into out.
func (n *Node) GetJSON(path string, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.API+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", n.Name, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	return json.Unmarshal(b, out)
}

// Members is the node's view of the fleet.
func (n *Node) Members() ([]fleet.Member, error) {
	var out struct {
		Members []fleet.Member `json:"members"`
	}
	err := n.GetJSON("/v1/fleet/members", &out)
	return out.Members, err
}

// Member returns the node's view of one member.
func (n *Node) Member(name string) (fleet.Member, bool, error) {
	ms, err := n.Members()
	if err != nil {
		return fleet.Member{}, false, err
	}
	for _, m := range ms {
		if m.Name == name {
			return m, true, nil
		}
	}
	return fleet.Member{}, false, nil
}

// Subsystem returns the node's state and reason for one subsystem of
// /v1/status.
func (n *Node) Subsystem(name string) (state, reason string, err error) {
	var st struct {
		Subsystems []struct{ Name, State, Reason string } `json:"subsystems"`
	}
	if err := n.GetJSON("/v1/status", &st); err != nil {
		return "", "", err
	}
	for _, s := range st.Subsystems {
		if s.Name == name {
			return s.State, s.Reason, nil
		}
	}
	return "", "", fmt.Errorf("%s has no subsystem %q", n.Name, name)
}

// CLI runs `vigil ARGS -http-addr NODE` and returns its output and error.
func (n *Node) CLI(args ...string) (string, error) {
	args = append(args, "-http-addr", strings.TrimPrefix(n.API, "http://"))
	out, err := exec.Command(n.c.opts.Binary, args...).CombinedOutput()
	return string(out), err
}

// Running returns the fleet's nodes whose process is alive.
func (c *Cluster) Running() []*Node {
	var out []*Node
	for _, n := range c.Nodes {
		if n.Running() {
			out = append(out, n)
		}
	}
	return out
}

// Wait polls cond every 100ms until it returns nil, and fails the test with
// cond's last error after timeout.
func (c *Cluster) Wait(timeout time.Duration, what string, cond func() error) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = cond(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("waiting for %s: still not true after %s: %v", what, timeout, err)
}

// Converged returns nil when every running node of c.Nodes sees exactly the
// running nodes alive.
func (c *Cluster) Converged() error {
	running := c.Running()
	want := make([]string, 0, len(running))
	for _, n := range running {
		want = append(want, n.Name)
	}
	slices.Sort(want)
	for _, n := range running {
		ms, err := n.Members()
		if err != nil {
			return err
		}
		var alive []string
		for _, m := range ms {
			if m.Status == "alive" {
				alive = append(alive, m.Name)
			}
		}
		slices.Sort(alive)
		if !slices.Equal(alive, want) {
			return fmt.Errorf("%s sees alive %v, want %v", n.Name, alive, want)
		}
	}
	return nil
}

// WaitConverged waits until every running node sees every running node
// alive (and no other node alive).
func (c *Cluster) WaitConverged(timeout time.Duration) {
	c.t.Helper()
	c.Wait(timeout, "the fleet to converge", c.Converged)
}

// WaitStatus waits until every running node other than name itself sees
// member name with the given status.
func (c *Cluster) WaitStatus(name, status string, timeout time.Duration) {
	c.t.Helper()
	c.WaitMember(name, timeout, "status "+status, func(m fleet.Member) error {
		if m.Status != status {
			return fmt.Errorf("status %s", m.Status)
		}
		return nil
	})
}

// WaitMember waits until check passes on every running node's view of
// member name (other than name's own view).
func (c *Cluster) WaitMember(name string, timeout time.Duration, what string, check func(fleet.Member) error) {
	c.t.Helper()
	c.Wait(timeout, name+" "+what+" everywhere", func() error {
		for _, n := range c.Running() {
			if n.Name == name {
				continue
			}
			m, ok, err := n.Member(name)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%s does not know %s", n.Name, name)
			}
			if err := check(m); err != nil {
				return fmt.Errorf("%s sees %s: %w", n.Name, name, err)
			}
		}
		return nil
	})
}

// teardown kills every agent, and fails the test if any is left running
// or if any process still runs from this cluster's directory.
func (c *Cluster) teardown() {
	c.mu.Lock()
	all := append([]*Node(nil), c.all...)
	c.mu.Unlock()
	for _, n := range all {
		n.mu.Lock()
		cmd, done := n.cmd, n.done
		n.mu.Unlock()
		if cmd == nil {
			continue
		}
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				c.t.Errorf("cluster: %s (pid %d) did not die", n.Name, cmd.Process.Pid)
			}
		}
	}
	if c.t.Failed() {
		for _, n := range all {
			c.t.Logf("---- output of %s ----\n%s", n.Name, tail(n.Output(), 60))
		}
	}
	if left := Leftovers(c.dir); len(left) > 0 {
		c.t.Errorf("cluster: processes left running after teardown: %v", left)
	}
}

// Leftovers lists the pids of processes whose environment marks them as
// started by the cluster in dir.
func Leftovers(dir string) []int {
	var pids []int
	mark := []byte("VIGIL_CLUSTER_TEST=" + dir + "\x00")
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		if bytes.Contains(env, mark) {
			// A zombie still reads its environ on some kernels; only
			// running ones count.
			if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && bytes.Contains(stat, []byte(") Z ")) {
				continue
			}
			pids = append(pids, pid)
		}
	}
	return pids
}

func tail(s string, lines int) string {
	ls := strings.Split(s, "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}
