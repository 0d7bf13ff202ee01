// Package fleet embeds a serf member in the agent: membership of the fleet
// by gossip, encryption with a rotatable keyring, tags that publish what a
// node serves and how healthy it is, and fleet-wide queries.
package fleet

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
	"github.com/prometheus/client_golang/prometheus"
)

// Options are what the agent hands the fleet besides its configuration.
type Options struct {
	// NodeName must be unique in the fleet.
	NodeName string
	// DataDir resolves relative keyring and snapshot paths.
	DataDir string
	// Version is published in the "ver" tag.
	Version    string
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Fleet is this node's membership in the fleet.
type Fleet struct {
	cfg     Config
	opts    Options
	logger  *slog.Logger
	serf    *serf.Serf
	events  chan serf.Event
	keyring string // keyring file path
	// keyIgnored is set when the configured key is not in the keyring
	// file, which wins: after a rotation that is expected, but after a
	// first start with a wrong key it is what keeps the node out.
	keyIgnored bool
	ring       *memberlist.Keyring // nil without encryption
	m          *metrics

	mu       sync.Mutex
	role     string
	summary  func() Summary
	stats    StatsSource
	lastJoin time.Time
	joinErr  string
	joined   int // nodes contacted by the last successful join
	conflict string
	// conflictAddr is the address of the other node with this node's
	// name, from serf's conflict log line; lostVote is set when serf lost
	// the name conflict vote, which it follows with its own shutdown.
	conflictAddr string
	lostVote     bool
	// votes counts serf's name conflict votes under way (one per conflict
	// line: serf starts one each time); the conflict is over for this
	// node once it has won them all.
	votes      int
	decryptErr string
	tagBytes   int
	leaving    bool
	// serfSetTags is serf's SetTags; tests replace it.
	serfSetTags func(map[string]string) error

	kick   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// ErrNameConflict is matched by StopErr's error when gossip stopped because
// another live node has this node's name (serf's conflict vote was lost).
var ErrNameConflict = errors.New("node name conflict")

// New creates the serf member and binds its ports; Start joins the fleet.
func New(cfg Config, opts Options) (*Fleet, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Fleet{
		cfg:    cfg,
		opts:   opts,
		logger: opts.Logger,
		events: make(chan serf.Event, 256),
		role:   cfg.Role,
		kick:   make(chan struct{}, 1),
	}
	f.m = newMetrics(f)
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(f.m); err != nil {
			return nil, fmt.Errorf("gossip: register metrics: %w", err)
		}
	}
	conf, err := f.serfConfig()
	if err != nil {
		return nil, err
	}
	s, err := serf.Create(conf)
	if err != nil {
		if opts.Registerer != nil {
			opts.Registerer.Unregister(f.m)
		}
		if strings.Contains(err.Error(), "address already in use") {
			return nil, fmt.Errorf("gossip: cannot listen on %s: the port is in use (another agent or serf on this host?); set gossip.bind: %w", cfg.Bind, err)
		}
		if strings.Contains(strings.ToLower(err.Error()), "advertise") {
			return nil, fmt.Errorf("gossip: start serf on %s: %w (set gossip.advertise to the IP:port other nodes should use)", cfg.Bind, err)
		}
		return nil, fmt.Errorf("gossip: start serf on %s: %w", cfg.Bind, err)
	}
	f.serf = s
	f.serfSetTags = s.SetTags
	if f.ring == nil && !loopbackBind(cfg.Bind) {
		f.logger.Warn("gossip is not encrypted and listens where other hosts reach it: any of them can join the fleet and read its tags and model stats; set gossip.encrypt_key_file (docs/fleet.md)", "bind", cfg.Bind)
	}
	return f, nil
}

// loopbackBind reports whether gossip.bind is a loopback address.
func loopbackBind(bind string) bool {
	host, _, err := net.SplitHostPort(bind)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (f *Fleet) path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(f.opts.DataDir, p)
}

func (f *Fleet) serfConfig() (*serf.Config, error) {
	cfg := f.cfg
	conf := serf.DefaultConfig()
	conf.Init()
	conf.NodeName = f.opts.NodeName
	tags, size := BuildTags(f.role, f.opts.Version, Summary{})
	conf.Tags = tags
	f.tagBytes = size
	conf.EventCh = f.events
	conf.RejoinAfterLeave = true
	conf.EnableNameConflictResolution = true
	conf.SnapshotPath = f.path(cfg.SnapshotFile)
	conf.LeavePropagateDelay = time.Second
	bridge := &logBridge{logger: f.logger, onLine: f.watchLog}
	std := newStdLogger(bridge)
	conf.LogOutput = nil
	conf.Logger = std

	var ml *memberlist.Config
	if cfg.Profile == "local" {
		ml = memberlist.DefaultLocalConfig()
		// The local profile's RetransmitMult of 2 hands each broadcast to
		// only two peers per node: a query then misses nodes of a small
		// fleet now and then. Keep the LAN value; only timing is faster.
		ml.RetransmitMult = memberlist.DefaultLANConfig().RetransmitMult
		conf.ReapInterval = 5 * time.Second
		conf.ReconnectInterval = 2 * time.Second
		conf.TombstoneTimeout = time.Minute
		conf.ReconnectTimeout = time.Minute
	} else {
		ml = memberlist.DefaultLANConfig()
	}
	ml.LogOutput = nil
	ml.Logger = std
	host, port, err := splitHostPort(cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("gossip.bind: %v", err)
	}
	ml.BindAddr, ml.BindPort = host, port
	if cfg.Advertise != "" {
		ahost, aport, err := splitHostPort(cfg.Advertise)
		if err != nil {
			return nil, fmt.Errorf("gossip.advertise: %v", err)
		}
		ml.AdvertiseAddr, ml.AdvertisePort = ahost, aport
	} else if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		ml.AdvertiseAddr, ml.AdvertisePort = host, port
	}
	conf.MemberlistConfig = ml

	for _, p := range []string{conf.SnapshotPath, f.path(cfg.KeyringFile)} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return nil, fmt.Errorf("gossip: %w", err)
		}
	}
	keyring, err := f.loadKeyring()
	if err != nil {
		return nil, err
	}
	if keyring != nil {
		f.ring = keyring
		ml.Keyring = keyring
		conf.KeyringFile = f.keyring
	}
	return conf, nil
}

