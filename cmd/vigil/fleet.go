package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/vigilml/vigil/agent/client"
	"github.com/vigilml/vigil/agent/fleet"
)

func runKeygen(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("keygen", "keygen", `
Print a fresh random 32-byte gossip encryption key, base64-encoded, for
gossip.encrypt_key (or VIGIL_GOSSIP_ENCRYPT_KEY) and vigil keyring install.`, stdout, stderr)
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(stderr, "vigil keygen: takes no arguments")
		return 2
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		fmt.Fprintf(stderr, "vigil keygen: %v\n", err)
		return 2
	}
	fmt.Fprintln(stdout, base64.StdEncoding.EncodeToString(key))
	return 0
}

func runKeyring(args []string, stdout, stderr io.Writer) int {
	const help = `
Manage the gossip encryption keys of the whole live fleet, through the local
agent (serf's key manager asks every alive node).

Subcommands:
  list          every installed key and how many nodes have it
  install KEY   add KEY to every node's keyring (it decrypts, not yet encrypts)
  use KEY       make KEY the primary key that encrypts, on every node
  remove KEY    drop KEY from every node's keyring (not the primary key)

Rotation: vigil keygen, install the new key, use it, remove the old one.

Failed and left members are not asked (they are named; they keep their old
keys). Exit status: 0 when every alive node answered and applied it; 2 when
the answer is incomplete (an alive node reported an error or did not answer
in time; serf does not say which one was silent): what the nodes that
answered said is printed, then the error, and the step should be run again;
2 also when the agent could not be asked or refused the request.`
	if code, done := groupHelp(args, "vigil keyring <list|install|use|remove> [KEY] [flags]", help, stdout, stderr); done {
		return code
	}
	sub, args := args[0], args[1:]
	op := fleet.KeyringOp(sub)
	switch op {
	case fleet.KeyList, fleet.KeyInstall, fleet.KeyUse, fleet.KeyRemove:
	default:
		fmt.Fprintf(stderr, "vigil keyring: unknown subcommand %q (want list, install, use or remove)\n", sub)
		return 2
	}
	usage := "keyring " + sub + " KEY [flags]"
	if op == fleet.KeyList {
		usage = "keyring list [flags]"
	}
	fs := newFlags("keyring "+sub, usage, help, stdout, stderr)
	format := fs.String("format", "text", "output `format`: text or json")
	newClient := clientFlags(fs)
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	want := 1
	if op == fleet.KeyList {
		want = 0
	}
	switch {
	case fs.NArg() == want:
	case want == 0:
		fmt.Fprintf(stderr, "vigil keyring list: takes no arguments, got %q\n", fs.Args())
		return 2
	case fs.NArg() == 0:
		fmt.Fprintf(stderr, "vigil keyring %s: want the KEY, base64 as vigil keyring list shows it (vigil keygen makes a new one)\n", sub)
		return 2
	default:
		fmt.Fprintf(stderr, "vigil keyring %s: want one KEY, got %d arguments: %q\n", sub, fs.NArg(), fs.Args())
		return 2
	}
	c, err := newClient()
	if err != nil {
		fmt.Fprintf(stderr, "vigil keyring %s: %v\n", sub, err)
		return 2
	}
	var res fleet.KeyringResult
	if op == fleet.KeyList {
		_, err = c.Get(context.Background(), "/v1/fleet/keyring", &res)
	} else {
		_, err = c.Do(context.Background(), http.MethodPost, "/v1/fleet/keyring", map[string]string{"op": sub, "key": fs.Arg(0)}, &res)
	}
	var incomplete error
	if err != nil {
		partial, ok := keyringPartial(err)
		if !ok {
			fmt.Fprintf(stderr, "vigil keyring %s: %v\n", sub, err)
			return 2
		}
		// The agent answered 502 keyring_incomplete with what the nodes
		// that answered said: print it as a complete answer, then why it
		// is not one.
		res, incomplete = partial, err
	}
	if *format == "json" {
		printJSON(stdout, res)
		return keyringExit(stderr, incomplete)
	}
	printKeyring(stdout, op, res)
	if incomplete != nil {
		printKeyringMissing(stdout, res)
	}
	printNotAsked(stdout, res.NotAsked)
	return keyringExit(stderr, incomplete)
}

// keyringPartial returns the partial result of a keyring answer that did
// not reach every alive node (502 keyring_incomplete), or false when err
// is another error.
func keyringPartial(err error) (fleet.KeyringResult, bool) {
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != "keyring_incomplete" {
		return fleet.KeyringResult{}, false
	}
	var body struct {
		Result *fleet.KeyringResult `json:"result"`
	}
	// No node asked (the query could not be sent): nothing to print.
	if json.Unmarshal(apiErr.Body, &body) != nil || body.Result == nil || body.Result.Nodes == 0 {
		return fleet.KeyringResult{}, false
	}
	return *body.Result, true
}

