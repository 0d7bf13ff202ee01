package test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigilml/vigil/agent/fleet"
	"github.com/vigilml/vigil/test/cluster"
)

// TestFleetMembership runs a 5-agent fleet on loopback: join, every member
// seen everywhere with its tags, a tag change by reload, a kill -9 node
// marked failed, its rejoin from the snapshot alone, and a graceful leave.
func TestFleetMembership(t *testing.T) {
	c := cluster.Start(t, cluster.Options{Binary: vigilBin, N: 5, Config: func(n *cluster.Node) {
		n.Set("gossip.role", "inference")
		if n.Name == "node-1" { // simulated GPUs: their utilization is published
			n.Set("telemetry.gpu", map[string]any{"enabled": true, "simulate": 2, "interval": "1s"})
		}
	}})
	c.WaitConverged(30 * time.Second)

	// Tags decoded everywhere.
	c.WaitMember("node-3", 10*time.Second, "with its tags", func(m fleet.Member) error {
		if m.Info.Role != "inference" || m.Info.Version == "" || !strings.HasPrefix(m.Address, "127.0.0.1:") {
			return fmt.Errorf("info %+v address %s", m.Info, m.Address)
		}
		return nil
	})
	c.WaitMember("node-1", 15*time.Second, "with GPU utilization", func(m fleet.Member) error {
		if g := m.Info.Health.GPUUtil; g == nil || *g < 0 || *g > 1 {
			return fmt.Errorf("health %+v (tags %v)", m.Info.Health, m.Tags)
		}
		return nil
	})
	out, err := c.Nodes[0].CLI("members")
	if err != nil {
		t.Fatalf("vigil members: %v\n%s", err, out)
	}
	for _, n := range c.Nodes {
		if !regexp.MustCompile(`(?m)^` + n.Name + `\s+` + regexp.QuoteMeta(n.GossipAddr) + `\s+alive\s+role=inference`).MatchString(out) {
			t.Errorf("vigil members does not list %s alive with its role:\n%s", n.Name, out)
		}
	}
	state, reason, err := c.Nodes[1].Subsystem("gossip")
	if err != nil || state != "running" || !strings.Contains(reason, "5 alive") {
		t.Errorf("gossip status = %s %q (%v)", state, reason, err)
	}

	// Fleet stats: no node has observed a model, so every node answers
	// "not serving", and none is missing. A node starved of CPU on a
	// loaded machine can miss one query's deadline (it is then listed as
	// missing, which is right), so the query is repeated until all five
	// answer in one.
	c.Wait(30*time.Second, "every node answering the fleet stats query", func() error {
		var st fleet.FleetStats
		if err := c.Nodes[0].GetJSON("/v1/fleet/models/llama/stats", &st); err != nil {
			return err
		}
		if st.Nodes != 0 || len(st.NotServing) != 5 || len(st.Missing) != 0 {
			return fmt.Errorf("fleet stats = %+v", st)
		}
		return nil
	})
	// The CLI exits 1 when a node misses the deadline (the answer is
	// incomplete): asked again likewise.
	c.Wait(30*time.Second, "vigil fleet stats to exit 0", func() error {
		out, err := c.Nodes[1].CLI("fleet", "stats", "llama")
		if err != nil || !strings.Contains(out, "Not serving:") || !regexp.MustCompile(`(?m)^Nodes:\s+0 serving$`).MatchString(out) {
			return fmt.Errorf("vigil fleet stats: %v\n%s", err, out)
		}
		return nil
	})

	// A role change by SIGHUP reaches every node.
	c.Nodes[2].Set("gossip.role", "canary")
	c.Nodes[2].Reload()
	c.WaitMember("node-2", 15*time.Second, "with role canary", func(m fleet.Member) error {
		if m.Info.Role != "canary" {
			return fmt.Errorf("role %q", m.Info.Role)
		}
		return nil
	})

	// kill -9: the others mark it failed.
	c.Nodes[4].Kill()
	c.WaitStatus("node-4", "failed", 40*time.Second)
	metrics := getText(t, c.Nodes[0].API+"/metrics")
	if !strings.Contains(metrics, `vigil_fleet_members{status="failed"} 1`) || !strings.Contains(metrics, `vigil_fleet_members{status="alive"} 4`) {
		t.Errorf("metrics do not count the failed member:\n%s", grepLines(metrics, "vigil_fleet_members"))
	}
	if out, _ := c.Nodes[0].CLI("members", "-status", "failed"); !strings.Contains(out, "node-4") || strings.Contains(out, "node-1") {
		t.Errorf("members -status failed:\n%s", out)
	}

	// Restarted without any join address, it rejoins from its snapshot.
	c.Nodes[4].Set("gossip.join", nil)
	c.Nodes[4].Start()
	c.WaitConverged(30 * time.Second)

	// A graceful stop shows as left, not failed.
	c.Nodes[3].Stop()
	c.WaitStatus("node-3", "left", 20*time.Second)
	if !strings.Contains(c.Nodes[3].Output(), "EventMemberLeave: node-3") {
		t.Errorf("node-3 did not log its leave")
	}
}