// loadKeyring returns the keyring to gossip with: the keyring file when it
// exists (it records rotations), else the configured key (which then
// starts the keyring file), else nil: no encryption.
func (f *Fleet) loadKeyring() (*memberlist.Keyring, error) {
	f.keyring = f.path(f.cfg.KeyringFile)
	key := f.cfg.EncryptKey // VIGIL_GOSSIP_ENCRYPT_KEY arrives here too
	var configured []byte
	if key != "" {
		k, err := DecodeKey(key)
		if err != nil {
			return nil, fmt.Errorf("gossip.encrypt_key: %v", err)
		}
		configured = k
	} else if f.cfg.EncryptKeyFile != "" {
		k, err := ReadKeyFile(f.cfg.EncryptKeyFile)
		if err != nil {
			return nil, fmt.Errorf("gossip.encrypt_key_file: %v", err)
		}
		configured = k
		key = base64.StdEncoding.EncodeToString(k)
	}
	b, err := os.ReadFile(f.keyring)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if configured == nil {
			return nil, nil
		}
		kr, err := memberlist.NewKeyring(nil, configured)
		if err != nil {
			return nil, fmt.Errorf("gossip.encrypt_key: %w", err)
		}
		if err := writeKeyring(f.keyring, [][]byte{configured}); err != nil {
			return nil, err
		}
		return kr, nil
	case err != nil:
		return nil, fmt.Errorf("gossip.keyring_file: %w", err)
	}
	if err := f.tightenKeyringMode(); err != nil {
		return nil, err
	}
	var encoded []string
	if err := json.Unmarshal(b, &encoded); err != nil {
		return nil, fmt.Errorf("gossip.keyring_file: %s is not a JSON list of base64 keys: %v", f.keyring, err)
	}
	if len(encoded) == 0 {
		if configured == nil {
			return nil, nil
		}
		encoded = []string{key}
	}
	keys := make([][]byte, 0, len(encoded))
	for i, e := range encoded {
		k, err := DecodeKey(e)
		if err != nil {
			return nil, fmt.Errorf("gossip.keyring_file: %s key %d: %v", f.keyring, i, err)
		}
		keys = append(keys, k)
	}
	if configured == nil {
		f.logger.Info("gossip is encrypted with the keyring file although no gossip.encrypt_key is set; to turn encryption off, delete the keyring file on every node", "keyring_file", f.keyring)
	}
	if configured != nil && !containsKey(keys, configured) {
		f.keyIgnored = true
		f.logger.Warn(f.keySource()+" is not in the keyring file, which records key rotations; using the keyring file (expected after a rotation; if the configured key is the fleet's current one, delete the keyring file and restart)", "keyring_file", f.keyring)
	}
	kr, err := memberlist.NewKeyring(keys, keys[0])
	if err != nil {
		return nil, fmt.Errorf("gossip.keyring_file: %w", err)
	}
	return kr, nil
}

