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
				return audit.Export(cmd.Context(), p.c, f, p.clock.Now(), p.output, p.Out)
			case "", "table":
			default:
				return usage("-o must be table, csv or json")
			}
			var b strings.Builder
			if err := audit.Export(cmd.Context(), p.c, f, p.clock.Now(), "csv", &b); err != nil {
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
	cmd.AddCommand(verify, p.auditWhoCommand())
	return cmd
}

// whoRow is one grant in `kubectl pim audit who`.
type whoRow struct {
	Who string `json:"who"`
	audit.Held
}

func (p *pim) auditWhoCommand() *cobra.Command {
	var role, roleKind, at, from, to string
	cmd := &cobra.Command{
		Use:   "who --role R [--namespace NS] (--at TIME | --from T1 --to T2) [-o table|json]",
		Short: "Who held a role (or could act in a namespace with it) at a time or between two times, from the audit trail",
		Long: `Who held a role at a time or between two times, built from the audit trail:
every activation (Activated until Expired, Extended or Deactivated) and every
active assignment (AssignmentActivated until AssignmentExpired or
AssignmentRemoved). With --namespace, grants in that namespace and
cluster-wide grants. Times are RFC 3339, or a duration back from now (2h, 3d).
It reads the trail as you: it needs list on auditevents (kubepim-auditor).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if role == "" {
				return usage("--role is required")
			}
			now := p.clock.Now()
			q := audit.WhoQuery{Role: role, RoleKind: roleKind, Namespace: p.namespace}
			var err error
			switch {
			case at != "" && (from != "" || to != ""):
				return usage("give --at, or --from and --to, not both")
			case from != "" || to != "":
				if q.From, err = parseSince(from, now); err != nil {
					return err
				}
				if q.To, err = parseSince(to, now); err != nil {
					return err
				}
				if to == "" {
					q.To = now
				}
				if q.To.Before(q.From) {
					return usage("--to is before --from")
				}
			default:
				q.From = now
				if at != "" {
					if q.From, err = parseSince(at, now); err != nil {
						return err
					}
				}
				q.To = q.From
			}
			switch p.output {
			case "", "table", "json":
			default:
				return usage("-o must be table or json")
			}
			held, err := audit.History(cmd.Context(), p.c, role)
			if err != nil {
				return err
			}
			rows := []whoRow{}
			for _, h := range audit.Who(held, q) {
				rows = append(rows, whoRow{Who: audit.SubjectString(h.Subject), Held: h})
			}
			if p.output == "json" {
				return p.print(rows)
			}
			if len(rows) == 0 {
				p.say("No one held %s%s then, according to the audit trail.", role, inScope(q.Namespace))
				return nil
			}
			w := tabwriter.NewWriter(p.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SUBJECT\tROLE\tNAMESPACE\tVIA\tFROM\tUNTIL\tENDED BY\tREQUEST\tJUSTIFICATION\tAPPROVERS")
			for _, r := range rows {
				until, ended := "-", dash(r.EndedBy)
				if !r.Until.IsZero() {
					until = r.Until.UTC().Format(time.RFC3339)
					if !r.Ended {
						ended = "(due)"
					}
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Who, r.RoleRef.Name, orAll(r.Namespace), r.Via,
					r.From.UTC().Format(time.RFC3339), until, ended, r.Target.Name, dash(oneLine(r.Justification)), dash(strings.Join(r.Approvers, ",")))
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "The role's name (required).")
	cmd.Flags().StringVar(&roleKind, "role-kind", "", "The role's kind, ClusterRole or Role, when names clash.")
	cmd.Flags().StringVar(&at, "at", "", "One instant: an RFC 3339 time or a duration back from now (default: now).")
	cmd.Flags().StringVar(&from, "from", "", "Start of a range (included).")
	cmd.Flags().StringVar(&to, "to", "", "End of a range (included; default now).")
	return cmd
}

func inScope(ns string) string {
	if ns == "" {
		return ""
	}
	return " in " + ns
}

// oneLine keeps a table row on one line.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
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
