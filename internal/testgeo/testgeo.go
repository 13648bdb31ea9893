// Package testgeo finds the shared reference territory (Morbihan) that
// tests read from ../shared/geo beside the repository. It is never copied
// into the repository; a missing folder fails the test, never skips it.
package testgeo

import (
	"os"
	"path/filepath"
	"testing"
)

// The reference files.
const (
	Boundaries = "communes-56-morbihan.geojson"     // 2018 boundaries, 253 features
	Communes   = "communes-56-morbihan-cog2021.csv" // 2021 list, 250 communes with merges
)

// Dir returns the shared/geo folder found in the working directory or one
// of its parents.
func Dir(t testing.TB) string {
	t.Helper()
	start, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := start; ; dir = filepath.Dir(dir) {
		cand := filepath.Join(dir, "shared", "geo")
		if st, err := os.Stat(filepath.Join(cand, Boundaries)); err == nil && st.Mode().IsRegular() {
			return cand
		}
		if filepath.Dir(dir) == dir {
			t.Fatalf("reference data not found: no shared/geo/%s in %s or any parent; "+
				"put the shared/geo folder beside the repository (see shared/geo/README.md)", Boundaries, start)
		}
	}
}

// Files returns the paths of the boundaries GeoJSON and the commune list.
func Files(t testing.TB) (boundaries, communes string) {
	t.Helper()
	d := Dir(t)
	return filepath.Join(d, Boundaries), filepath.Join(d, Communes)
}