// tightenKeyringMode makes an existing keyring file 0600: it holds the
// fleet's keys, and serf rewrites it on every rotation with the mode it
// already has (a backup restored with cp, or a file seeded by hand, would
// stay readable by every user).
func (f *Fleet) tightenKeyringMode() error {
	st, err := os.Stat(f.keyring)
	if err != nil {
		return fmt.Errorf("gossip.keyring_file: %w", err)
	}
	if st.Mode().Perm()&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(f.keyring, 0o600); err != nil {
		return fmt.Errorf("gossip.keyring_file: %s is readable by other users (mode %04o) and its mode cannot be set to 0600: %w", f.keyring, st.Mode().Perm(), err)
	}
	f.logger.Warn("the gossip keyring file was readable by other users; its mode is now 0600 (the fleet's keys may have been read: rotate them with vigil keyring)", "keyring_file", f.keyring, "mode", fmt.Sprintf("%04o", st.Mode().Perm()))
	return nil
}

func containsKey(keys [][]byte, k []byte) bool {
	for _, x := range keys {
		if string(x) == string(k) {
			return true
		}
	}
	return false
}

func writeKeyring(path string, keys [][]byte) error {
	enc := make([]string, len(keys))
	for i, k := range keys {
		enc[i] = base64.StdEncoding.EncodeToString(k)
	}
	b, _ := json.MarshalIndent(enc, "", "  ")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("gossip: write keyring file: %w", err)
	}
	return nil
}

// watchLog notices, in serf's and memberlist's log lines, what they report
// only there: a node name conflict and messages no key could decrypt. It
// returns the level to log the line at.
func (f *Fleet) watchLog(level slog.Level, msg string) slog.Level {
	low := strings.ToLower(msg)
	switch {
	case strings.Contains(low, "shutdown without a leave"):
		// A stop with nobody to tell (Leave skips the broadcast when this
		// node is alone) is no cause for a warning; a shutdown that was
		// not asked for keeps it.
		f.mu.Lock()
		leaving := f.leaving
		f.mu.Unlock()
		if leaving {
			return slog.LevelDebug
		}
	case strings.Contains(low, "node name conflicts with another node"):
		// serf starts a vote on which of the two keeps the name.
		f.mu.Lock()
		f.conflict = msg
		f.conflictAddr = conflictAddr(msg)
		f.votes++
		f.mu.Unlock()
	case strings.Contains(low, "majority in name conflict resolution"):
		// This node keeps the name; the other one lost the vote and stops
		// gossiping, so the conflict is over here once no other vote is
		// under way.
		f.mu.Lock()
		f.votes = max(f.votes-1, 0)
		won := f.votes == 0 && f.conflict != ""
		by := f.conflictAddr
		if won {
			f.conflict = ""
		}
		f.mu.Unlock()
		if won {
			f.logger.Info("node name conflict resolved: this node won serf's name conflict vote and keeps its node_name; the other node with this name stops gossiping (set a unique node_name there)",
				"node_name", f.opts.NodeName, "other", by, "vote", voteCount(msg))
		}
	case strings.Contains(low, "minority in name conflict resolution"):
		// serf shuts itself down right after this line.
		f.mu.Lock()
		f.lostVote = true
		f.votes = max(f.votes-1, 0)
		f.mu.Unlock()
	case strings.Contains(low, "failed to start name resolution query"):
		// No vote: the conflict stays unresolved.
		f.mu.Lock()
		f.votes = max(f.votes-1, 0)
		f.mu.Unlock()
	case strings.Contains(low, "could decrypt") || strings.Contains(low, "encryption is configured but remote state is not encrypted") ||
		strings.Contains(low, "remote state is encrypted and encryption is not configured"):
		f.mu.Lock()
		f.decryptErr = msg
		if f.joinErr == rejoinNoAnswer {
			// The rejoin gave up first; this is why.
			f.joinErr = f.rejoinKeyMismatch()
		}
		f.mu.Unlock()
		f.m.decryptFailures.Inc()
	case strings.Contains(low, "failed to re-join any previously known node"):
		// serf's rejoin from the snapshot logs no cause: a key that no
		// longer matches (rotated while this node was down) shows only in
		// the decrypt errors logged at debug just before.
		f.mu.Lock()
		f.joinErr = rejoinNoAnswer
		if f.decryptErr != "" {
			f.joinErr = f.rejoinKeyMismatch()
		}
		joinErr := f.joinErr
		f.mu.Unlock()
		f.logger.Warn("could not rejoin the fleet from the snapshot", "err", joinErr)
	}
	return level
}

