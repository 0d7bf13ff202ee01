package agent

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// systemdNotifier speaks the sd_notify protocol to the service manager that
// started the agent (systemd with Type=notify): READY=1 once the API
// serves, WATCHDOG=1 pings while the agent is healthy, STOPPING=1 when
// shutdown begins. Without NOTIFY_SOCKET (a shell, a container, a test)
// every message is a no-op, so the agent behaves the same everywhere else.
//
// The watchdog pings only while every health check passes. A ping is proof
// of life that systemd acts on: if the agent is wedged (a check that hangs,
// a lock that is never released) or stays unhealthy for a whole WatchdogSec,
// systemd kills and restarts it (Restart=on-failure). A single failing
// check skips one ping and is logged; it takes failures for the whole
// WatchdogSec before systemd acts. Checks that a restart cannot fix should
// therefore report through /v1/status rather than fail /v1/health, be
// listed in restartCannotFix, or return a restartCannotFixError.
type systemdNotifier struct {
	logger *slog.Logger
	health func(context.Context) map[string]string

	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// notifySystemd sends READY=1 and, when systemd asked for a watchdog
// (WATCHDOG_USEC, and WATCHDOG_PID if set naming this process), starts
// pinging at half the interval, as sd_watchdog_enabled(3) advises. Call
// Stopping when shutdown starts.
func notifySystemd(logger *slog.Logger, health func(context.Context) map[string]string) *systemdNotifier {
	n := &systemdNotifier{logger: logger, health: health}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	if !n.send(daemon.SdNotifyReady) {
		return n
	}
	interval, err := daemon.SdWatchdogEnabled(false)
	switch {
	case err != nil:
		n.logger.Warn("systemd watchdog settings are not valid; not sending watchdog pings", "err", err.Error())
	case interval > 0:
		n.logger.Info("systemd watchdog enabled", "timeout", interval.String(), "ping_every", (interval / 2).String())
		n.wg.Add(1)
		go n.watchdog(ctx, interval/2)
	}
	return n
}

// send delivers one state line and reports whether a service manager
// received it. Failures are logged, never fatal: a missing notification
// makes systemd time out and restart us, which is the right outcome.
func (n *systemdNotifier) send(state string) bool {
	sent, err := daemon.SdNotify(false, state)
	if err != nil {
		n.logger.Warn("sd_notify failed", "state", state, "err", err.Error())
	}
	return sent
}

func (n *systemdNotifier) watchdog(ctx context.Context, every time.Duration) {
	defer n.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	unhealthy := false
	for {
		// The checks get at most one ping period, so that a hanging check
		// shows up as missed pings, not as a goroutine stuck forever.
		cctx, cancel := context.WithTimeout(ctx, every)
		failing := n.health(cctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case len(failing) == 0:
			if unhealthy {
				n.logger.Info("health checks pass again; resuming systemd watchdog pings")
				unhealthy = false
			}
			n.send(daemon.SdNotifyWatchdog)
		default:
			if !unhealthy {
				n.logger.Warn("health checks failing; withholding systemd watchdog pings (systemd restarts the agent if this lasts WatchdogSec)", "checks", failing)
				unhealthy = true
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Stopping stops the watchdog pings and sends STOPPING=1, so that systemd
// knows the exit that follows is deliberate. Safe to call more than once.
func (n *systemdNotifier) Stopping() {
	n.once.Do(func() {
		n.cancel()
		n.wg.Wait()
		n.send(daemon.SdNotifyStopping)
	})
}

// restartCannotFix are health checks that fail /v1/health but do not
// withhold watchdog pings, because a restart does not cure them: a full or
// failing disk (store) stays so, and systemd would restart the agent over
// it until StartLimitBurst gives up on the unit, taking the live /metrics
// down with it. A check whose failures differ returns a
// restartCannotFixError for those a restart cannot cure.
var restartCannotFix = []string{"store"}

// restartCannotFixError marks a failure of a check that a restart does not
// cure although the check's other failures it does. The gossip check uses
// it for a lost name conflict: the restarted agent comes back with the
// same node_name, rejoins from its snapshot and contests the name again,
// so it loses again (restarted until StartLimitBurst gives up on the unit)
// or wins and stops the other node's gossip instead; only a unique
// node_name fixes it. Any other stop of gossip a restart does fix: the
// agent rejoins the fleet from its snapshot.
type restartCannotFixError struct{ error }

func (e restartCannotFixError) Unwrap() error { return e.error }

// watchdogHealth is Health without the checks in restartCannotFix and the
// failures marked restartCannotFixError: what gates the systemd watchdog
// pings.
func (a *Agent) watchdogHealth(ctx context.Context) map[string]string {
	failing := map[string]string{}
	for name, err := range a.health(ctx) {
		var cannot restartCannotFixError
		if slices.Contains(restartCannotFix, name) || errors.As(err, &cannot) {
			continue
		}
		failing[name] = err.Error()
	}
	return failing
}
