package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigilml/vigil/agent"
	"github.com/vigilml/vigil/agent/telemetry"
)

func runGPU(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("gpu", "gpu [flags]", `
Show the GPUs a running agent sees, as a compact table: utilization, memory,
temperature, power, clocks and the processes on each GPU. Simulated GPUs
(telemetry.gpu.simulate) are labelled as such.`, stdout, stderr)
	format := fs.String("format", "text", "output `format`: text or json")
	newClient := clientFlags(fs)
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if extraArgs(fs, stderr) {
		return 2
	}
	c, err := newClient()
	if err != nil {
		fmt.Fprintf(stderr, "vigil gpu: %v\n", err)
		return 2
	}
	var snap telemetry.GPUSnapshot
	if _, err := c.Get(context.Background(), "/v1/gpus", &snap); err != nil {
		fmt.Fprintf(stderr, "vigil gpu: %v\n", err)
		return 2
	}
	if *format == "json" {
		return printJSON(stdout, snap)
	}
	if snap.Error != "" && len(snap.Devices) == 0 {
		fmt.Fprintf(stdout, "No GPUs: %s\n", snap.Error)
		return 0
	}
	header := fmt.Sprintf("Driver %s, CUDA %s, sampled %s", orDash(snap.DriverVersion), orDash(snap.CUDAVersion), snap.Time.Local().Format(time.TimeOnly))
	if snap.Simulated {
		header += "  ** SIMULATED GPUs, not real hardware **"
	}
	if snap.Stale {
		header += "  ** STALE **"
	}
	fmt.Fprintln(stdout, header)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GPU\tNAME\tUTIL\tMEMORY\tTEMP\tPOWER\tSM CLOCK\tPROCESSES")
	for _, d := range snap.Devices {
		id := strconv.Itoa(d.Index)
		if d.MIG != nil {
			id = fmt.Sprintf("%d/mig%d.%d", d.MIG.ParentIndex, d.MIG.GPUInstanceID, d.MIG.ComputeInstanceID)
		}
		if d.Lost {
			fmt.Fprintf(tw, "%s\t%s\tLOST: %s\t\t\t\t\t\n", id, d.Name, d.Error)
			continue
		}
		var procs []string
		for _, p := range d.Processes {
			mem := ""
			if p.UsedMemoryBytes != nil {
				mem = " " + humanBytes(float64(*p.UsedMemoryBytes))
			}
			procs = append(procs, fmt.Sprintf("%d %s%s", p.PID, p.Name, mem))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, d.Name,
			pct(d.UtilizationRatio), memory(d.MemoryUsedBytes, d.MemoryTotalBytes),
			unit(d.TemperatureCelsius, "%.0f C"), power(d.PowerWatts, d.PowerLimitWatts),
			unit(scale(d.SMClockHertz, 1e-6), "%.0f MHz"), orDash(strings.Join(procs, ", ")))
	}
	tw.Flush()
	return 0
}

