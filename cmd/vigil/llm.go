package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/vigilml/vigil/agent/gateway"
)

func runLLM(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "usage" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			fmt.Fprintln(stdout, "Usage: vigil llm usage [flags]\n\n  usage   each gateway budget: window, limit, spend and remainder")
			return 0
		}
		fmt.Fprintln(stderr, "Usage: vigil llm usage [flags]")
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
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vigil llm usage: unexpected argument %q\n", fs.Arg(0))
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
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BUDGET\tTOKEN\tALIAS\tWINDOW\tLIMIT USD\tSPENT USD\tLEFT USD\tESTIMATED USD")
	for _, b := range out.Budgets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.Name, orDash(b.Token), orDash(b.Alias), b.Window,
			gateway.FormatUSD(b.LimitUSD, 2), gateway.FormatUSD(b.SpentUSD, 4), gateway.FormatUSD(b.RemainingUSD, 4), gateway.FormatUSD(b.EstimatedUSD, 4))
	}
	tw.Flush()
	fmt.Fprintf(stdout, "Costs use list prices as of %s unless gateway.prices overrides them.\n", out.PricesAsOf)
	fmt.Fprintln(stdout, "ESTIMATED USD is the part of the spend priced from token counts the gateway estimated (upstreams that reported no usage).")
	return 0
}
