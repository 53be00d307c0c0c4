package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubepim/kubepim/internal/audit"
)

func (p *pim) auditCommand() *cobra.Command {
	var since, until, role, user, action, kubepimNamespace string
	cmd := &cobra.Command{
		Use:   "audit [--since 24h] [--role R] [--user U] [--action A] [-o table|csv|json]",
		Short: "The audit trail: who asked, who approved, when access began and ended",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := audit.Filter{Role: role, User: user, Action: action}
			var err error
			if f.Since, err = parseSince(since, p.clock.Now()); err != nil {
				return err
			}
			if f.Until, err = parseSince(until, p.clock.Now()); err != nil {
				return err
			}
			switch p.output {
			case "csv", "json":
				return audit.Export(cmd.Context(), p.c, f, p.output, p.Out)
			case "", "table":
			default:
				return usage("-o must be table, csv or json")
			}
			var b strings.Builder
			if err := audit.Export(cmd.Context(), p.c, f, "csv", &b); err != nil {
				return err
			}
			w := tabwriter.NewWriter(p.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SEQ\tTIME\tACTION\tACTOR\tSUBJECT\tROLE\tNAMESPACE\tOUTCOME\tREASON")
			lines := strings.Split(strings.TrimSpace(b.String()), "\n")
			for _, row := range csvRows(lines) {
				// sequence,time,action,outcome,actor,actorGroups,subjectKind,subject,roleKind,role,namespace,...
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row[0], row[1], row[2], dash(row[4]), dash(row[7]), dash(row[9]), dash(row[10]), row[3], row[16])
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "Events at or after: a duration back from now (24h, 30d) or an RFC 3339 time.")
	cmd.Flags().StringVar(&until, "until", "", "Events before: a duration back from now or an RFC 3339 time.")
	cmd.Flags().StringVar(&role, "role", "", "Only events about this role.")
	cmd.Flags().StringVar(&user, "user", "", "Only events whose actor or subject is this user.")
	cmd.Flags().StringVar(&action, "action", "", "Only events of this action (for example Approved).")
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Verify the audit trail's hash chain",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := audit.Verify(cmd.Context(), p.c, kubepimNamespace)
			if err != nil {
				return err
			}
			p.say("%s", rep)
			if !rep.OK() {
				return refused("the audit trail does not verify")
			}
			return nil
		},
	}
	verify.Flags().StringVar(&kubepimNamespace, "kubepim-namespace", "kubepim-system", "Namespace kubepim runs in (it keeps the chain's anchor there).")
	cmd.AddCommand(verify)
	return cmd
}

// parseSince reads "30d", "12h" (back from now) or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(days, "%d", &n); err == nil && n >= 0 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, usage("%q is neither a duration (24h, 30d) nor an RFC 3339 time", s)
}