func runHost(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("host", "host [flags]", `
Show the host a running agent watches: CPU, load, memory, swap, file systems,
and the model-server processes configured in telemetry.host.processes.`, stdout, stderr)
	format := fs.String("format", "text", "output `format`: text or json")
	newClient := clientFlags(fs)
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if extraArgs(fs, stderr) {
		return 2
	}
	c, err := newClient()
	if err != nil {
		fmt.Fprintf(stderr, "vigil host: %v\n", err)
		return 2
	}
	var h telemetry.HostSnapshot
	if _, err := c.Get(context.Background(), "/v1/host", &h); err != nil {
		fmt.Fprintf(stderr, "vigil host: %v\n", err)
		return 2
	}
	if *format == "json" {
		return printJSON(stdout, h)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	stale := ""
	if h.Stale {
		stale = "  ** STALE **"
	}
	fmt.Fprintf(tw, "Sampled:\t%s%s\n", h.Time.Local().Format(time.TimeOnly), stale)
	fmt.Fprintf(tw, "CPU:\t%s of %d cores\n", pct(h.CPUUtilizationRatio), h.CPUCount)
	fmt.Fprintf(tw, "Load:\t%s %s %s\n", unit(h.Load1, "%.2f"), unit(h.Load5, "%.2f"), unit(h.Load15, "%.2f"))
	if h.Memory != nil {
		fmt.Fprintf(tw, "Memory:\t%s used of %s (%s available)\n", humanBytes(float64(h.Memory.UsedBytes)), humanBytes(float64(h.Memory.TotalBytes)), humanBytes(float64(h.Memory.AvailableBytes)))
	}
	if h.Swap != nil {
		fmt.Fprintf(tw, "Swap:\t%s used of %s\n", humanBytes(float64(h.Swap.UsedBytes)), humanBytes(float64(h.Swap.TotalBytes)))
	}
	if h.Error != "" {
		fmt.Fprintf(tw, "Errors:\t%s\n", h.Error)
	}
	tw.Flush()
	if len(h.Filesystems) > 0 {
		fmt.Fprintln(stdout, "\nFile systems:")
		tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  MOUNT\tTYPE\tUSED\tAVAILABLE\tSIZE")
		for _, f := range h.Filesystems {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", f.MountPoint, f.FSType, humanBytes(float64(f.SizeBytes-f.FreeBytes)), humanBytes(float64(f.AvailableBytes)), humanBytes(float64(f.SizeBytes)))
		}
		tw.Flush()
	}
	if len(h.ModelServers) > 0 {
		fmt.Fprintln(stdout, "\nModel servers:")
		b, _ := json.MarshalIndent(h.ModelServers, "  ", "  ")
		fmt.Fprintf(stdout, "  %s\n", b)
	}
	return 0
}

func runQuery(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("query", "query [flags] SERIES", `
Query the agent's local history of a series (kept in its durable store for
store.retention). With -step, points are aggregated per step with -agg
(by default the last value for a counter, a series named *_total, or a
histogram's or summary's *_count, *_sum or *_bucket, and the average
otherwise), each stamped at the start of its step; the start of -since is
rounded down to a multiple of the step, so the steps fall on round times.
The table shows times in the local time zone (TZ); CSV and JSON in UTC.

Examples:
  vigil query vigil_gpu_utilization_ratio -match gpu=0 -since 15m -step 1m
  vigil query vigil_host_load1 -since 2h -step 5m -agg max -format csv`, stdout, stderr)
	var matches multiFlag
	fs.Var(&matches, "match", "label `matcher` (name=value, name!=value, name=~regex, name!~regex); repeatable")
	since := fs.Duration("since", time.Hour, "how far back to look: a Go duration such as 90m or 48h (there is no d unit)")
	step := fs.Duration("step", 0, "aggregate into steps of this `duration` (0: raw points)")
	agg := fs.String("agg", "", "aggregation per step: avg, min, max, last or p95 (default with -step: last for a counter, a series named *_total, *_count, *_sum or *_bucket; avg otherwise)")
	format := fs.String("format", "text", "output `format`: text, csv or json")
	newClient := clientFlags(fs)
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "vigil query: give exactly one SERIES name")
		return 2
	}
	if *since <= 0 || *step < 0 {
		fmt.Fprintf(stderr, "vigil query: -since must be positive and -step not negative (got -since %s, -step %s)\n", *since, *step)
		return 2
	}
	c, err := newClient()
	if err != nil {
		fmt.Fprintf(stderr, "vigil query: %v\n", err)
		return 2
	}
	q := url.Values{"series": {fs.Arg(0)}, "start": {"-" + since.String()}}
	for _, m := range matches {
		q.Add("match[]", m)
	}
	if *step > 0 {
		q.Set("step", step.String())
		// Steps are cut from the start: round it down to a multiple of the
		// step so that points fall on round times (13:05, 13:10, not
		// 13:04:37, 13:09:37) and stay put from one run to the next.
		q.Set("start", time.Now().Add(-*since).Truncate(*step).UTC().Format(time.RFC3339Nano))
	}
	if *agg != "" {
		q.Set("agg", *agg)
	}
	var res agent.QueryResult
	if _, err := c.Get(context.Background(), "/v1/query?"+q.Encode(), &res); err != nil {
		fmt.Fprintf(stderr, "vigil query: %v\n", err)
		return 2
	}
	switch *format {
	case "json":
		return printJSON(stdout, res)
	case "csv":
		w := csv.NewWriter(stdout)
		w.Write([]string{"series", "labels", "time", "value"})
		for _, s := range res.Series {
			ls := labelString(s.Labels)
			for _, p := range s.Points {
				w.Write([]string{s.Name, ls, pointTime(p[0]).UTC().Format(time.RFC3339Nano), fmt.Sprint(p[1])})
			}
		}
		w.Flush()
		return 0
	}
	if len(res.Series) == 0 {
		fmt.Fprintf(stdout, "No samples of %s between %s and %s.\n", fs.Arg(0), res.Start.Local().Format(time.DateTime), res.End.Local().Format(time.DateTime))
		return 0
	}
	for i, s := range res.Series {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		fmt.Fprintf(stdout, "%s%s\n", s.Name, labelString(s.Labels))
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		for _, p := range s.Points {
			fmt.Fprintf(tw, "  %s\t%s\n", pointTime(p[0]).Local().Format(time.DateTime), textValue(p[1]))
		}
		tw.Flush()
	}
	return 0
}

// textValue is a point's value for the text table: rounded to 12
// significant digits, so that float noise from an average
// (3.5919999999999983) reads 3.592, written without an exponent where
// that stays short; whole numbers below 10^15 (byte counts) exactly. CSV
// and JSON keep the agent's exact value.
func textValue(v any) string {
	s := fmt.Sprint(v)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return s
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	r, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'g', 12, 64), 64)
	if a := math.Abs(r); a >= 1e-4 && a < 1e15 {
		return strconv.FormatFloat(r, 'f', -1, 64)
	}
	return strconv.FormatFloat(r, 'g', -1, 64)
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func pointTime(v any) time.Time {
	f, _ := v.(float64)
	return time.UnixMilli(int64(f * 1000))
}

func labelString(ls map[string]string) string {
	if len(ls) == 0 {
		return ""
	}
	keys := make([]string, 0, len(ls))
	for k := range ls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, ls[k])
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func printJSON(w io.Writer, v any) int {
	b, _ := json.MarshalIndent(v, "", "  ")
	fmt.Fprintln(w, string(b))
	return 0
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func pct(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", *v*100)
}

func unit(v *float64, format string) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf(format, *v)
}

func scale(v *float64, f float64) *float64 {
	if v == nil {
		return nil
	}
	x := *v * f
	return &x
}

func power(w, limit *float64) string {
	if w == nil {
		return "-"
	}
	if limit == nil {
		return fmt.Sprintf("%.0f W", *w)
	}
	return fmt.Sprintf("%.0f/%.0f W", *w, *limit)
}

func memory(used, total *uint64) string {
	if used == nil || total == nil {
		return "-"
	}
	return humanBytes(float64(*used)) + " / " + humanBytes(float64(*total))
}

func humanBytes(b float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f %s", b, units[i])
	}
	return fmt.Sprintf("%.1f %s", b, units[i])
}
