package fleet

import (
	"bytes"
	"errors"
	"fmt"
	"sort"

	"github.com/hashicorp/serf/serf"
)

// ErrNotEncrypted is returned by keyring operations when gossip runs
// without encryption: there is no keyring to change.
var ErrNotEncrypted = errors.New("gossip encryption is not enabled on this node (set gossip.encrypt_key); there is no keyring")

// ErrPrimaryKey is returned when asked to remove the key this node
// encrypts with; serf would refuse it on every node.
var ErrPrimaryKey = errors.New("the key is the primary (encrypting) key and cannot be removed: make another key primary first with vigil keyring use")

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
// drops it. It fails when any node did not apply it, naming them.
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
	}
	km := f.serf.KeyManager()
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
	for _, m := range f.serf.Members() {
		if m.Status == serf.StatusFailed || m.Status == serf.StatusLeft {
			if res.NotAsked == nil {
				res.NotAsked = map[string]string{}
			}
			res.NotAsked[m.Name] = m.Status.String()
		}
	}
	f.m.keyringOps.WithLabelValues(string(op)).Inc()
	if err != nil {
		return res, fmt.Errorf("keyring %s: %w%s", op, err, nodeMessages(res.Messages))
	}
	if res.Responses < res.Nodes {
		return res, fmt.Errorf("keyring %s: only %d of %d nodes answered; run it again once they are reachable", op, res.Responses, res.Nodes)
	}
	if op != KeyList && len(res.NotAsked) > 0 {
		f.logger.Warn("keyring change did not reach the failed or left members", "op", string(op), "not_asked", res.NotAsked)
	}
	f.logger.Info("keyring changed across the fleet", "op", string(op), "nodes", res.Nodes)
	return res, nil
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
