package main

import (
	"bytes"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func TestNoColourWhenPiped(t *testing.T) {
	p := &pim{IOStreams: genericiooptions.IOStreams{Out: &bytes.Buffer{}}}
	if got := p.paint("Active"); got != "Active" {
		t.Fatalf("paint to a buffer = %q, want plain text", got)
	}
}
