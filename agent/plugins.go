package agent

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigilml/vigil/agent/api"
	"github.com/vigilml/vigil/agent/forward"
	"github.com/vigilml/vigil/agent/pluginhost"
)

// DevPluginDir is where `vigil agent -dev` looks for the build's own
// plugins: bin/plugins beside bin/vigil, wherever the agent is started from.
func DevPluginDir() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	return filepath.Join(filepath.Dir(exe), "plugins")
}

// openPlugins prepares the plugin host; Run starts the plugins.
func (a *Agent) openPlugins() error {
	a.corrupt.watch(a.dir.Join("plugins.db"))
	h, err := pluginhost.New(a.cfg.Plugins, pluginhost.Options{
		CatalogPath: a.dir.Join("plugins.db"),
		DevDir:      a.opts.DevPluginDir,
		Logger:      a.logger.With("subsystem", "plugins"),
		Registerer:  a.reg,
	})
	if err != nil {
		return err
	}
	// A setting a plugin rejects is named with the file and line that
	// set it.
	h.SetWhere(a.cfg.Where)
	a.plugins = h
	a.setStatus("plugins", func() SubsystemStatus {
		counts := map[pluginhost.State]int{}
		for _, p := range h.List() {
			counts[p.State]++
		}
		s := SubsystemStatus{Name: "plugins", State: StateRunning}
		var parts []string
		for _, st := range []pluginhost.State{pluginhost.StateRunning, pluginhost.StateStopped, pluginhost.StateStarting, pluginhost.StateBackoff, pluginhost.StateFailed, pluginhost.StateRefused, pluginhost.StateUntrusted} {
			if counts[st] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
			}
		}
		if len(parts) == 0 {
			s.Reason = "no plugins installed"
		} else {
			s.Reason = strings.Join(parts, ", ")
		}
		if counts[pluginhost.StateFailed]+counts[pluginhost.StateBackoff]+counts[pluginhost.StateRefused] > 0 {
			s.State = StateDegraded
		}
		return s
	})
	a.api.HandleFunc("GET /v1/plugins", api.Read, func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, http.StatusOK, map[string]any{"plugins": h.List()})
	})
	a.api.HandleFunc("POST /v1/plugins/register", api.Write, func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Path string `json:"path"`
			Name string `json:"name"`
		}
		if err := api.DecodeJSON(r, &req); err != nil {
			api.WriteError(w, err)
			return
		}
		if !filepath.IsAbs(req.Path) {
			// A relative path would be resolved against the agent's
			// working directory, not the caller's.
			api.WriteError(w, api.BadRequest("field path is required and must be absolute: the plugin binary's path, got %q", req.Path))
			return
		}
		e, err := h.Register(r.Context(), req.Path, req.Name)
		if err != nil {
			api.WriteError(w, api.BadRequest("%v", err))
			return
		}
		api.WriteJSON(w, http.StatusCreated, e)
	})
	a.api.HandleFunc("DELETE /v1/plugins/{name}", api.Write, func(w http.ResponseWriter, r *http.Request) {
		if err := h.Unregister(r.Context(), r.PathValue("name")); err != nil {
			api.WriteError(w, pluginError(err))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	a.api.HandleFunc("POST /v1/plugins/{name}/restart", api.Write, func(w http.ResponseWriter, r *http.Request) {
		if err := h.Restart(r.PathValue("name")); err != nil {
			api.WriteError(w, pluginError(err))
			return
		}
		api.WriteJSON(w, http.StatusAccepted, map[string]string{"status": "restarting"})
	})
	return nil
}

// pluginError is 404 for an unknown plugin and 409 for one whose state
// forbids the request (a refused plugin cannot be restarted, a packaged one
// not unregistered).
func pluginError(err error) error {
	if errors.Is(err, pluginhost.ErrNoPlugin) {
		return api.Errorf(http.StatusNotFound, api.CodeNotFound, "%v", err)
	}
	return api.Errorf(http.StatusConflict, "conflict", "%v", err)
}

// openForwarder prepares forwarding when remote_write upstreams are set.
func (a *Agent) openForwarder() error {
	if len(a.cfg.Forward.RemoteWrite) == 0 {
		a.setStatus("forward", func() SubsystemStatus {
			return SubsystemStatus{Name: "forward", State: StateDisabled, Reason: "no forward.remote_write upstreams configured"}
		})
		// Off, like drift and gossip when off: 409 with its own code,
		// not the 404 of an endpoint that does not exist.
		a.api.HandleFunc("GET /v1/forward", api.Read, func(w http.ResponseWriter, r *http.Request) {
			api.WriteError(w, api.Errorf(http.StatusConflict, "forward_disabled", "forwarding is not configured on this agent (forward.remote_write lists no upstreams; adding some needs a restart)"))
		})
		return nil
	}
	fcfg := a.cfg.Forward
	if fcfg.ExternalLabels == nil {
		// Keep the series of the fleet's agents apart at a shared receiver.
		fcfg.ExternalLabels = map[string]string{"node": a.cfg.NodeName}
	}
	f, err := forward.New(fcfg, a.store, a.logger.With("subsystem", "forward"), a.reg)
	if err != nil {
		return fmt.Errorf("forward: %w", err)
	}
	a.forwarder = f
	a.setStatus("forward", func() SubsystemStatus {
		s := SubsystemStatus{Name: "forward", State: StateRunning}
		var bad []string
		for _, u := range f.Status() {
			if u.LastError != "" && !u.Up {
				bad = append(bad, fmt.Sprintf("%s: %s (lag %s)", u.Name, u.LastError, time.Duration(u.LagSeconds*float64(time.Second)).Round(time.Second).String()))
			}
		}
		if len(bad) > 0 {
			// Samples wait durably in the store: degraded, not failed.
			s.State, s.Reason = StateDegraded, strings.Join(bad, "; ")
		}
		return s
	})
	a.api.HandleFunc("GET /v1/forward", api.Read, func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, http.StatusOK, map[string]any{"upstreams": f.Status()})
	})
	return nil
}
