package agent

import (
	"context"
	"errors"
	"testing"
)

// TestWatchdogIgnoresChecksARestartCannotFix checks that a failing store
// check (a full disk) fails /v1/health but does not withhold systemd
// watchdog pings: systemd would restart the agent over it again and again
// until StartLimitBurst gives up, taking the live /metrics down too. Other
// failing checks still withhold them.
func TestWatchdogIgnoresChecksARestartCannotFix(t *testing.T) {
	a, _, _ := newTestAgent(t)
	a.addCheck("store", func(context.Context) error { return errors.New("store: disk full") })
	if _, ok := a.Health(context.Background())["store"]; !ok {
		t.Fatal("the store check does not fail /v1/health")
	}
	if failing := a.watchdogHealth(context.Background()); len(failing) != 0 {
		t.Errorf("watchdog sees failing checks %v; want none", failing)
	}
	a.addCheck("telemetry", func(context.Context) error { return errors.New("stale") })
	if _, ok := a.watchdogHealth(context.Background())["telemetry"]; !ok {
		t.Error("a failing telemetry check no longer withholds watchdog pings")
	}
}
