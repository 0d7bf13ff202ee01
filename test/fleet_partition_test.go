package test

import (
	"fmt"
	"testing"
	"time"

	"github.com/vigilml/vigil/agent/fleet"
	"github.com/vigilml/vigil/test/cluster"
)

// TestFleetPartition puts 6 agents in their own network namespaces, cuts
// the fleet in two halves with nftables, checks that each half marks the
// other failed while staying whole itself, heals the cut and checks that
// the fleet converges again; then, under 10 % packet loss, a tag change
// still reaches every node and nobody is marked failed. Needs root.
func TestFleetPartition(t *testing.T) {
	c := cluster.Start(t, cluster.Options{Binary: vigilBin, N: 6, Netns: true})
	c.WaitConverged(30 * time.Second)

	a, b := c.Nodes[:3], c.Nodes[3:]
	c.Partition(a, b)
	sees := func(viewers, targets []*cluster.Node, status string) func() error {
		return func() error {
			for _, v := range viewers {
				for _, tg := range targets {
					m, ok, err := v.Member(tg.Name)
					if err != nil {
						return err
					}
					if !ok || m.Status != status {
						return fmt.Errorf("%s sees %s as %q", v.Name, tg.Name, m.Status)
					}
				}
			}
			return nil
		}
	}
	c.Wait(60*time.Second, "each half to mark the other failed", func() error {
		if err := sees(a, b, "failed")(); err != nil {
			return err
		}
		return sees(b, a, "failed")()
	})
	if err := sees(a, a, "alive")(); err != nil {
		t.Errorf("half a fell apart: %v", err)
	}
	if err := sees(b, b, "alive")(); err != nil {
		t.Errorf("half b fell apart: %v", err)
	}

	c.Heal()
	c.WaitConverged(60 * time.Second)

	c.Loss(10)
	c.Nodes[4].Set("gossip.role", "lossy")
	c.Nodes[4].Reload()
	c.WaitMember("node-4", 30*time.Second, "with role lossy", func(m fleet.Member) error {
		if m.Info.Role != "lossy" {
			return fmt.Errorf("role %q", m.Info.Role)
		}
		return nil
	})
	if err := c.Converged(); err != nil {
		t.Errorf("10 %% loss broke the fleet: %v", err)
	}
	c.Heal()
}
