package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// TestBenchIntake runs `bench intake` small and short on the real territory
// and checks its output: both rates, then intake_ratio=X last. The command
// itself fails if the service's total differs from the 201s counted.
func TestBenchIntake(t *testing.T) {
	geo := sharedGeo(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	args := []string{"bench", "intake", "--declarants", "8", "--seconds", "0.6", "--rounds", "2", "--dir", t.TempDir(),
		"--territory", filepath.Join(geo, "communes-56-morbihan.geojson"),
		"--communes", filepath.Join(geo, "communes-56-morbihan-cog2021.csv")}
	if err := run(ctx, args, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	lines := bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n"))
	if len(lines) != 4 {
		t.Fatalf("want 4 lines, got:\n%s", out.String())
	}
	rate := regexp.MustCompile(`(\d+) (?:declarations acknowledged \(201\)|transactions) in \S+ = (\d+\.\d) declarations/s`)
	for _, l := range lines[1:3] {
		m := rate.FindSubmatch(l)
		if m == nil {
			t.Fatalf("no count and rate in %q", l)
		}
		if n, _ := strconv.Atoi(string(m[1])); n == 0 {
			t.Fatalf("nothing measured: %q", l)
		}
	}
	m := regexp.MustCompile(`^intake_ratio=(\d+\.\d\d)$`).FindSubmatch(lines[3])
	if m == nil {
		t.Fatalf("last line %q is not intake_ratio=X.XX", lines[3])
	}
	if r, _ := strconv.ParseFloat(string(m[1]), 64); r <= 0 {
		t.Fatalf("intake_ratio %v", r)
	}
	t.Log(out.String())
}
