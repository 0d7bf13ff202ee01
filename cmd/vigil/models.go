package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"text/tabwriter"

	"github.com/vigilml/vigil/agent/observe"
)

func runModels(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("models", "models [flags]", `
List the models a running agent monitors, one line per version, with the
latency percentiles, error rate, throughput and accuracy over a sliding
window (1m, 5m or 1h), and the totals kept since the oldest stored
observation.`, stdout, stderr)
	window := fs.String("window", "5m", "sliding `window`: 1m, 5m or 1h")
	format := fs.String("format", "text", "output `format`: text or json")
	newClient := clientFlags(fs)
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if extraArgs(fs, stderr) {
		return 2
	}
	if *format != "text" && *format != "json" {
		fmt.Fprintf(stderr, "vigil models: -format: %q is not text or json\n", *format)
		return 2
	}
	if _, err := observe.ParseWindow(*window); err != nil {
		fmt.Fprintf(stderr, "vigil models: -window: %v\n", err)
		return 2
	}
	c, err := newClient()
	if err != nil {
		fmt.Fprintf(stderr, "vigil models: %v\n", err)
		return 2
	}
	var out struct {
		Models []observe.ModelInfo `json:"models"`
	}
	if _, err := c.Get(context.Background(), "/v1/models?window="+url.QueryEscape(*window), &out); err != nil {
		fmt.Fprintf(stderr, "vigil models: %v\n", err)
		return 2
	}
	if *format == "json" {
		return printJSON(stdout, out)
	}
	if len(out.Models) == 0 {
		fmt.Fprintln(stdout, "No observations yet: model servers report them with POST /v1/observations (docs/models.md).")
		return 0
	}
	ms := func(v *float64) string {
		if v == nil {
			return "-"
		}
		if *v > 0 && *v < 0.1 {
			return strconv.FormatFloat(*v, 'g', 2, 64) // 0.0055, not 0.0
		}
		return strconv.FormatFloat(*v, 'f', 1, 64)
	}
	pct := func(v *float64) string {
		if v == nil {
			return "-"
		}
		return strconv.FormatFloat(*v*100, 'f', 2, 64) + "%"
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "MODEL\tVERSION\tREQS/%s\tRPS\tP50 MS\tP95 MS\tP99 MS\tERRORS\tACCURACY\tTOTAL\n", *window)
	for _, m := range out.Models {
		for _, v := range m.Versions {
			st := v.Stats
			if st == nil {
				st = &observe.WindowStats{}
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\t%s\t%s\t%s\t%s\t%s\t%d\n", m.Model, v.Version, st.Requests, st.RequestsPerSecond,
				ms(st.LatencyP50Ms), ms(st.LatencyP95Ms), ms(st.LatencyP99Ms), pct(st.ErrorRate), pct(st.Accuracy), v.Observations)
		}
	}
	tw.Flush()
	return 0
}