// conflictAddr returns the other node's address from serf's line "Node
// name conflicts with another node at 10.0.0.2:7946. Names must be
// unique! ...", or "" when the line has none.
func conflictAddr(msg string) string {
	_, rest, ok := strings.Cut(msg, "another node at ")
	if !ok {
		return ""
	}
	addr, _, _ := strings.Cut(rest, " ")
	return strings.TrimSuffix(addr, ".")
}

// voteCount returns the "2 / 3" (votes for this node's address / all
// answers) of serf's vote result line "... resolution [2 / 3]", or "" when
// it has none.
func voteCount(msg string) string {
	i := strings.LastIndex(msg, "[")
	if i < 0 || !strings.HasSuffix(msg, "]") {
		return ""
	}
	return strings.Trim(msg[i:], "[]")
}

// rejoinNoAnswer is the join error of a rejoin from the snapshot that no
// member answered, before any decrypt error says why.
const rejoinNoAnswer = "no member recorded in the snapshot answered"

// rejoinKeyMismatch is the join error of a rejoin from the snapshot that
// failed on the key: a key that no longer matches, or one side encrypting
// and the other not (a fleet turning encryption on, node by node).
func (f *Fleet) rejoinKeyMismatch() string {
	return "rejoin from the snapshot: " + f.keyProblem(strings.ToLower(f.decryptErr))
}

// keyProblem explains the key problem that low (a lower-cased join error
// or memberlist log line) names, or returns "" when it names none.
func (f *Fleet) keyProblem(low string) string {
	switch {
	case strings.Contains(low, "remote state is encrypted and encryption is not configured"):
		return "the other nodes encrypt gossip but this node has no key: set gossip.encrypt_key to the fleet's key"
	case strings.Contains(low, "encryption is configured but remote state is not encrypted"):
		return "this node encrypts gossip but the other nodes do not: set gossip.encrypt_key everywhere (nodes restarted with it form a fleet of their own until the last one is), or remove it here and delete the keyring file " + f.keyring + ", which keeps encryption on"
	case strings.Contains(low, "decrypt"):
		return "the gossip encryption key does not match the fleet's (messages cannot be decrypted): " + f.keyHint()
	}
	return ""
}

// keySource names where this node's configured key comes from.
func (f *Fleet) keySource() string {
	if f.cfg.EncryptKey == "" && f.cfg.EncryptKeyFile != "" {
		return "gossip.encrypt_key_file " + f.cfg.EncryptKeyFile
	}
	return "gossip.encrypt_key"
}

// keyHint says what to check, and what to do, when this node's key does
// not match the fleet's. A fixed key file alone does not help while the
// keyring file, which wins, still holds the wrong key.
func (f *Fleet) keyHint() string {
	hint := "check " + f.keySource() + " and the keyring file " + f.keyring
	if f.keyIgnored {
		return hint + "; the configured key is not in the keyring file, which wins: if the configured key is the fleet's current one, delete the keyring file and restart"
	}
	return hint + "; if the fleet's key was rotated while this node was down, configure the current key, delete the keyring file and restart"
}

// SetSummarySource sets where the models and the health summary come from;
// the agent wires it once observe, drift and alerts exist.
func (f *Fleet) SetSummarySource(fn func() Summary) {
	f.mu.Lock()
	f.summary = fn
	f.mu.Unlock()
	f.Refresh()
}

