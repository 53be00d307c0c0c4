package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// Users type "kubectl pim ...": every usage line, and the root's help,
// must say so (the root was once named "kubectl" and every usage line
// read "kubectl [command]").
func TestUsageNamesThePlugin(t *testing.T) {
	var out bytes.Buffer
	root := newRootCommand(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out}, genericclioptions.NewConfigFlags(true), nil)
	root.SetArgs([]string{"--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "\n  kubectl pim [command]\n") {
		t.Errorf("kubectl pim --help does not say \"kubectl pim [command]\":\n%s", out.String())
	}

	var walk func(*cobra.Command)
	seen := 0
	walk = func(c *cobra.Command) {
		seen++
		if !strings.HasPrefix(c.UseLine(), "kubectl pim") || strings.HasPrefix(c.UseLine(), "kubectl pim pim") {
			t.Errorf("usage line %q does not start with \"kubectl pim\"", c.UseLine())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	if seen < 15 {
		t.Errorf("walked %d commands, expected every subcommand", seen)
	}

	// The help of a subcommand, as a user sees it.
	out.Reset()
	root.SetArgs([]string{"review", "decide", "--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "\n  kubectl pim review decide REVIEW ITEM") {
		t.Errorf("kubectl pim review decide --help:\n%s", out.String())
	}
}

// The list commands are built by one builder: each has the same flags.
func TestListCommandsShareFlags(t *testing.T) {
	root := newRootCommand(genericiooptions.IOStreams{Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}, genericclioptions.NewConfigFlags(true), nil)
	for _, name := range []string{"requests", "reviews", "roles", "approvals"} {
		cmd, _, err := root.Find([]string{name})
		if err != nil || cmd.Name() != name {
			t.Fatalf("no %s command: %v", name, err)
		}
		for _, flag := range []string{"all", "output", "namespace"} {
			if cmd.Flags().Lookup(flag) == nil && cmd.InheritedFlags().Lookup(flag) == nil {
				t.Errorf("kubectl pim %s has no --%s", name, flag)
			}
		}
	}
}
