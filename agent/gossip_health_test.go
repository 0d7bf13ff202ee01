package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilml/vigil/agent/config"
	"github.com/vigilml/vigil/agent/fleet"
)

// gossipPort returns a loopback port free for both TCP and UDP.
func gossipPort(t *testing.T) string {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			u.Close()
			return addr
		}
	}
	t.Fatal("no free port")
	return ""
}

// newGossipAgent starts an agent named name whose gossip listens on its own
// loopback port (the local profile) and joins join, if given.
func newGossipAgent(t *testing.T, name string, join ...string) *Agent {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	cfg, err := config.Load(config.Options{Dev: true, Env: func(string) (string, bool) { return "", false }, Override: func(c *config.Config) {
		c.DataDir = dir
		c.API.Addr = "127.0.0.1:0"
		c.NodeName = name
		c.Gossip.Bind = gossipPort(t)
		c.Gossip.Profile = "local"
		c.Gossip.Join = join
	}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, Options{Dev: true})
	if err != nil {
		t.Fatal(err)
	}
	if a.fleet == nil {
		t.Fatal("gossip did not start")
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.startFleet(ctx)
	t.Cleanup(func() {
		cancel()
		a.shutdown()
	})
	return a
}

// startFleetNode runs a bare serf member (no agent) named name on loopback.
func startFleetNode(t *testing.T, name string) (*fleet.Fleet, string) {
	t.Helper()
	cfg := fleet.DefaultConfig()
	cfg.Enabled, cfg.Profile, cfg.Bind = true, "local", gossipPort(t)
	f, err := fleet.New(cfg, fleet.Options{NodeName: name, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	f.Start(context.Background())
	t.Cleanup(func() { f.Shutdown() })
	return f, cfg.Bind
}

type healthBody struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

func getHealth(t *testing.T, url string) (int, healthBody) {
	t.Helper()
	resp, err := http.Get(url + "/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body healthBody
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func gossipSubsystem(a *Agent) SubsystemStatus {
	for _, s := range a.Subsystems() {
		if s.Name == "gossip" {
			return s
		}
	}
	return SubsystemStatus{}
}

// waitGossipCheck polls /v1/health until its gossip check fails.
func waitGossipCheck(t *testing.T, url string) (int, healthBody) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := getHealth(t, url)
		if body.Checks["gossip"] != "" {
			return code, body
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gossip check never failed: health %d %+v", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHealthFailsWhenGossipStops: serf shutting down by itself while the
// agent runs left /v1/health at 200 ok (and vigil status at exit 0) although
// the node was out of the fleet. It now fails the gossip check, which
// withholds the systemd watchdog pings: a restart rejoins the fleet.
func TestHealthFailsWhenGossipStops(t *testing.T) {
	a := newGossipAgent(t, "web-1")
	ts := httptest.NewServer(a.API())
	defer ts.Close()
	if code, body := getHealth(t, ts.URL); code != http.StatusOK {
		t.Fatalf("health = %d %+v while gossip runs", code, body)
	}
	if err := a.fleet.Serf().Shutdown(); err != nil {
		t.Fatal(err)
	}
	code, body := waitGossipCheck(t, ts.URL)
	if code != http.StatusServiceUnavailable || !strings.Contains(body.Checks["gossip"], "gossip stopped unexpectedly") {
		t.Errorf("health = %d %+v, want 503 with the gossip check saying why", code, body)
	}
	if s := gossipSubsystem(a); s.State != StateFailed || !strings.Contains(s.Reason, "gossip stopped unexpectedly") {
		t.Errorf("gossip status = %+v, want failed with the reason", s)
	}
	if _, ok := a.watchdogHealth(context.Background())["gossip"]; !ok {
		t.Error("an unexpected gossip stop does not withhold the watchdog pings; a restart would rejoin")
	}
}

// TestHealthFailsOnLostNameConflict: an agent that joins with another live
// node's name loses serf's conflict vote and stops gossiping. Its health
// check fails naming the name and the other node's address; the watchdog
// is not withheld, since a restarted agent would contest the name again.
func TestHealthFailsOnLostNameConflict(t *testing.T) {
	_, seed := startFleetNode(t, "seed")
	orig, origAddr := startFleetNode(t, "web-1")
	if err := orig.Join([]string{seed}); err != nil {
		t.Fatal(err)
	}
	a := newGossipAgent(t, "web-1", seed)
	ts := httptest.NewServer(a.API())
	defer ts.Close()
	code, body := waitGossipCheck(t, ts.URL)
	want := fmt.Sprintf("gossip stopped: node name web-1 is in use by %s ", origAddr)
	if code != http.StatusServiceUnavailable || !strings.Contains(body.Checks["gossip"], want) {
		t.Errorf("health = %d %+v, want 503 with the gossip check saying %q...", code, body, want)
	}
	if s := gossipSubsystem(a); s.State != StateFailed || !strings.Contains(s.Reason, want) {
		t.Errorf("gossip status = %+v, want failed with %q...", s, want)
	}
	if failing := a.watchdogHealth(context.Background()); failing["gossip"] != "" {
		t.Errorf("a lost name conflict withholds the watchdog pings (%v); a restart cannot fix it", failing)
	}
	if orig.Stopped() != "" {
		t.Errorf("the original web-1 stopped: %s", orig.Stopped())
	}
}
