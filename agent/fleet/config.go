package fleet

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is the gossip section of the agent configuration.
type Config struct {
	// Enabled embeds a serf member in the agent.
	Enabled bool `yaml:"enabled"`
	// Bind is the host:port gossip listens on, UDP and TCP alike.
	Bind string `yaml:"bind"`
	// Advertise is the host:port other nodes use to reach this one; empty
	// means the bind address (or, when bind is 0.0.0.0, a private address
	// memberlist picks).
	Advertise string `yaml:"advertise"`
	// Join lists host:port addresses to join once at start; failing to
	// reach any of them is logged and the node runs alone.
	Join []string `yaml:"join"`
	// RetryJoin lists addresses joined in the background until one answers,
	// with a backoff from RetryInterval doubling up to RetryMaxInterval.
	RetryJoin []string `yaml:"retry_join"`
	// RetryInterval is the first wait between retry_join attempts.
	RetryInterval time.Duration `yaml:"retry_interval"`
	// RetryMaxInterval caps the backoff between retry_join attempts.
	RetryMaxInterval time.Duration `yaml:"retry_max_interval"`
	// RetryMax stops retry_join after this many attempts; 0 retries forever.
	RetryMax int `yaml:"retry_max"`
	// EncryptKey is a base64 AES key (16, 24 or 32 bytes; `vigil keygen`
	// makes a 32-byte one). Also VIGIL_GOSSIP_ENCRYPT_KEY.
	EncryptKey string `yaml:"encrypt_key"`
	// EncryptKeyFile is a file holding the key (surrounding space trimmed).
	EncryptKeyFile string `yaml:"encrypt_key_file"`
	// KeyringFile persists the keyring, so rotations survive restarts.
	// Relative paths are inside the data dir. Default: serf/keyring.json.
	KeyringFile string `yaml:"keyring_file"`
	// SnapshotFile records the members this node knew, so that a restarted
	// node rejoins by itself. Relative paths are inside the data dir.
	SnapshotFile string `yaml:"snapshot_file"`
	// Role is published in the "role" tag (for example "inference").
	Role string `yaml:"role"`
	// TagsMinInterval is the least time between two tag updates; changes
	// in between are coalesced into the next update.
	TagsMinInterval time.Duration `yaml:"tags_min_interval"`
	// QueryTimeout bounds a fleet stats query.
	QueryTimeout time.Duration `yaml:"query_timeout"`
	// Profile selects memberlist's timing: "lan" (the default, for real
	// networks) or "local" (loopback and tests: faster probes, so a failed
	// node is noticed within seconds).
	Profile string `yaml:"profile"`
}

// DefaultBind is where gossip listens in production.
const DefaultBind = "0.0.0.0:7946"

// DefaultConfig returns the production defaults: gossip off.
func DefaultConfig() Config {
	return Config{
		Bind:             DefaultBind,
		RetryInterval:    2 * time.Second,
		RetryMaxInterval: time.Minute,
		KeyringFile:      "serf/keyring.json",
		SnapshotFile:     "serf/snapshot",
		TagsMinInterval:  10 * time.Second,
		QueryTimeout:     3 * time.Second,
		Profile:          "lan",
	}
}

// DevConfig returns the defaults of `vigil agent -dev`: a one-node fleet on
// loopback.
func DevConfig() Config {
	c := DefaultConfig()
	c.Enabled = true
	c.Bind = "127.0.0.1:7946"
	return c
}

