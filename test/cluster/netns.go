package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// network puts each node in its own network namespace, all joined by veth
// pairs to one bridge in the host namespace (which the test reaches the
// APIs through). Partitions and packet loss are nftables rules inside the
// nodes' namespaces. It needs root, iproute2 and nftables.
type network struct {
	t      testing.TB
	id     string // short unique id in interface and namespace names
	bridge string
	prefix string // first three octets: "10.213.7"
	nodes  int
}

func newNetwork(t testing.TB) *network {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("cluster: Options.Netns needs root (network namespaces, veth, nftables); run the test as root")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("cluster: %s not found: install Debian's iproute2 and nftables (`make test-deps` does it as root)", tool)
		}
	}
	pid := os.Getpid()
	nw := &network{t: t, id: fmt.Sprintf("%05d", pid%100000), prefix: fmt.Sprintf("10.213.%d", pid%250+1)}
	nw.bridge = "vgbr" + nw.id
	t.Cleanup(nw.teardown)
	nw.run("ip", "link", "add", nw.bridge, "type", "bridge")
	nw.run("ip", "addr", "add", nw.prefix+".254/24", "dev", nw.bridge)
	nw.run("ip", "link", "set", nw.bridge, "up")
	return nw
}

func (nw *network) run(args ...string) {
	nw.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		nw.t.Fatalf("cluster: %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// addNode creates a namespace with one veth into the bridge and returns
// its name and IP.
func (nw *network) addNode() (ns, ip string) {
	nw.t.Helper()
	i := nw.nodes
	nw.nodes++
	if i >= 250 {
		nw.t.Fatal("cluster: at most 250 nodes per network")
	}
	ns = fmt.Sprintf("vg%s-%d", nw.id, i)
	ip = fmt.Sprintf("%s.%d", nw.prefix, i+1)
	host, peer := fmt.Sprintf("vg%sh%d", nw.id, i), fmt.Sprintf("vg%sn%d", nw.id, i)
	nw.run("ip", "netns", "add", ns)
	nw.run("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
	nw.run("ip", "link", "set", peer, "netns", ns)
	nw.run("ip", "link", "set", host, "master", nw.bridge, "up")
	nw.run("ip", "netns", "exec", ns, "ip", "addr", "add", ip+"/24", "dev", peer)
	nw.run("ip", "netns", "exec", ns, "ip", "link", "set", peer, "up")
	nw.run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
	nw.run("ip", "netns", "exec", ns, "nft", "add", "table", "inet", "vigiltest")
	for _, hook := range []string{"input", "output"} {
		nw.run("ip", "netns", "exec", ns, "nft", "add", "chain", "inet", "vigiltest", hook,
			"{ type filter hook "+hook+" priority 0 ; policy accept ; }")
	}
	return ns, ip
}

func (nw *network) teardown() {
	for i := range nw.nodes {
		_ = exec.Command("ip", "netns", "del", fmt.Sprintf("vg%s-%d", nw.id, i)).Run()
	}
	_ = exec.Command("ip", "link", "del", nw.bridge).Run()
}

func (n *Node) nft(rule ...string) {
	n.c.t.Helper()
	n.c.net.run(append([]string{"ip", "netns", "exec", n.netns, "nft"}, rule...)...)
}

// Partition cuts all traffic between the nodes of a and those of b, in both
// directions, until Heal. It needs Options.Netns.
func (c *Cluster) Partition(a, b []*Node) {
	c.t.Helper()
	c.needNet()
	ips := func(ns []*Node) string {
		var s []string
		for _, n := range ns {
			s = append(s, n.ip)
		}
		return "{ " + strings.Join(s, ", ") + " }"
	}
	for _, side := range [][2][]*Node{{a, b}, {b, a}} {
		other := ips(side[1])
		for _, n := range side[0] {
			n.nft("add", "rule", "inet", "vigiltest", "input", "ip", "saddr", other, "drop")
			n.nft("add", "rule", "inet", "vigiltest", "output", "ip", "daddr", other, "drop")
		}
	}
}

// Loss drops about percent % of the packets each node receives from other
// nodes (nftables numgen random), until Heal.
func (c *Cluster) Loss(percent int) {
	c.t.Helper()
	c.needNet()
	for _, n := range c.all {
		if n.netns == "" {
			continue
		}
		n.nft("add", "rule", "inet", "vigiltest", "input", "ip", "saddr", "!=", c.net.prefix+".254",
			"numgen", "random", "mod", "100", "<", fmt.Sprint(percent), "drop")
	}
}

// Heal removes every partition and loss rule.
func (c *Cluster) Heal() {
	c.t.Helper()
	c.needNet()
	for _, n := range c.all {
		if n.netns == "" {
			continue
		}
		n.nft("flush", "chain", "inet", "vigiltest", "input")
		n.nft("flush", "chain", "inet", "vigiltest", "output")
	}
}

func (c *Cluster) needNet() {
	if c.net == nil {
		c.t.Fatal("cluster: partitions and loss need Options.Netns")
	}
}
