// Package testgeo gives tests the reference territory (Morbihan):
// testdata/geo at the repository's root (internal/refgeo), so that a clone
// tests with nothing beside it. A missing file fails the test, never skips
// it.
package testgeo

import (
	"path/filepath"
	"testing"

	"crisisroom/internal/refgeo"
)

// The reference files.
const (
	Boundaries = refgeo.Boundaries
	Communes   = refgeo.Communes
)

// Dir returns the repository's testdata/geo folder.
func Dir(t testing.TB) string {
	t.Helper()
	d, err := refgeo.Find()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Files returns the paths of the boundaries GeoJSON and the commune list.
func Files(t testing.TB) (boundaries, communes string) {
	t.Helper()
	d := Dir(t)
	return filepath.Join(d, Boundaries), filepath.Join(d, Communes)
}
