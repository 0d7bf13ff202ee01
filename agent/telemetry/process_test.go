package telemetry

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shirou/gopsutil/v4/process"
)

// burner starts a shell that spends some CPU time and then sleeps (exec
// keeps the pid and its CPU times), and waits until it sleeps, having used at
// least one clock tick of CPU.
func burner(t *testing.T) (*exec.Cmd, float64) {
	t.Helper()
	cmd := exec.Command("sh", "-c", `i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; exec sleep 300`)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var cpu float64
	waitFor(t, "a burner's CPU time", func() bool {
		p, err := process.NewProcess(int32(cmd.Process.Pid))
		if err != nil {
			return false
		}
		ts, err := p.Times()
		if err != nil {
			return false
		}
		// Done burning once it sleeps.
		st, _ := p.Status()
		cpu = ts.User + ts.System
		return cpu > 0 && len(st) > 0 && st[0] == process.Sleep
	})
	return cmd, cpu
}

// TestModelServerCPUNeverFalls: vigil_model_server_cpu_seconds_total adds
// up a model server's processes; when one of them exits the counter must
// not fall (it fell by the exited process's CPU time, to a value
// Prometheus takes for a reset and adds whole to rate(): a spike of every
// remaining process's lifetime CPU). It counts from the agent's start:
// CPU a process used before that is not counted, a process started later
// counts whole.
func TestModelServerCPUNeverFalls(t *testing.T) {
	old, oldCPU := burner(t) // running before the collector starts
	cg := filepath.Join(t.TempDir(), "cgroup")
	unit := filepath.Join(cg, "srv")
	if err := os.MkdirAll(unit, 0o755); err != nil {
		t.Fatal(err)
	}
	setProcs := func(cmds ...*exec.Cmd) {
		var b strings.Builder
		for _, c := range cmds {
			fmt.Fprintln(&b, c.Process.Pid)
		}
		if err := os.WriteFile(filepath.Join(unit, "cgroup.procs"), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	setProcs(old)
	cfg := hostOnly()
	cfg.Host.Processes = []ProcessConfig{{Name: "srv", Cgroup: "/srv"}}
	tel := newTel(t, cfg)
	tel.procs.cgroupRoot = cg
	cpuTotal := func() float64 {
		t.Helper()
		tickAll(t, tel)
		return mustSeries(t, gather(t, tel), "vigil_model_server_cpu_seconds_total", map[string]string{"name": "srv"})
	}
	if v := cpuTotal(); v != 0 {
		t.Errorf("first tick: %v CPU seconds, want 0: the %v s the process used before the agent started do not count", v, oldCPU)
	}
	// Two processes started since.
	a, aCPU := burner(t)
	b, bCPU := burner(t)
	setProcs(old, a, b)
	v1 := cpuTotal()
	if v1 < aCPU+bCPU-1e-9 {
		t.Errorf("with two processes started after the agent: %v CPU seconds, want at least their %v + %v", v1, aCPU, bCPU)
	}
	// One exits.
	a.Process.Kill()
	a.Wait()
	setProcs(old, b)
	if v2 := cpuTotal(); v2 < v1 {
		t.Errorf("after one of three processes exited the counter fell from %v to %v", v1, v2)
	}
	// All are replaced by a new one (the server restarted).
	c, cCPU := burner(t)
	setProcs(c)
	if v3 := cpuTotal(); v3 < v1+cCPU-1e-9 {
		t.Errorf("after the server restarted: %v CPU seconds, want at least %v + %v", v3, v1, cCPU)
	}
}
