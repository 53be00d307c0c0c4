package main

import (
	"encoding/json"
	"fmt"

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

// say writes a line for a person.
func (p *pim) say(format string, args ...any) {
	fmt.Fprintf(p.Out, format+"\n", args...)
}
