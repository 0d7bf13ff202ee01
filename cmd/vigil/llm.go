package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/vigilml/vigil/agent/gateway"
)

// usdDecimals is how many decimals every amount in vigil llm usage has:
// limits, spend, remainders and estimates in one table read alike, and a
// tenth of a cent still shows (FormatUSD gives a smaller non-zero amount
// three significant digits rather than 0.0000).
const usdDecimals = 4

func runLLM(args []string, stdout, stderr io.Writer) int {
	const help = `
The LLM gateway, through a running agent.

Subcommands:
  usage   each gateway budget: window, limit, spend and remainder in USD`
	if code, done := groupHelp(args, "vigil llm usage [flags]", help, stdout, stderr); done {
		return code
	}
	if args[0] != "usage" {
		fmt.Fprintf(stderr, "vigil llm: unknown subcommand %q (want usage)\n", args[0])
		return 2
	}
	fs := newFlags("llm usage", "llm usage [flags]", `
Show the LLM gateway's budgets (gateway.budgets): for each, what it applies
to, its window and limit, and the USD spent and left in the window.`, stdout, stderr)
	format := fs.String("format", "text", "output `format`: text or json")
	newClient := clientFlags(fs)
	if code, done := parseFlags(fs, args[1:], stdout); done {
		return code
	}
	if extraArgs(fs, stderr) {
		return 2
	}
	c, err := newClient()
	if err != nil {
		fmt.Fprintf(stderr, "vigil llm usage: %v\n", err)
		return 2
	}
	var out struct {
		Budgets    []gateway.BudgetStatus `json:"budgets"`
		PricesAsOf string                 `json:"prices_as_of"`
	}
	if _, err := c.Get(context.Background(), "/v1/llm/usage", &out); err != nil {
		fmt.Fprintf(stderr, "vigil llm usage: %v\n", err)
		return 2
	}
	if *format == "json" {
		return printJSON(stdout, out)
	}
	if len(out.Budgets) == 0 {
		fmt.Fprintln(stdout, "No gateway budgets to show: none are configured (gateway.budgets), or, for a token of scope llm, none names this token.")
		return 0
	}
	printUsage(stdout, out.Budgets)
	fmt.Fprintf(stdout, "Costs use list prices as of %s unless gateway.prices overrides them.\n", out.PricesAsOf)
	fmt.Fprintln(stdout, "ESTIMATED USD is the part of the spend priced from token counts the gateway estimated (upstreams that reported no usage).")
	return 0
}

// printUsage writes the budgets as a table whose amounts all have
// usdDecimals decimals and are aligned on the right, so that their
// decimal points line up.
func printUsage(w io.Writer, budgets []gateway.BudgetStatus) {
	header := []string{"LIMIT USD", "SPENT USD", "LEFT USD", "ESTIMATED USD"}
	amounts := make([][]string, len(budgets))
	width := make([]int, len(header))
	for i, h := range header {
		width[i] = len(h)
	}
	for i, b := range budgets {
		amounts[i] = []string{
			gateway.FormatUSD(b.LimitUSD, usdDecimals), gateway.FormatUSD(b.SpentUSD, usdDecimals),
			gateway.FormatUSD(b.RemainingUSD, usdDecimals), gateway.FormatUSD(b.EstimatedUSD, usdDecimals),
		}
		for j, a := range amounts[i] {
			width[j] = max(width[j], len(a))
		}
	}
	right := func(cells []string) string {
		padded := make([]string, len(cells))
		for j, c := range cells {
			padded[j] = fmt.Sprintf("%*s", width[j], c)
		}
		return strings.Join(padded, "\t")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "BUDGET\tTOKEN\tALIAS\tWINDOW\t%s\n", right(header))
	for i, b := range budgets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", b.Name, orDash(b.Token), orDash(b.Alias), b.Window, right(amounts[i]))
	}
	tw.Flush()
}