// TestFleetEncryption runs an encrypted 5-agent fleet: a node with another
// key is refused and says why; the key is rotated across the live fleet
// with vigil keyring; a node holding only the old key is then refused, one
// with the new key joins, and a restarted node keeps the rotated keyring.
func TestFleetEncryption(t *testing.T) {
	oldKey := keygen(t)
	c := cluster.Start(t, cluster.Options{Binary: vigilBin, N: 5, EncryptKey: oldKey})
	c.WaitConverged(30 * time.Second)
	if _, reason, _ := c.Nodes[0].Subsystem("gossip"); !strings.Contains(reason, "encrypted") || strings.Contains(reason, "not encrypted") {
		t.Errorf("gossip status does not say encrypted: %q", reason)
	}

	stranger := c.NewNode("stranger", func(n *cluster.Node) { n.Set("gossip.encrypt_key", keygen(t)) })
	stranger.Start()
	c.Wait(15*time.Second, "the stranger to report the key mismatch", func() error {
		state, reason, err := stranger.Subsystem("gossip")
		if err != nil {
			return err
		}
		if state != "degraded" || !strings.Contains(reason, "key does not match") {
			return fmt.Errorf("%s: %s", state, reason)
		}
		return nil
	})
	if !strings.Contains(stranger.Output(), "key does not match") {
		t.Errorf("the stranger's log does not name the key")
	}
	if err := c.Converged(); err != nil {
		t.Errorf("the stranger disturbed the fleet: %v", err)
	}

	newKey := keygen(t)
	for _, step := range [][]string{{"install", newKey}, {"use", newKey}, {"remove", oldKey}} {
		// serf's keyring queries travel over UDP, and on a loaded machine
		// an answer can miss the query's timeout: the command then fails
		// as incomplete, and docs/fleet.md tells the operator
		// to run the step again (each step is idempotent). So does this
		// test, a few times; anything else fails it at once.
		var out string
		var err error
		for range 3 {
			out, err = c.Nodes[1].CLI("keyring", step[0], step[1])
			if err == nil || !strings.Contains(out, "vigil keyring "+step[0]+": incomplete: ") {
				break
			}
			t.Logf("keyring %s incomplete, running it again as docs/fleet.md says: %s", step[0], out)
		}
		if err != nil || !strings.Contains(out, "done on 5 of 5 nodes") {
			t.Fatalf("keyring %s: %v\n%s", step[0], err, out)
		}
	}
	out, err := c.Nodes[3].CLI("keyring", "list")
	if err != nil || !strings.Contains(out, newKey+"  5/5") || strings.Contains(out, oldKey) {
		t.Fatalf("keyring list after rotation: %v\n%s", err, out)
	}
	c.WaitConverged(10 * time.Second)

	late := c.NewNode("late-old-key", func(n *cluster.Node) { n.Set("gossip.encrypt_key", oldKey) })
	late.Start()
	c.Wait(15*time.Second, "the old-key node to be refused", func() error {
		_, reason, err := late.Subsystem("gossip")
		if err != nil {
			return err
		}
		if !strings.Contains(reason, "key does not match") {
			return fmt.Errorf("reason %q", reason)
		}
		return nil
	})
	fresh := c.NewNode("fresh", func(n *cluster.Node) { n.Set("gossip.encrypt_key", newKey) })
	fresh.Start()
	c.Add(fresh)
	c.WaitConverged(30 * time.Second)

	// node-2 restarts with the old key still in its config: the keyring
	// file, which recorded the rotation, wins.
	c.Nodes[2].Restart()
	// A node that restarts comes back at incarnation 0, below the one the
	// others hold for it, so a peer that missed its refutation learns of
	// it at its next push/pull sync (every 15 s with the local profile):
	// on a loaded machine that can take more than two periods.
	c.WaitConverged(60 * time.Second)
	if !strings.Contains(c.Nodes[2].Output(), "not in the keyring file") {
		t.Errorf("node-2 did not warn that its configured key is stale")
	}
}