// keyringExit says on stderr why a keyring answer is incomplete (the
// agent's message: "keyring install: incomplete: ...") and returns the
// exit status: 2 when it is, else 0.
func keyringExit(stderr io.Writer, incomplete error) int {
	if incomplete == nil {
		return 0
	}
	msg := incomplete.Error()
	var apiErr *client.APIError
	if errors.As(incomplete, &apiErr) {
		msg = apiErr.Message
	}
	fmt.Fprintf(stderr, "vigil %s\n", msg)
	return 2
}

// printKeyring prints a keyring answer as text: the keys (list), how many
// nodes applied the change, or that no node has the key to remove.
func printKeyring(stdout io.Writer, op fleet.KeyringOp, res fleet.KeyringResult) {
	if res.Absent {
		fmt.Fprintf(stdout, "%s: no node has this key; nothing done (already removed, or mistyped: vigil keyring list shows the installed keys)\n", op)
		return
	}
	if op != fleet.KeyList {
		fmt.Fprintf(stdout, "%s: done on %d of %d nodes\n", op, res.Responses-res.Errors, res.Nodes)
		return
	}
	keys := make([]string, 0, len(res.Keys))
	for k := range res.Keys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tNODES\tPRIMARY ON")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%d/%d\t%d\n", k, res.Keys[k], res.Nodes, res.PrimaryKeys[k])
	}
	tw.Flush()
}

// printKeyringMissing names the nodes of an incomplete keyring answer that
// reported errors, with their messages, and counts the alive nodes that
// did not answer in time (serf does not name them).
func printKeyringMissing(w io.Writer, res fleet.KeyringResult) {
	names := make([]string, 0, len(res.Messages))
	for n := range res.Messages {
		names = append(names, n)
	}
	sort.Strings(names)
	msgs := make([]string, len(names))
	for i, n := range names {
		msgs[i] = n + ": " + res.Messages[n]
	}
	switch {
	case res.Errors > 0 && len(msgs) > 0:
		fmt.Fprintf(w, "errors: %d of %d nodes (%s)\n", res.Errors, res.Nodes, strings.Join(msgs, "; "))
	case res.Errors > 0:
		fmt.Fprintf(w, "errors: %d of %d nodes\n", res.Errors, res.Nodes)
	case len(msgs) > 0:
		fmt.Fprintf(w, "messages: %s\n", strings.Join(msgs, "; "))
	}
	if silent := res.Nodes - res.Responses; silent > 0 {
		fmt.Fprintf(w, "no answer in time: %d of %d alive nodes (serf does not say which; vigil members lists the alive ones)\n", silent, res.Nodes)
	}
}

func runMembers(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("members", "members [flags]", `
List the fleet's members as this agent sees them: name, gossip address,
status (alive, leaving, left, failed) and tags (role, agent version, models
served, health summary: g=GPU utilization %, p=worst p95 ms, e=worst error
rate, d=drifting features, a=alerts).`, stdout, stderr)
	format := fs.String("format", "text", "output `format`: text or json")
	detailed := fs.Bool("detailed", false, "show each tag on its own line, the models decoded, and the serf protocol")
	status := fs.String("status", "", "only members with this `status` (alive, leaving, left, failed)")
	newClient := clientFlags(fs)
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	switch *status {
	case "", "alive", "leaving", "left", "failed":
	default:
		fmt.Fprintf(stderr, "vigil members: -status: %q is not alive, leaving, left or failed\n", *status)
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "vigil members: takes no arguments, got %q\n", fs.Args())
		return 2
	}
	c, err := newClient()
	if err != nil {
		fmt.Fprintf(stderr, "vigil members: %v\n", err)
		return 2
	}
	var out struct {
		Members []fleet.Member `json:"members"`
	}
	if _, err := c.Get(context.Background(), "/v1/fleet/members", &out); err != nil {
		fmt.Fprintf(stderr, "vigil members: %v\n", err)
		return 2
	}
	if *status != "" {
		kept := out.Members[:0]
		for _, m := range out.Members {
			if m.Status == *status {
				kept = append(kept, m)
			}
		}
		out.Members = kept
	}
	if *format == "json" {
		return printJSON(stdout, out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	if *detailed {
		for i, m := range out.Members {
			if i > 0 {
				fmt.Fprintln(tw)
			}
			fmt.Fprintf(tw, "Node:\t%s\nAddress:\t%s\nStatus:\t%s\nProtocol:\t%d\n", m.Name, m.Address, m.Status, m.Protocol)
			keys := make([]string, 0, len(m.Tags))
			for k := range m.Tags {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(tw, "Tag %s:\t%s\n", k, m.Tags[k])
			}
			if len(m.Info.Models) > 0 {
				var names []string
				for _, mo := range m.Info.Models {
					names = append(names, strings.TrimSuffix(mo.Name+"@"+mo.Version, "@"))
				}
				extra := ""
				if m.Info.ModelsOmitted > 0 {
					extra = fmt.Sprintf(" (+%d not in the tag)", m.Info.ModelsOmitted)
				}
				fmt.Fprintf(tw, "Models:\t%s%s\n", strings.Join(names, ", "), extra)
			}
		}
		tw.Flush()
		return 0
	}
	fmt.Fprintln(tw, "Node\tAddress\tStatus\tTags")
	for _, m := range out.Members {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.Name, m.Address, m.Status, m.Info.String())
	}
	tw.Flush()
	return 0
}

