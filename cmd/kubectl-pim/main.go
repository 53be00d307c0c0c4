// Command kubectl-pim is kubepim's kubectl plugin: "My roles", "Activate",
// "Approve requests" and "Audit" on the command line.
//
//	kubectl pim roles
//	kubectl pim activate pod-debugger -n prod --for 1h --reason "INC-1" --wait
//	kubectl pim approvals
//	kubectl pim approve REQUEST --reason "checked"
//	kubectl pim audit --since 24h -o csv
//	kubectl pim mfa enroll alice
//
// Exit codes: 0 success; 1 refused or failed (not eligible, denied, ...);
// 2 wrong usage; 3 kubepim is not installed on the cluster.
package main

import (
	"errors"
	"fmt"
	"os"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func main() {
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	flags := genericclioptions.NewConfigFlags(true)
	cmd := newRootCommand(streams, flags, nil)
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(exitCode(err))
	}
}

// Exit codes.
const (
	exitRefused      = 1
	exitUsage        = 2
	exitNotInstalled = 3
)

// exitError carries an exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func refused(format string, args ...any) error {
	return &exitError{code: exitRefused, err: fmt.Errorf(format, args...)}
}

func usage(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func exitCode(err error) int {
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return exitRefused
}