// SetRole changes the published role (a reload).
func (f *Fleet) SetRole(role string) {
	f.mu.Lock()
	f.role = role
	f.mu.Unlock()
	f.Refresh()
}

// Refresh asks for the tags to be recomputed; updates still wait for the
// minimum interval since the previous one.
func (f *Fleet) Refresh() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// Start joins the configured nodes and runs the event and tag loops until
// ctx ends.
func (f *Fleet) Start(ctx context.Context) {
	ctx, f.cancel = context.WithCancel(ctx)
	f.wg.Add(3)
	go func() { defer f.wg.Done(); f.eventLoop(ctx) }()
	go func() { defer f.wg.Done(); f.tagLoop(ctx) }()
	go func() { defer f.wg.Done(); f.joinLoop(ctx) }()
}

func (f *Fleet) joinLoop(ctx context.Context) {
	if len(f.cfg.Join) > 0 {
		if err := f.Join(f.cfg.Join); err != nil {
			hint := "running alone until another node joins this one (set gossip.retry_join to keep trying)"
			if len(f.cfg.RetryJoin) > 0 {
				hint = "running alone; gossip.retry_join keeps trying"
			}
			f.logger.Warn("could not join the fleet; "+hint, "join", f.cfg.Join, "err", err)
		}
	}
	if len(f.cfg.RetryJoin) == 0 {
		return
	}
	wait := f.cfg.RetryInterval
	for attempt := 1; ; attempt++ {
		err := f.Join(f.cfg.RetryJoin)
		if err == nil {
			return
		}
		if f.cfg.RetryMax > 0 && attempt >= f.cfg.RetryMax {
			f.logger.Error("retry_join gave up", "attempts", attempt, "retry_join", f.cfg.RetryJoin, "err", err)
			return
		}
		f.logger.Warn("retry_join failed; retrying", "attempt", attempt, "in", wait.String(), "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, f.cfg.RetryMaxInterval)
	}
}

// Join contacts the given nodes; it fails only when none answered. A
// failure that looks like a key mismatch says so.
func (f *Fleet) Join(addrs []string) error {
	f.mu.Lock()
	f.decryptErr = ""
	f.mu.Unlock()
	n, err := f.serf.Join(addrs, true)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastJoin = time.Now()
	if err != nil {
		err = f.explainJoin(err)
		f.joinErr = err.Error()
		f.m.joins.WithLabelValues("failed").Inc()
		return err
	}
	f.joinErr = ""
	f.joined = n
	f.m.joins.WithLabelValues("ok").Inc()
	f.logger.Info("joined the fleet", "contacted", n, "members", len(f.serf.Members()))
	return nil
}

// explainJoin adds what a failed join probably means. Called with f.mu held.
func (f *Fleet) explainJoin(err error) error {
	// serf wraps the causes in a multi-line multierror; keep one line.
	msg := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "1 error occurred:", "")), " ")
	msg = strings.TrimPrefix(msg, "* ")
	low := strings.ToLower(msg)
	encrypted := f.serf.EncryptionEnabled()
	if p := f.keyProblem(low); p != "" {
		return fmt.Errorf("%s: %s", msg, p)
	}
	if p := f.keyProblem(strings.ToLower(f.decryptErr)); p != "" {
		return fmt.Errorf("%s: %s", msg, p)
	}
	if encrypted && (strings.Contains(low, "eof") || strings.Contains(low, "reset by peer") || strings.Contains(low, "i/o timeout")) {
		return fmt.Errorf("%s: the remote node closed the connection; most likely it could not decrypt this node's messages: the gossip encryption key does not match the fleet's (%s)", msg, f.keyHint())
	}
	return errors.New(msg)
}

func (f *Fleet) eventLoop(ctx context.Context) {
	stopped := f.serf.ShutdownCh()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stopped:
			stopped = nil
			f.mu.Lock()
			leaving, conflict := f.leaving, f.conflict
			why := f.stopError()
			f.mu.Unlock()
			switch {
			case leaving:
			case errors.Is(why, ErrNameConflict):
				f.logger.Error(why.Error(), "node_name", f.opts.NodeName, "detail", conflict)
			default:
				f.logger.Error(why.Error())
			}
		case e := <-f.events:
			f.m.events.WithLabelValues(eventLabel(e)).Inc()
			switch ev := e.(type) {
			case serf.MemberEvent:
				for _, mem := range ev.Members {
					f.logger.Debug("member event", "event", ev.Type.String(), "member", mem.Name, "addr", net.JoinHostPort(mem.Addr.String(), strconv.Itoa(int(mem.Port))))
				}
				if ev.Type == serf.EventMemberFailed {
					for _, mem := range ev.Members {
						f.logger.Warn("fleet member failed", "member", mem.Name)
					}
				}
			case *serf.Query:
				f.handleQuery(ev)
			}
		}
	}
}

