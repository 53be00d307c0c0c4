package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// listScope is what a list command was asked to show: the caller's own
// rows, or (--all) everyone's.
type listScope struct {
	me  pimv1.UserInfo
	all bool
}

// listRow is one line of a list; its namespace is as shown ("(cluster)"
// for a cluster-wide grant), so that -n can filter on it.
type listRow interface{ namespace() string }

// list describes one list command. Every list command is built from one
// by listCommand, which owns the flags and the output they share (--all,
// -n, -o), so that the commands cannot drift apart again: "reviews" once
// advertised an --all it never registered.
type list[R listRow] struct {
	use, short string
	// all says what --all adds, for the flag's help.
	all string
	// rows returns the rows in scope, sorted.
	rows func(ctx context.Context, scope listScope) ([]R, error)
	// header is the table's header, tab-separated; cells are one row's.
	header string
	cells  func(R) []string
	// empty is what to say when there is nothing to show.
	empty func(scope listScope) string
}

// listCommand builds a list command from l.
func listCommand[R listRow](p *pim, l list[R]) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   l.use,
		Short: l.short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Checked before asking the cluster anything: a typo in -o is
			// a usage error, not a half-written table.
			switch p.output {
			case "", "table", "json", "yaml":
			default:
				return usage("unknown output format %q: use table, json or yaml", p.output)
			}
			ctx := cmd.Context()
			me, err := p.whoami(ctx)
			if err != nil {
				return err
			}
			scope := listScope{me: me, all: all}
			rows, err := l.rows(ctx, scope)
			if err != nil {
				return err
			}
			rows = inNamespace(rows, p.namespace)
			if p.output == "json" || p.output == "yaml" {
				if rows == nil {
					rows = []R{} // [] rather than null, for scripts
				}
				return p.print(rows)
			}
			if len(rows) == 0 {
				p.say("%s", l.empty(scope))
				return nil
			}
			w := tabwriter.NewWriter(p.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, l.header)
			for _, r := range rows {
				fmt.Fprintln(w, strings.Join(l.cells(r), "\t"))
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, l.all)
	return cmd
}

// inNamespace keeps the rows that apply in namespace ns: those in it and
// the cluster-wide ones (a cluster-wide grant applies in every
// namespace). An empty ns keeps every row.
func inNamespace[R listRow](rows []R, ns string) []R {
	if ns == "" {
		return rows
	}
	var out []R
	for _, r := range rows {
		if r.namespace() == ns || r.namespace() == orAll("") {
			out = append(out, r)
		}
	}
	return out
}
