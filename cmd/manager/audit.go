package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubepim/kubepim/internal/audit"
)

// auditCommand runs "manager audit verify" or "manager audit export".
func auditCommand(args []string) int {
	usage := "usage: manager audit verify [--namespace NS] | manager audit export [--format csv|json] [--since T] [--until T] [--role R] [--user U] [--action A]"
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, usage)
		return 2
	}
	fs := flag.NewFlagSet("audit "+args[0], flag.ContinueOnError)
	namespace := fs.String("namespace", envOr("POD_NAMESPACE", "kubepim-system"), "Namespace of kubepim's audit anchor.")
	format := fs.String("format", "csv", "Export format: csv or json (one object a line).")
	since := fs.String("since", "", "Export events at or after this RFC 3339 time.")
	until := fs.String("until", "", "Export events before this RFC 3339 time.")
	role := fs.String("role", "", "Export events about this role.")
	user := fs.String("user", "", "Export events whose actor or subject is this user.")
	action := fs.String("action", "", "Export events of this action.")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	c, err := client.New(ctrl.GetConfigOrDie(), client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	switch args[0] {
	case "verify":
		rep, err := audit.Verify(ctx, c, *namespace)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(rep)
		if !rep.OK() {
			return 1
		}
		return 0
	case "export":
		f := audit.Filter{Role: *role, User: *user, Action: *action}
		for _, b := range []struct {
			text string
			into *time.Time
		}{{*since, &f.Since}, {*until, &f.Until}} {
			if b.text == "" {
				continue
			}
			t, err := time.Parse(time.RFC3339, b.text)
			if err != nil {
				fmt.Fprintln(os.Stderr, "times are RFC 3339, for example 2026-11-24T00:00:00Z")
				return 2
			}
			*b.into = t
		}
		if err := audit.Export(ctx, c, f, time.Now(), *format, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
	fmt.Fprintln(os.Stderr, usage)
	return 2
}