// TestFleetKeyringIncomplete: vigil keyring printed only the agent's error
// when an alive node did not answer (502 keyring_incomplete, with the
// partial result in the body). It prints what the nodes that answered
// said, as for a complete answer, and how many did not answer, then the
// error, and exits 2. The silent node is an agent stopped with SIGSTOP,
// asked before the others mark it failed.
func TestFleetKeyringIncomplete(t *testing.T) {
	key := keygen(t)
	c := cluster.Start(t, cluster.Options{Binary: vigilBin, N: 3, EncryptKey: key})
	c.WaitConverged(30 * time.Second)
	frozen := c.Nodes[2]
	pid := frozen.PID()
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
	var out string
	var err error
	for attempt := 1; ; attempt++ {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		out, err = c.Nodes[0].CLI("keyring", "list")
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		// On a loaded machine node-0 may mark the frozen node failed
		// before it asks: then it is not asked at all, and the answer is
		// complete. Let it come back and ask again.
		if !strings.Contains(out, "not asked: node-2") || attempt == 3 {
			break
		}
		t.Logf("node-2 was marked failed before the query; again once it is back:\n%s", out)
		c.WaitConverged(60 * time.Second)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("vigil keyring list with node-2 frozen: %v, want exit 2\n%s", err, out)
	}
	for _, want := range []string{
		"KEY ", "PRIMARY ON", key + "  2/3    2\n",
		"\nno answer in time: 1 of 3 alive nodes (serf does not say which; vigil members lists the alive ones)\n",
		"\nvigil keyring list: incomplete: 1 of 3 alive nodes did not answer in time",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("vigil keyring list with node-2 frozen lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "agent answered 502") {
		t.Errorf("vigil keyring list with node-2 frozen shows the HTTP error, not the answer's:\n%s", out)
	}
}

func keygen(t *testing.T) string {
	t.Helper()
	out, err := runCLI("keygen")
	if err != nil {
		t.Fatalf("vigil keygen: %v\n%s", err, out)
	}
	key := strings.TrimSpace(out)
	if _, err := fleet.DecodeKey(key); err != nil {
		t.Fatalf("keygen printed %q: %v", key, err)
	}
	return key
}

func runCLI(args ...string) (string, error) {
	out, err := exec.Command(vigilBin, args...).CombinedOutput()
	return string(out), err
}

func getText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestGossipPortTaken: in dev mode a taken gossip port leaves gossip
// unavailable and the agent running; in production it fails the start with
// a message naming gossip.bind.
func TestGossipPortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().String()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(cfg, []byte("gossip:\n  enabled: true\n  bind: "+taken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	a := startAgent(t, nil, "-dev", "-config", cfg, "-data-dir", filepath.Join(dir, "dev"), "-http-addr", "127.0.0.1:0")
	waitHealthy(t, "http://"+a.addr, "")
	_, body := get(t, "http://"+a.addr+"/v1/status", "")
	if !regexp.MustCompile(`"name": "gossip",\s*"state": "unavailable",\s*"reason": "gossip: cannot listen on ` + regexp.QuoteMeta(taken) + `: the port is in use`).Match(body) {
		t.Errorf("dev status does not report gossip unavailable:\n%s", body)
	}
	if code, body := get(t, "http://"+a.addr+"/v1/fleet/members", ""); code != 409 || !strings.Contains(string(body), "gossip_disabled") {
		t.Errorf("members without gossip = %d %s", code, body)
	}

	cmd := exec.Command(vigilBin, "agent", "-config", cfg, "-data-dir", filepath.Join(dir, "prod"), "-http-addr", "127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "port is in use") || !strings.Contains(string(out), "gossip.bind") {
		t.Errorf("production start with a taken gossip port: %v\n%s", err, out)
	}
}

// TestFleetCLIRefusesBadFlags: the fleet commands refuse a -format or
// -status they do not know, and stray arguments, before asking any agent,
// instead of silently printing text or an empty list.
func TestFleetCLIRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"members", "-format", "yaml"}, `vigil members: -format "yaml": want text or json`},
		{[]string{"members", "-status", "dead"}, `vigil members: -status: "dead" is not alive, leaving, left or failed`},
		{[]string{"members", "node-1"}, `vigil members: takes no arguments`},
		{[]string{"fleet", "stats", "llama", "-format", "xml"}, `vigil fleet stats: -format "xml": want text or json`},
		{[]string{"keyring", "list", "-format", "yaml"}, `vigil keyring list: -format "yaml": want text or json`},
	} {
		// The agent address is closed: the command must fail on its flags first.
		cmd := exec.Command(vigilBin, append(tc.args, "-http-addr", "127.0.0.1:1")...)
		out, err := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); err == nil || code != 2 || !strings.Contains(string(out), tc.want) {
			t.Errorf("vigil %s: exit %d (%v), want 2 and %q:\n%s", strings.Join(tc.args, " "), code, err, tc.want, out)
		}
	}
}