func eventLabel(e serf.Event) string {
	switch ev := e.(type) {
	case serf.MemberEvent:
		return ev.Type.String()
	case serf.UserEvent:
		return "user"
	case *serf.Query:
		return "query"
	}
	return "other"
}

func (f *Fleet) currentTags() (map[string]string, int) {
	f.mu.Lock()
	role, src := f.role, f.summary
	f.mu.Unlock()
	var s Summary
	if src != nil {
		s = src()
		if err := checkHealth(s.Health); err != nil {
			f.logger.Warn("health summary not published", "err", err)
			s.Health = Health{}
		}
	}
	return BuildTags(role, f.opts.Version, s)
}

// tagLoop recomputes the tags every tags_min_interval, and on Refresh, and
// sets them when they changed, never twice within tags_min_interval.
func (f *Fleet) tagLoop(ctx context.Context) {
	every := max(f.cfg.TagsMinInterval, time.Second)
	tick := time.NewTicker(every)
	defer tick.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-f.kick:
		}
		if wait := f.cfg.TagsMinInterval - time.Since(last); !last.IsZero() && wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		tags, size := f.currentTags()
		if equalTags(tags, f.serf.LocalMember().Tags) {
			continue
		}
		if err := f.setTags(tags); err != nil {
			f.logger.Warn("could not update gossip tags", "err", err, "bytes", size)
			continue
		}
		last = time.Now()
		f.mu.Lock()
		f.tagBytes = size
		f.mu.Unlock()
		f.m.tagUpdates.Inc()
		f.logger.Debug("gossip tags updated", "bytes", size)
	}
}

// setTags publishes tags. serf sets them on the local member, then waits
// up to its BroadcastTimeout (5 s) for memberlist to confirm the broadcast.
// memberlist confirms with a non-blocking send on an unbuffered channel,
// which is lost when the broadcast completes or is superseded before the
// wait begins: serf then returns "timeout waiting for update broadcast"
// although the tags are set and spread by gossip and push/pull. That is
// not a failure.
func (f *Fleet) setTags(tags map[string]string) error {
	f.mu.Lock()
	set := f.serfSetTags
	f.mu.Unlock()
	err := set(tags)
	if err != nil && strings.Contains(err.Error(), "timeout waiting for update broadcast") && equalTags(tags, f.serf.LocalMember().Tags) {
		f.logger.Debug("gossip tag update set; memberlist did not confirm its broadcast in time", "err", err)
		return nil
	}
	return err
}