func runFleet(args []string, stdout, stderr io.Writer) int {
	const help = `
Ask the whole fleet.

Subcommands:
  stats MODEL   merged latency quantiles, error rate and node count of MODEL
                over every node that serves it (a vigil-stats serf query)

Failed and left members are not asked (they are named; what they served is
not counted). Exit status: 0 when every alive node answered; 1 when the
answer is incomplete (an alive node did not answer within
gossip.query_timeout, or its answer was unreadable): the answers that came
are printed and the nodes that did not answer named; 2 when the agent could
not be asked.`
	if code, done := groupHelp(args, "vigil fleet stats MODEL [flags]", help, stdout, stderr); done {
		return code
	}
	if args[0] != "stats" {
		fmt.Fprintf(stderr, "vigil fleet: unknown subcommand %q (want stats)\n", args[0])
		return 2
	}
	fs := newFlags("fleet stats", "fleet stats MODEL [flags]", help, stdout, stderr)
	format := fs.String("format", "text", "output `format`: text or json")
	newClient := clientFlags(fs)
	// The agent answers once every node has, or after gossip.query_timeout
	// (up to 1m): wait that long, not the 10 s of other commands.
	if t := fs.Lookup("timeout"); t != nil {
		t.DefValue = "1m10s"
		_ = t.Value.Set(t.DefValue)
	}
	if code, done := parseFlags(fs, args[1:], stdout); done {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "vigil fleet stats: want exactly one MODEL")
		return 2
	}
	c, err := newClient()
	if err != nil {
		fmt.Fprintf(stderr, "vigil fleet stats: %v\n", err)
		return 2
	}
	var st fleet.FleetStats
	if _, err := c.Get(context.Background(), "/v1/fleet/models/"+url.PathEscape(fs.Arg(0))+"/stats", &st); err != nil {
		fmt.Fprintf(stderr, "vigil fleet stats: %v\n", err)
		return 2
	}
	incomplete := st.Incomplete()
	if *format == "json" {
		printJSON(stdout, st)
		return statsExit(stderr, incomplete)
	}
	ms := func(v *float64) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprintf("%.1f ms", *v)
	}
	rate := "-"
	if st.ErrorRate != nil {
		rate = fmt.Sprintf("%.3f%%", *st.ErrorRate*100)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Model:\t%s\n", st.Model)
	if len(st.Answered) > 0 {
		fmt.Fprintf(tw, "Nodes:\t%d serving (%s)\n", st.Nodes, strings.Join(st.Answered, ", "))
	} else {
		fmt.Fprintf(tw, "Nodes:\t%d serving\n", st.Nodes)
	}
	fmt.Fprintf(tw, "Requests:\t%d\nErrors:\t%d (%s)\n", st.Requests, st.Errors, rate)
	fmt.Fprintf(tw, "p50 / p95 / p99:\t%s / %s / %s (sketches at ±%g%% relative accuracy)\n", ms(st.P50Ms), ms(st.P95Ms), ms(st.P99Ms), st.RelativeAccuracy*100)
	if len(st.NotServing) > 0 {
		fmt.Fprintf(tw, "Not serving:\t%s\n", strings.Join(st.NotServing, ", "))
	}
	if len(st.Missing) > 0 {
		fmt.Fprintf(tw, "No answer in time:\t%s\n", strings.Join(st.Missing, ", "))
	}
	if len(st.Invalid) > 0 {
		fmt.Fprintf(tw, "Unreadable answer:\t%s\n", strings.Join(st.Invalid, ", "))
	}
	if len(st.NotAsked) > 0 {
		fmt.Fprintf(tw, "Not asked:\t%s\n", notAskedList(st.NotAsked))
	}
	tw.Flush()
	return statsExit(stderr, incomplete)
}

// statsExit says on stderr why a fleet stats answer is incomplete and
// returns the exit status: 1 when it is, else 0.
func statsExit(stderr io.Writer, incomplete error) int {
	if incomplete == nil {
		return 0
	}
	fmt.Fprintf(stderr, "vigil %v\n", incomplete)
	return 1
}

// notAskedList names the failed and left members, with their status.
func notAskedList(notAsked map[string]string) string {
	names := make([]string, 0, len(notAsked))
	for n, st := range notAsked {
		names = append(names, n+" ("+st+")")
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// printNotAsked names the members a keyring command did not reach.
func printNotAsked(w io.Writer, notAsked map[string]string) {
	if len(notAsked) == 0 {
		return
	}
	fmt.Fprintf(w, "not asked: %s: these nodes keep their old keys; once the old key is removed, give them the new key file and delete their serf/keyring.json before they start\n", notAskedList(notAsked))
}