// TestFleetNameConflictAPI: a node that joins with a taken node_name loses
// the conflict vote and stops gossiping; its fleet endpoints and CLI then
// say so (409 gossip_stopped) instead of listing the members it last knew
// as alive, waiting out a stats query no one receives, or blaming the
// fleet for a keyring answer that never came.
func TestFleetNameConflictAPI(t *testing.T) {
	c := cluster.Start(t, cluster.Options{Binary: vigilBin, N: 3})
	c.WaitConverged(30 * time.Second)
	dup := c.NewNode("dup", func(n *cluster.Node) { n.Set("node_name", "node-1") })
	dup.Start()
	c.Wait(30*time.Second, "the duplicate to stop gossiping", func() error {
		state, reason, err := dup.Subsystem("gossip")
		if err != nil {
			return err
		}
		if state != "failed" {
			return fmt.Errorf("%s: %s", state, reason)
		}
		return nil
	})
	for _, path := range []string{"/v1/fleet/members", "/v1/fleet/models/llama/stats"} {
		err := dup.GetJSON(path, &struct{}{})
		if err == nil || !strings.Contains(err.Error(), ": 409 ") || !strings.Contains(err.Error(), `"gossip_stopped"`) || !strings.Contains(err.Error(), `node name node-1 is in use by `) {
			t.Errorf("GET %s on the stopped duplicate: %v", path, err)
		}
	}
	if out, err := dup.CLI("members"); err == nil || !strings.Contains(out, "set a unique node_name") {
		t.Errorf("vigil members on the stopped duplicate: %v\n%s", err, out)
	}
	if err := c.Converged(); err != nil {
		t.Errorf("the duplicate disturbed the fleet: %v", err)
	}
	// Stopping it is a clean stop: it exited 1 with "agent stopped with
	// errors: Leave called after Shutdown".
	dup.Stop()
	if err := dup.ExitErr(); err != nil || strings.Contains(dup.Output(), "Leave called after Shutdown") {
		t.Errorf("SIGTERM to the stopped duplicate: %v\n%s", err, dup.Output())
	}
}

// TestFleetStatsCLIWaitsForTheQuery: gossip.query_timeout may be up to 1m,
// and the agent answers a stats query only when every alive node has or
// that timeout passed; with the client's usual 10 s, vigil fleet stats
// failed with "cannot reach the agent ... (is it running?)" whenever one
// node was silent and query_timeout was over 10 s.
func TestFleetStatsCLIWaitsForTheQuery(t *testing.T) {
	out, err := runCLI("fleet", "stats", "-h")
	if err != nil || !regexp.MustCompile(`-timeout duration\s+how long to wait for the agent \(default 1m10s\)`).MatchString(out) {
		t.Errorf("vigil fleet stats -h: %v\n%s", err, out)
	}
}
