package main

import (
	"encoding/csv"
	"strings"
)

// csvRows parses the CSV export's data rows (the header dropped).
func csvRows(lines []string) [][]string {
	rows, err := csv.NewReader(strings.NewReader(strings.Join(lines, "\n"))).ReadAll()
	if err != nil || len(rows) < 2 {
		return nil
	}
	return rows[1:]
}
