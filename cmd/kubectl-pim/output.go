package main

import (
	"encoding/json"
	"fmt"
	"os"

	"golang.org/x/term"

	"sigs.k8s.io/yaml"
)

// print writes v as JSON or YAML, for scripts.
func (p *pim) print(v any) error {
	switch p.output {
	case "json":
		enc := json.NewEncoder(p.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = p.Out.Write(b)
		return err
	}
	return usage("unknown output format %q: use table, json or yaml", p.output)
}

// colourful reports whether output goes to a terminal that wants colour
// (never when piped, never with NO_COLOR set).
func (p *pim) colourful() bool {
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	f, ok := p.Out.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// paint colours a state for a person at a terminal: green when access is
// held, yellow while waiting, red when refused or failed.
func (p *pim) paint(state string) string {
	if !p.colourful() || state == "" {
		return state
	}
	code := ""
	switch state {
	case "Active", "Approve", "Applied":
		code = "32"
	case "PendingApproval", "Scheduled", "Pending", "InProgress":
		code = "33"
	case "Denied", "Failed", "TimedOut", "Deny":
		code = "31"
	default:
		return state
	}
	return "\x1b[" + code + "m" + state + "\x1b[0m"
}

// say writes a line for a person.
func (p *pim) say(format string, args ...any) {
	fmt.Fprintf(p.Out, format+"\n", args...)
}
