package static

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestVendorMatchesLock: the committed copy of each third-party library
// (static/vendor) is byte for byte the files of the package version that
// package-lock.json pins, as npm ci installs it. A clone builds a complete
// binary with go build alone; this keeps that copy honest.
func TestVendorMatchesLock(t *testing.T) {
	raw, err := os.ReadFile("../package-lock.json")
	if err != nil {
		t.Fatal(err)
	}
	var lock struct {
		Packages map[string]struct{ Version string } `json:"packages"`
	}
	if err := json.Unmarshal(raw, &lock); err != nil {
		t.Fatal(err)
	}
	// Each vendored package: the files of vendor/<dir> and where they come
	// from in the package (scripts/vendor.mjs copies the same).
	for _, v := range []struct {
		pkg, dir string
		from     map[string]string
	}{
		{"leaflet", "leaflet", map[string]string{
			"leaflet.js": "dist/leaflet.js", "leaflet.js.map": "dist/leaflet.js.map", "leaflet.css": "dist/leaflet.css",
			"LICENSE": "LICENSE", "images": "dist/images"}},
	} {
		want := lock.Packages["node_modules/"+v.pkg].Version
		if want == "" {
			t.Fatalf("package-lock.json pins no %s", v.pkg)
		}
		modDir := filepath.Join("..", "node_modules", v.pkg)
		var got struct{ Version string }
		pj, err := os.ReadFile(filepath.Join(modDir, "package.json"))
		if err != nil {
			t.Fatalf("node_modules/%s: %v (run npm ci: the test compares the committed copy with it)", v.pkg, err)
		}
		if err := json.Unmarshal(pj, &got); err != nil || got.Version != want {
			t.Fatalf("node_modules/%s is %q, the lock pins %q: run npm ci", v.pkg, got.Version, want)
		}
		n := 0
		for name, src := range v.from {
			err := filepath.WalkDir(filepath.Join(modDir, src), func(path string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				rel, _ := filepath.Rel(filepath.Join(modDir, src), path)
				committed, err := fs.ReadFile(Files, filepath.ToSlash(filepath.Join("vendor", v.dir, name, rel)))
				if err != nil {
					t.Errorf("vendor/%s/%s: not in the binary (run npm run build and commit): %v", v.dir, filepath.Join(name, rel), err)
					return nil
				}
				pkgFile, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				if !bytes.Equal(committed, pkgFile) {
					t.Errorf("vendor/%s/%s differs from %s %s (run npm run build and commit)", v.dir, filepath.Join(name, rel), v.pkg, want)
				}
				n++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if n < len(v.from) {
			t.Errorf("%s: only %d files compared", v.pkg, n)
		}
		t.Logf("%s %s: %d files equal to the lock's package", v.pkg, want, n)
	}
}
