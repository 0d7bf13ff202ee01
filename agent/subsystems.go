package agent

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/vigilml/vigil/agent/store"
	"github.com/vigilml/vigil/agent/telemetry"
)

// sinkState remembers whether the latest hand-over of telemetry samples to
// the store worked, so that a failing store shows in /v1/health and the log
// says so once per episode rather than every tick.
type sinkState struct {
	mu      sync.Mutex
	err     error
	since   time.Time
	dropped uint64
}

// openStore opens the sample store in the data directory.
func (a *Agent) openStore() error {
	cfg := a.cfg.Store.WithDataDir(a.dir.Path)
	a.corrupt.watch(cfg.Path)
	st, err := store.Open(cfg, a.logger.With("subsystem", "store"))
	if err != nil {
		return fmt.Errorf("open sample store: %w", err)
	}
	a.store = st
	a.reg.MustRegister(st)
	a.setStatus("store", func() SubsystemStatus {
		s := SubsystemStatus{Name: "store", State: StateRunning}
		if since, err := a.sink.failing(); err != nil {
			s.State, s.Reason = StateDegraded, fmt.Sprintf("writes failing since %s: %v", since.Format(time.RFC3339), err)
		}
		return s
	})
	a.addCheck("store", func(context.Context) error {
		if since, err := a.sink.failing(); err != nil {
			return fmt.Errorf("sample writes failing since %s: %w", since.Format(time.RFC3339), err)
		}
		return nil
	})
	return nil
}

func (s *sinkState) failing() (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.since, s.err
}

// storeSamples is telemetry's sample sink: each tick's samples become one
// durable Append.
func (a *Agent) storeSamples(ctx context.Context, samples []telemetry.Sample) error {
	out := make([]store.Sample, len(samples))
	for i, s := range samples {
		labels := make(store.Labels, 0, len(s.Labels))
		for _, kv := range s.SortedLabels() {
			labels = append(labels, store.Label{Name: kv[0], Value: kv[1]})
		}
		out[i] = store.Sample{Name: s.Name, Labels: labels, Time: s.Time, Value: s.Value}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := a.store.Append(ctx, out)

	a.sink.mu.Lock()
	defer a.sink.mu.Unlock()
	switch {
	case err != nil && a.sink.err == nil:
		a.sink.err, a.sink.since = err, time.Now()
		a.logger.Error("storing telemetry samples failed; telemetry stays live on /metrics but history has a gap", "err", err)
	case err != nil:
		a.sink.err = err
		a.sink.dropped += uint64(len(out))
	case a.sink.err != nil:
		a.logger.Info("storing telemetry samples works again", "failing_for", time.Since(a.sink.since).Round(time.Second).String(), "samples_lost", a.sink.dropped)
		a.sink.err, a.sink.dropped = nil, 0
	}
	return err
}

// startTelemetry builds the collectors; Run starts them.
func (a *Agent) startTelemetry() error {
	t, err := telemetry.New(a.cfg.Telemetry, a.logger.With("subsystem", "telemetry"),
		telemetry.WithSampleSink(a.storeSamples), telemetry.WithHostname(a.cfg.NodeName))
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	a.telemetry = t
	a.reg.MustRegister(t)
	for _, name := range []string{"gpu", "host", "process"} {
		a.setStatus("telemetry."+name, func() SubsystemStatus { return a.collectorStatus(name) })
	}
	a.addCheck("telemetry", func(context.Context) error {
		var stale []string
		for _, cs := range t.Status() {
			if cs.Stale {
				stale = append(stale, fmt.Sprintf("%s (last sample %s ago, interval %gs)", cs.Name, time.Since(cs.LastSuccess).Round(time.Second), cs.IntervalSeconds))
			}
		}
		if len(stale) > 0 {
			return fmt.Errorf("stale telemetry: %s", strings.Join(stale, ", "))
		}
		return nil
	})
	return nil
}

// collectorStatus turns a telemetry collector's status into a subsystem
// state. A missing GPU driver is "unavailable", not a failure: the agent
// is meant to run on hosts without GPUs.
func (a *Agent) collectorStatus(name string) SubsystemStatus {
	s := SubsystemStatus{Name: "telemetry." + name, State: StateDisabled}
	for _, cs := range a.telemetry.Status() {
		if cs.Name != name {
			continue
		}
		switch {
		case cs.Reason == "not collected yet":
			s.State, s.Reason = StateRunning, "starting"
		case cs.Stale:
			s.State, s.Reason = StateDegraded, fmt.Sprintf("stale: last sample %s ago", time.Since(cs.LastSuccess).Round(time.Second))
		case !cs.Up && name == "gpu" && strings.Contains(cs.Reason, "no NVML driver"):
			s.State, s.Reason = StateUnavailable, cs.Reason
		case !cs.Up:
			s.State, s.Reason = StateFailed, cs.Reason
		case cs.Simulated:
			s.State, s.Reason = StateRunning, "SIMULATED GPUs (telemetry.gpu.simulate), not real hardware"
		default:
			s.State, s.Reason = StateRunning, cs.Reason
		}
		return s
	}
	if name == "process" {
		s.Reason = "no telemetry.host.processes configured"
	}
	return s
}

// waitFirstTicks gives the collectors a moment to report, so the banner
// can say whether there is a GPU.
func (a *Agent) waitFirstTicks(max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		pending := false
		for _, cs := range a.telemetry.Status() {
			if cs.Reason == "not collected yet" {
				pending = true
			}
		}
		if !pending {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
