package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigilml/vigil/agent/alert"
)

func runAlerts(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("alerts", "alerts [flags]", `
List a running agent's alerts: firing first, then pending (condition met,
waiting out the rule's "for"), with severity, value and threshold. With
-all, recently resolved alerts too. Delivery problems (an Alertmanager or
webhook that keeps failing) and rules that evaluate nothing are listed
below the table. See docs/alerts.md.`, stdout, stderr)
	format := fs.String("format", "table", "output `format`: table, text (the same) or json")
	all := fs.Bool("all", false, "also list recently resolved alerts (alerts.resolved_retention)")
	newClient := clientFlags(fs)
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if *format == "text" { // the other commands' name for it
		*format = "table"
	}
	if *format != "table" && *format != "json" {
		fmt.Fprintf(stderr, "vigil alerts: -format: %q is not table or json\n", *format)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vigil alerts: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	c, err := newClient()
	if err != nil {
		fmt.Fprintf(stderr, "vigil alerts: %v\n", err)
		return 2
	}
	var out struct {
		Enabled bool          `json:"enabled"`
		Alerts  []alert.Alert `json:"alerts"`
		Status  *alert.Status `json:"status,omitempty"`
	}
	path := "/v1/alerts?state=active"
	if *all {
		path = "/v1/alerts"
	}
	if _, err := c.Get(context.Background(), path, &out); err != nil {
		fmt.Fprintf(stderr, "vigil alerts: %v\n", err)
		return 2
	}
	if *format == "json" {
		return printJSON(stdout, out)
	}
	if !out.Enabled {
		fmt.Fprintln(stdout, "Alerts are disabled on this agent (alerts.enabled is false).")
		return 0
	}
	now := time.Now()
	if len(out.Alerts) == 0 {
		fmt.Fprintln(stdout, "No alerts.")
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "STATE\tSEVERITY\tRULE\tMODEL\tVERSION\tFEATURE\tVALUE\tTHRESHOLD\tSINCE\tSUMMARY")
		for _, a := range out.Alerts {
			since := now.Sub(a.ActiveSince)
			if a.ResolvedAt != nil {
				since = now.Sub(*a.ResolvedAt)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.State, a.Severity, a.Rule, a.Labels["model"], a.Labels["version"],
				orDash(a.Labels["feature"]), ruleValue(a.Rule, a.Value), ruleValue(a.Rule, a.Threshold), humanAge(since), a.Summary)
		}
		tw.Flush()
	}
	if st := out.Status; st != nil {
		for _, r := range st.Receivers {
			if r.Failing {
				fmt.Fprintf(stdout, "\nDelivery to %s %s is failing: %s\n", r.Kind, r.Name, r.LastError)
			}
		}
		if len(st.Receivers) == 0 {
			fmt.Fprintln(stdout, "\nNo Alertmanager or webhook is configured: alerts are only listed here and on /metrics.")
		}
		for _, in := range st.Inactive {
			fmt.Fprintf(stdout, "Not evaluated: %s\n", in)
		}
	}
	return 0
}

// ruleValue formats a value in its rule's unit.
func ruleValue(rule string, v float64) string {
	switch rule {
	case alert.RuleLatencyP95:
		return strconv.FormatFloat(v, 'f', 1, 64) + " ms"
	case alert.RuleErrorRate:
		return strconv.FormatFloat(v*100, 'f', 2, 64) + "%"
	case alert.RuleAccuracyDrop:
		return strconv.FormatFloat(v*100, 'f', 2, 64) + " pts"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

func humanAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m"
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}
