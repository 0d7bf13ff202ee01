package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"

	"github.com/vigilml/vigil/agent/drift"
)

// driftResponse is the body of GET /v1/models/{model}/drift.
type driftResponse struct {
	Model    string             `json:"model"`
	Versions []drift.Evaluation `json:"versions"`
}

// driftModel prints a running agent's latest drift evaluation of a model.
func driftModel(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("drift", "drift MODEL [flags]", `
Show a running agent's latest drift evaluation of MODEL: per version the
verdict and the multiple-testing correction, and per feature the method,
statistic, p-value (raw and adjusted), threshold, severity and the sizes
of the reference and current windows. With -evaluate the agent evaluates
now instead of showing its last periodic evaluation.

Exit status: 0 when no feature is critical, 1 when one is, 2 on error.
See docs/drift.md.`, stdout, stderr)
	version := fs.String("version", "", "only this model `version`")
	format := fs.String("format", "table", "output `format`: table, text (the same) or json")
	evaluate := fs.Bool("evaluate", false, "evaluate now (needs a write token when the API has tokens)")
	newClient := clientFlags(fs)
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "vigil drift: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() != 1 {
		return fail("want exactly one MODEL argument (or the compare subcommand)")
	}
	if *format == "text" { // the other commands' name for it
		*format = "table"
	}
	if *format != "table" && *format != "json" {
		return fail("-format %q: want table or json", *format)
	}
	c, err := newClient()
	if err != nil {
		return fail("%v", err)
	}
	path := "/v1/models/" + url.PathEscape(fs.Arg(0)) + "/drift"
	method := http.MethodGet
	if *evaluate {
		path, method = path+"/evaluate", http.MethodPost
	}
	if *version != "" {
		path += "?version=" + url.QueryEscape(*version)
	}
	var out driftResponse
	if _, err := c.Do(context.Background(), method, path, nil, &out); err != nil {
		return fail("%v", err)
	}
	critical := false
	for _, v := range out.Versions {
		for _, f := range v.Features {
			critical = critical || f.Severity == drift.SeverityCritical
		}
	}
	code := 0
	if critical {
		code = 1
	}
	if *format == "json" {
		printJSON(stdout, out)
		return code
	}
	num := func(p *float64) string {
		if p == nil {
			return "-"
		}
		return strconv.FormatFloat(*p, 'g', 4, 64)
	}
	if len(out.Versions) == 0 {
		fmt.Fprintf(stdout, "%s: no drift evaluation yet; the agent evaluates every drift.interval (-evaluate asks for one now)\n", out.Model)
		return code
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	for i, v := range out.Versions {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		acc := ""
		if v.ReferenceAccuracy != nil {
			acc = fmt.Sprintf(", reference accuracy %.2f%% of %d labelled", *v.ReferenceAccuracy*100, v.ReferenceLabelled)
		}
		when := "never"
		if !v.EvaluatedAt.IsZero() {
			when = v.EvaluatedAt.Format("2006-01-02T15:04:05Z07:00")
		}
		fmt.Fprintf(tw, "%s %s: %s (correction %s, evaluated %s%s)\n", out.Model, v.Version, v.Verdict, v.Correction, when, acc)
		if v.Verdict == drift.VerdictNoReference {
			fmt.Fprintf(tw, "  no reference window yet: the version's first drift.reference_size observations become one, or pin one (POST /v1/models/%s/reference)\n", out.Model)
		}
		if len(v.Features) == 0 {
			continue
		}
		fmt.Fprintln(tw, "FEATURE\tMETHOD\tSTATISTIC\tP-VALUE\tADJ P\tTHRESHOLD\tSEVERITY\tREF N\tCUR N\tERROR")
		for _, f := range v.Features {
			stat := "-"
			if f.Method != "" && f.Error == "" && f.Severity != drift.SeverityInsufficientData {
				stat = strconv.FormatFloat(f.Statistic, 'g', 6, 64)
			}
			thr := "-"
			if f.Threshold != 0 {
				thr = strconv.FormatFloat(f.Threshold, 'g', -1, 64)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", f.Feature, orDash(f.Method), stat, num(f.PValue), num(f.AdjustedPValue),
				thr, f.Severity, f.ReferenceN, f.CurrentN, orDash(f.Error))
		}
		for _, f := range v.Features {
			if f.Warning != "" {
				fmt.Fprintf(tw, "  warning: %s: %s\n", f.Feature, f.Warning)
			}
		}
	}
	tw.Flush()
	return code
}
