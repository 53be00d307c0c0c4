// Package layout checks the direction of imports between kubepim's
// packages (docs/architecture.md): cmd → controllers and webhooks → the
// domain under internal/ → api, and nothing upward. controllers and
// webhooks are two front doors onto one domain: neither imports the other.
package layout

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/kubepim/kubepim/"

type pkg struct {
	ImportPath string
	Imports    []string
}

// layer is a package's place in the picture; a package may import only
// packages of a lower layer (or, within internal/, other domain packages).
func layer(path string) (string, int) {
	rel := strings.TrimPrefix(path, module)
	switch {
	case strings.HasPrefix(rel, "api/"):
		return "api", 0
	case strings.HasPrefix(rel, "internal/"):
		return "internal", 1
	case rel == "controllers" || strings.HasPrefix(rel, "controllers/"):
		return "controllers", 2
	case rel == "webhooks" || strings.HasPrefix(rel, "webhooks/"):
		return "webhooks", 2
	case strings.HasPrefix(rel, "cmd/"):
		return "cmd", 3
	}
	return "other", 4 // test/ and hack/ helpers may import anything
}

func TestImportsPointDown(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	checked := 0
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		from, fromLayer := layer(p.ImportPath)
		if fromLayer == 4 {
			continue
		}
		checked++
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			to, toLayer := layer(imp)
			switch {
			case toLayer == 4:
				t.Errorf("%s imports %s: product code never imports test or hack packages", p.ImportPath, imp)
			case to == from && from == "internal":
				// The domain packages may use each other.
			case toLayer >= fromLayer:
				t.Errorf("%s (%s) imports %s (%s): imports point down only — cmd → controllers, webhooks → internal → api", p.ImportPath, from, imp, to)
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked only %d packages: go list found too few", checked)
	}
}
