// Package refgeo locates the repository's reference territory (Morbihan,
// testdata/geo), for the tests (through internal/testgeo) and for the
// benches run inside a checkout. It imports no testing code, so that the
// binary may use it.
package refgeo

import (
	"fmt"
	"os"
	"path/filepath"
)

// The reference files (source and licence in testdata/geo/README.md).
const (
	Boundaries = "communes-56-morbihan.geojson"     // 2018 boundaries, 253 features
	Communes   = "communes-56-morbihan-cog2021.csv" // 2021 list, 250 communes with merges
)

// Find returns testdata/geo of the module the working directory is in.
func Find() (string, error) {
	start, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := start; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			cand := filepath.Join(dir, "testdata", "geo")
			if st, err := os.Stat(filepath.Join(cand, Boundaries)); err != nil || !st.Mode().IsRegular() {
				return "", fmt.Errorf("reference data not found: no %s in %s", Boundaries, cand)
			}
			return cand, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("reference data not found: %s is not inside the repository", start)
		}
	}
}
