package pluginhost

import (
	"fmt"
	"strings"
	"time"
)

// Instance is a further running copy of a trusted plugin under a name of
// its own, with its own configuration: the gateway runs one openai plugin
// process per upstream (openai-main, local-vllm, ...) from one binary.
// An instance is trusted exactly as its plugin is (same binary, same
// SHA-256) and supervised like any plugin; it is listed in /v1/plugins
// with source "instance:PLUGIN".
type Instance struct {
	// Name is the instance's name, distinct from every plugin's.
	Name string
	// Plugin is the name of the trusted plugin whose binary it runs.
	Plugin string
	// Config is handed to the plugin's Configure call after every start,
	// in place of plugins.config.
	Config map[string]any
	// ConfigKey is where Config comes from in the agent's configuration
	// (such as "gateway.providers[1]"), to name a rejected field.
	ConfigKey string
	// SetBy names, for a Config key the operator did not write as such,
	// the key that set it (the gateway's "api_key" comes from
	// "api_key_env"), so that a rejection names the operator's key.
	SetBy map[string]string
	// CallTimeout, when positive, replaces plugins.call_timeout for calls
	// into this instance (long streams need more than a detector call).
	CallTimeout time.Duration
}

// SetInstances declares the plugin instances to run, replacing any set
// before. It checks names; an instance of a plugin that is missing or
// refused is listed as refused and every call to it fails as unavailable.
// Call it before Start.
func (h *Host) SetInstances(insts []Instance) error {
	seen := map[string]bool{}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, in := range insts {
		switch {
		case !nameRE.MatchString(in.Name):
			return fmt.Errorf("plugin instance name %q is not valid (lower-case letters, digits, '.', '_', '-')", in.Name)
		case seen[in.Name]:
			return fmt.Errorf("plugin instance %q is declared twice", in.Name)
		}
		if m, ok := h.plugins[in.Name]; ok && m.instanceOf == "" {
			return fmt.Errorf("plugin instance %q has the name of an installed plugin; choose another", in.Name)
		}
		seen[in.Name] = true
	}
	for name, m := range h.plugins {
		if m.instanceOf != "" {
			delete(h.plugins, name)
		}
	}
	h.instances = append([]Instance(nil), insts...)
	h.addInstancesLocked("")
	return nil
}

// addInstancesLocked adds a managed entry per instance (of the named
// plugin only, unless only is empty), from its plugin's entry as
// discovered, and returns the entries it replaced, for the caller to stop
// once h.mu is released. h.mu is held.
func (h *Host) addInstancesLocked(only string) []*managed {
	var replaced []*managed
	for _, in := range h.instances {
		if only != "" && in.Plugin != only {
			continue
		}
		if old, ok := h.plugins[in.Name]; ok && old.instanceOf != "" {
			replaced = append(replaced, old)
		}
		base, ok := h.plugins[in.Plugin]
		var m *managed
		switch {
		case !ok || strings.HasPrefix(in.Plugin, "untrusted:"):
			m = newManaged(h, Entry{Name: in.Name, Source: "instance:" + in.Plugin}, StateRefused,
				fmt.Sprintf("instance of plugin %q, which is not installed and trusted: no trusted plugin of that name in %s (`vigil plugins list` shows what is there)", in.Plugin, strings.Join(h.dirs(), ", ")))
		case base.state == StateRefused || base.state == StateUntrusted:
			e := base.entry
			e.Name, e.Source = in.Name, "instance:"+in.Plugin
			m = newManaged(h, e, StateRefused, fmt.Sprintf("instance of plugin %q, which is %s: %s", in.Plugin, base.state, base.lastErr))
		default:
			e := base.entry
			e.Name, e.Source = in.Name, "instance:"+in.Plugin
			m = newManaged(h, e, StateStopped, "")
		}
		m.instanceOf = in.Plugin
		m.config = in.Config
		if m.config == nil {
			m.config = map[string]any{}
		}
		m.callTimeout = in.CallTimeout
		m.cfgKey = in.ConfigKey
		m.setBy = in.SetBy
		h.plugins[in.Name] = m
	}
	return replaced
}

// configFor is what a plugin's Configure call gets: its instance's
// configuration, or its section of plugins.config.
func (m *managed) configFor() map[string]any {
	if m.instanceOf != "" {
		return m.config
	}
	return m.h.config().Config[m.entry.Name]
}

// configKey names where the plugin's configuration is set, for errors.
func (m *managed) configKey() string {
	switch {
	case m.instanceOf == "":
		return "plugins.config." + m.entry.Name
	case m.cfgKey != "":
		return m.cfgKey
	}
	return "instance " + m.entry.Name
}

// callTimeout is the deadline of one call into the named plugin.
func (h *Host) callTimeout(name string) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m, ok := h.plugins[name]; ok && m.callTimeout > 0 {
		return m.callTimeout
	}
	return h.config().CallTimeout
}