func equalTags(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Leave leaves the fleet gracefully (others see "left", not "failed") and
// shuts serf down, within ctx.
func (f *Fleet) Leave(ctx context.Context) error {
	f.mu.Lock()
	f.leaving = true
	f.mu.Unlock()
	if f.serf.State() == serf.SerfShutdown {
		// Gossip already stopped by itself (a lost name conflict): there
		// is nothing to leave, and serf's Leave would fail the agent's
		// shutdown with "Leave called after Shutdown".
		return f.Shutdown()
	}
	alone := true
	for _, m := range f.serf.Members() {
		if m.Name != f.opts.NodeName && m.Status == serf.StatusAlive {
			alone = false
		}
	}
	if alone {
		// Nobody to tell: skip the leave broadcast and its propagation wait.
		return f.Shutdown()
	}
	done := make(chan error, 1)
	go func() { done <- f.serf.Leave() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = fmt.Errorf("gossip leave did not finish in time: %w", ctx.Err())
	}
	if serr := f.Shutdown(); serr != nil && err == nil {
		err = serr
	}
	return err
}

// Shutdown stops serf without leaving: others will see this node fail.
func (f *Fleet) Shutdown() error {
	f.mu.Lock()
	f.leaving = true
	f.mu.Unlock()
	err := f.serf.Shutdown()
	if f.cancel != nil {
		f.cancel()
	}
	f.wg.Wait()
	if f.opts.Registerer != nil {
		f.opts.Registerer.Unregister(f.m)
	}
	return err
}

// Member is one fleet member as the API shows it.
type Member struct {
	Name    string            `json:"name"`
	Address string            `json:"address"`
	Status  string            `json:"status"`
	Tags    map[string]string `json:"tags"`
	Info    MemberTags        `json:"info"`
	// Protocol is serf's protocol version the member speaks.
	Protocol int `json:"protocol"`
}

// Members returns every member this node knows, sorted by name.
func (f *Fleet) Members() []Member {
	ms := f.serf.Members()
	out := make([]Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, Member{
			Name:     m.Name,
			Address:  net.JoinHostPort(m.Addr.String(), strconv.Itoa(int(m.Port))),
			Status:   m.Status.String(),
			Tags:     m.Tags,
			Info:     DecodeTags(m.Tags),
			Protocol: int(m.DelegateCur),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Status says how gossip is doing, for /v1/status: ok is false when
// something is wrong (never merely because the node is alone).
type Status struct {
	OK        bool
	Failed    bool
	Reason    string
	Encrypted bool
}

// Status summarizes the membership for /v1/status and the banner.
func (f *Fleet) Status() Status {
	counts := map[string]int{}
	for _, m := range f.serf.Members() {
		counts[m.Status.String()]++
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	st := Status{OK: true, Encrypted: f.serf.EncryptionEnabled()}
	enc := "not encrypted"
	if st.Encrypted {
		enc = "encrypted"
	}
	addr := f.serf.Memberlist().LocalNode()
	parts := []string{fmt.Sprintf("%s on %s", f.opts.NodeName, net.JoinHostPort(addr.Addr.String(), strconv.Itoa(int(addr.Port)))), enc}
	stopped := f.serf.State() == serf.SerfShutdown && !f.leaving
	if !stopped { // once stopped, the counts are the last ones known, not the fleet's
		parts = append(parts, fmt.Sprintf("%d alive", counts["alive"]))
		for _, s := range []string{"failed", "left", "leaving"} {
			if counts[s] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
			}
		}
	}
	if stopped {
		st.OK, st.Failed = false, true
		parts = append(parts, f.stopError().Error())
	} else if f.conflict != "" {
		st.OK = false
		parts = append(parts, "name conflict: "+f.conflict)
	}
	if f.joinErr != "" && counts["alive"] <= 1 {
		st.OK = false
		parts = append(parts, "join failed: "+f.joinErr)
	}
	st.Reason = strings.Join(parts, ", ")
	return st
}

// Stopped says why gossip stopped by itself (a name conflict lost, or any
// other serf shutdown the agent did not ask for), or "" while it runs or
// when the agent is leaving: the members it last knew are stale, and
// queries reach nobody.
func (f *Fleet) Stopped() string {
	if err := f.StopErr(); err != nil {
		return err.Error()
	}
	return ""
}

// StopErr is Stopped as an error, nil while gossip runs or when the agent
// is leaving. After a lost name conflict it matches ErrNameConflict: only
// a unique node_name fixes that, not a restart.
func (f *Fleet) StopErr() error {
	if f.serf.State() != serf.SerfShutdown {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.leaving {
		return nil
	}
	return f.stopError()
}

// stopError says why serf stopped without being asked to. Called with f.mu
// held.
func (f *Fleet) stopError() error {
	if !f.lostVote {
		return &stopError{msg: "gossip stopped unexpectedly (serf shut down while the agent runs); restart the agent to rejoin the fleet"}
	}
	by := f.conflictAddr
	if by == "" {
		by = "another node"
	}
	return &stopError{conflict: true, msg: "gossip stopped: node name " + f.opts.NodeName + " is in use by " + by +
		" (this node lost serf's name conflict vote); set a unique node_name and restart"}
}

// stopError is why gossip stopped by itself.
type stopError struct {
	msg      string
	conflict bool
}

func (e *stopError) Error() string { return e.msg }

// Is makes a stop on a lost name conflict match ErrNameConflict.
func (e *stopError) Is(target error) bool { return e.conflict && target == ErrNameConflict }

// Serf exposes the serf instance to the agent's later subsystems (canary
// rollouts use user events and queries).
func (f *Fleet) Serf() *serf.Serf { return f.serf }
