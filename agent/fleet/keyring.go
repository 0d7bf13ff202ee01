package fleet

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/serf/serf"
)

// ErrNotEncrypted is returned by keyring operations when gossip runs
// without encryption: there is no keyring to change.
var ErrNotEncrypted = errors.New("gossip encryption is not enabled on this node (set gossip.encrypt_key); there is no keyring")

// ErrPrimaryKey is returned when asked to remove the key this node
// encrypts with; serf would refuse it on every node.
var ErrPrimaryKey = errors.New("the key is the primary (encrypting) key and cannot be removed: make another key primary first with vigil keyring use")

// ErrKeyNotInstalled is returned when asked to use a key this node does
// not have: serf would report it as a failure on every node.
var ErrKeyNotInstalled = errors.New("the key is not installed")

// KeyringResult is the fleet's answer to a keyring operation.
type KeyringResult struct {
	// Keys maps each installed key to the number of nodes that have it.
	Keys map[string]int `json:"keys"`
	// PrimaryKeys maps each primary key to the number of nodes using it.
	PrimaryKeys map[string]int `json:"primary_keys"`
	// Nodes is how many alive members were asked; Responses how many
	// answered; Errors how many reported failure.
	Nodes     int `json:"nodes"`
	Responses int `json:"responses"`
	Errors    int `json:"errors"`
	// Messages holds each node's error or warning, by node name.
	Messages map[string]string `json:"messages,omitempty"`
	// Absent is set by a remove of a key that no node has: nothing was
	// done. serf would answer "done" all the same, so a mistyped key would
	// look removed; an earlier remove that did finish is the other cause
	// (running a step again is safe).
	Absent bool `json:"absent,omitempty"`
	// NotAsked maps the members serf did not ask, because they are failed
	// or left, to that status: a change does not reach them, and once
	// the old key is removed they cannot rejoin without the new key file.
	NotAsked map[string]string `json:"not_asked,omitempty"`
}

// KeyringOp is one of the keyring operations.
type KeyringOp string

// Keyring operations.
const (
	KeyList    KeyringOp = "list"
	KeyInstall KeyringOp = "install"
	KeyUse     KeyringOp = "use"
	KeyRemove  KeyringOp = "remove"
)

// Keyring runs op across the live fleet through serf's key manager: install
// adds a key everywhere, use makes it the primary (encrypting) key, remove
// drops it (a key no alive node has: nothing is done and the result says
// Absent). It fails when any node did not apply it, naming those that
// reported errors and counting those that did not answer.
func (f *Fleet) Keyring(op KeyringOp, key string) (KeyringResult, error) {
	if !f.serf.EncryptionEnabled() {
		return KeyringResult{}, ErrNotEncrypted
	}
	if op != KeyList {
		k, err := DecodeKey(key)
		if err != nil {
			return KeyringResult{}, err
		}
		if op == KeyRemove && f.ring != nil && bytes.Equal(k, f.ring.GetPrimaryKey()) {
			return KeyringResult{}, ErrPrimaryKey
		}
		if op == KeyUse && f.ring != nil && !containsKey(f.ring.GetKeys(), k) {
			return KeyringResult{}, fmt.Errorf("%w on this node: install it first with vigil keyring install, then use it", ErrKeyNotInstalled)
		}
		if op == KeyRemove && f.ring != nil && !containsKey(f.ring.GetKeys(), k) {
			// Another node may still hold it (an earlier remove that did
			// not reach every node): ask them all.
			members := f.serf.Members()
			resp, err := f.serf.KeyManager().ListKeys()
			if err == nil && resp != nil && resp.Keys[base64.StdEncoding.EncodeToString(k)] == 0 {
				res := KeyringResult{Keys: resp.Keys, PrimaryKeys: resp.PrimaryKeys, Nodes: resp.NumNodes, Responses: resp.NumResp, Errors: resp.NumErr, Absent: true}
				_, res.NotAsked = queryAudience(members)
				return res, nil
			}
		}
	}
	km := f.serf.KeyManager()
	// Who is not asked is read before the query: a member found failed
	// while it runs was asked (and is counted as silent), so it must not
	// be listed as not asked too.
	members := f.serf.Members()
	var (
		resp *serf.KeyResponse
		err  error
	)
	switch op {
	case KeyList:
		resp, err = km.ListKeys()
	case KeyInstall:
		resp, err = km.InstallKey(key)
	case KeyUse:
		resp, err = km.UseKey(key)
	case KeyRemove:
		resp, err = km.RemoveKey(key)
	default:
		return KeyringResult{}, fmt.Errorf("unknown keyring operation %q (want list, install, use or remove)", op)
	}
	var res KeyringResult
	if resp != nil {
		res = KeyringResult{Keys: resp.Keys, PrimaryKeys: resp.PrimaryKeys, Nodes: resp.NumNodes, Responses: resp.NumResp, Errors: resp.NumErr, Messages: resp.Messages}
	}
	_, res.NotAsked = queryAudience(members)
	f.m.keyringOps.WithLabelValues(string(op)).Inc()
	if err := incomplete(op, res, err); err != nil {
		return res, err
	}
	if op != KeyList && len(res.NotAsked) > 0 {
		f.logger.Warn("keyring change did not reach the failed or left members", "op", string(op), "not_asked", res.NotAsked)
	}
	if op != KeyList {
		f.logger.Info("keyring changed across the fleet", "op", string(op), "nodes", res.Nodes)
	}
	return res, nil
}

// incomplete says why a keyring operation did not reach every alive node:
// which nodes reported errors and how many did not answer, in place of
// serf's "2/3 nodes reported success", or nil when it did.
func incomplete(op KeyringOp, res KeyringResult, err error) error {
	silent := res.Nodes - res.Responses
	switch {
	case res.Errors == 0 && silent <= 0 && err == nil:
		return nil
	case res.Errors == 0 && silent <= 0:
		return fmt.Errorf("keyring %s: %w", op, err)
	}
	var parts []string
	if res.Errors > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d nodes reported errors%s", res.Errors, res.Nodes, nodeMessages(res.Messages)))
	}
	if silent > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d alive nodes did not answer in time (serf does not say which; vigil members lists the alive ones)", silent, res.Nodes))
	}
	return fmt.Errorf("keyring %s: incomplete: %s; run it again once every alive node answers", op, strings.Join(parts, "; "))
}

func nodeMessages(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	s := " ("
	for i, n := range names {
		if i > 0 {
			s += "; "
		}
		s += n + ": " + m[n]
	}
	return s + ")"
}