// Validate returns every problem, one "gossip.<key>: message" per line.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("gossip.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if _, _, err := splitHostPort(c.Bind); err != nil {
		bad("bind", "%v", err)
	}
	if c.Advertise != "" {
		if host, _, err := splitHostPort(c.Advertise); err != nil {
			bad("advertise", "%v", err)
		} else if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
			bad("advertise", "%q must be an IP address other nodes can reach", c.Advertise)
		}
	}
	for i, a := range c.Join {
		if err := checkJoinAddr(a); err != nil {
			bad(fmt.Sprintf("join[%d]", i), "%v", err)
		}
	}
	for i, a := range c.RetryJoin {
		if err := checkJoinAddr(a); err != nil {
			bad(fmt.Sprintf("retry_join[%d]", i), "%v", err)
		}
	}
	if c.RetryInterval <= 0 {
		bad("retry_interval", "must be positive")
	}
	if c.RetryMaxInterval < c.RetryInterval {
		bad("retry_max_interval", "%s is shorter than gossip.retry_interval %s", c.RetryMaxInterval, c.RetryInterval)
	}
	if c.RetryMax < 0 {
		bad("retry_max", "must be 0 (forever) or positive")
	}
	if c.EncryptKey != "" && c.EncryptKeyFile != "" {
		bad("encrypt_key", "set encrypt_key or encrypt_key_file, not both")
	}
	if c.EncryptKey != "" {
		if _, err := DecodeKey(c.EncryptKey); err != nil {
			bad("encrypt_key", "%v", err)
		}
	} else if c.EncryptKeyFile != "" && c.Enabled {
		if _, err := ReadKeyFile(c.EncryptKeyFile); err != nil {
			bad("encrypt_key_file", "%v", err)
		}
	}
	if c.KeyringFile == "" {
		bad("keyring_file", "must not be empty")
	}
	if c.SnapshotFile == "" {
		bad("snapshot_file", "must not be empty")
	}
	if len(c.Role) > 32 || strings.ContainsAny(c.Role, ",;= \t\n") {
		bad("role", "%q must be at most 32 characters without spaces, commas, semicolons or '='", c.Role)
	}
	if c.TagsMinInterval < 0 {
		bad("tags_min_interval", "must not be negative")
	}
	if c.QueryTimeout <= 0 || c.QueryTimeout > time.Minute {
		bad("query_timeout", "%s is out of range: use between 1ms and 1m", c.QueryTimeout)
	}
	if c.Profile != "lan" && c.Profile != "local" {
		bad("profile", "%q is not lan or local", c.Profile)
	}
	return errors.Join(errs...)
}

// checkJoinAddr checks an address to join as memberlist will read it:
// host:port, [IPv6]:port, or a host or bare IPv6 address without a port
// (then this node's gossip port is used). A typo such as "10.0.3.10:79466"
// or "10.0.3.10;7946" would otherwise only show as a failed join.
func checkJoinAddr(a string) error {
	if strings.TrimSpace(a) == "" {
		return errors.New("must not be empty")
	}
	if strings.TrimSpace(a) != a || strings.ContainsAny(a, " \t;,") {
		return fmt.Errorf("%q is not one address: give each as its own list item, host:port", a)
	}
	// memberlist's rule: one colon, or a bracketed host followed by one,
	// means a port; more colons without brackets are a bare IPv6 address.
	hasPort := strings.Count(a, ":") == 1
	if strings.LastIndex(a, "[") == 0 {
		hasPort = strings.LastIndex(a, ":") > strings.LastIndex(a, "]")
	}
	if !hasPort {
		if strings.Contains(a, ":") && net.ParseIP(strings.Trim(a, "[]")) == nil {
			return fmt.Errorf("%q is not host:port", a)
		}
		return nil
	}
	host, p, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %v", a, err)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", a)
	}
	if port, err := strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
		return fmt.Errorf("%q: the port must be a number from 1 to 65535", a)
	}
	return nil
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port: %v", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%q has no valid port", addr)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	if net.ParseIP(host) == nil {
		return "", 0, fmt.Errorf("%q: the host must be an IP address", addr)
	}
	return host, port, nil
}

// DecodeKey decodes a base64 gossip key and checks its length.
func DecodeKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("the key is not valid base64 (make one with `vigil keygen`): %v", err)
	}
	switch len(k) {
	case 16, 24, 32:
		return k, nil
	}
	return nil, fmt.Errorf("the key is %d bytes; AES needs 16, 24 or 32 (make one with `vigil keygen`)", len(k))
}

// ReadKeyFile reads and decodes the key in gossip.encrypt_key_file; its
// errors name the file.
func ReadKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the key: %v", err)
	}
	k, err := DecodeKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return k, nil
}
