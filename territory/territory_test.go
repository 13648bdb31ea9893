package territory

import (
	"context"
	"crisisroom/internal/testgeo"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const (
	realGeoJSON = "communes-56-morbihan.geojson"
	realCSV     = "communes-56-morbihan-cog2021.csv"
)

// geoDir is the reference territory in testdata/geo (internal/testgeo).
func geoDir(t testing.TB) string { return testgeo.Dir(t) }

func loadReal(t *testing.T, withCSV bool) *Territory {
	t.Helper()
	dir := geoDir(t)
	csv := ""
	if withCSV {
		csv = filepath.Join(dir, realCSV)
	}
	tr, err := Load(context.Background(), filepath.Join(dir, realGeoJSON), csv)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// polygonsOf decodes a commune's geometry and returns its polygons.
func polygonsOf(t *testing.T, c *Commune) []polygon {
	t.Helper()
	polys, _, err := decodeGeometry(c.Geometry)
	if err != nil {
		t.Fatalf("%s: geometry does not decode: %v", c.Code, err)
	}
	return polys
}

func TestLoadRealWithCommuneList(t *testing.T) {
	tr := loadReal(t, true)
	if n := len(tr.Communes); n != 250 {
		t.Fatalf("communes = %d, want 250", n)
	}
	if p := tr.Population(); p != 759684 {
		t.Fatalf("population = %d, want 759684", p)
	}
	for i := 1; i < len(tr.Communes); i++ {
		if tr.Communes[i-1].Code >= tr.Communes[i].Code {
			t.Fatalf("not sorted at %d: %s then %s", i, tr.Communes[i-1].Code, tr.Communes[i].Code)
		}
	}
	alone := loadReal(t, false)
	merges := map[string][]string{ // 2021 code → its 2018 boundaries
		"56102": {"56102", "56059"},
		"56165": {"56165", "56138"},
		"56173": {"56173", "56016"},
	}
	for code, parts := range merges {
		c, ok := tr.Lookup(code)
		if !ok {
			t.Fatalf("Lookup(%s) failed", code)
		}
		var g struct{ Type string }
		if err := json.Unmarshal(c.Geometry, &g); err != nil || g.Type != "MultiPolygon" {
			t.Fatalf("%s: geometry type %q (%v), want MultiPolygon", code, g.Type, err)
		}
		got := polygonsOf(t, c)
		var want []polygon
		for _, p := range parts {
			pc, ok := alone.Lookup(p)
			if !ok {
				t.Fatalf("boundary %s missing from the GeoJSON alone", p)
			}
			want = append(want, polygonsOf(t, pc)...)
			if !contains(c.BBox, pc.BBox) {
				t.Errorf("%s bbox %v does not contain part %s bbox %v", code, c.BBox, p, pc.BBox)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d polygons, want %d (sum of %v)", code, len(got), len(want), parts)
		}
		for i := range want {
			if countPositions(got[i:i+1]) != countPositions(want[i:i+1]) || !samePosition(got[i][0][0], want[i][0][0]) {
				t.Fatalf("%s: polygon %d differs from part polygon", code, i)
			}
		}
	}
	for _, gone := range []string{"56059", "56138", "56016"} {
		if _, ok := tr.Lookup(gone); ok {
			t.Errorf("absorbed commune %s still listed", gone)
		}
	}
	c, _ := tr.Lookup("56102")
	if c.Name != "Forges de Lanouée" || c.Population != 2165 {
		t.Errorf("56102 = %q pop %d, want the 2021 name and population", c.Name, c.Population)
	}
	if !strings.Contains(tr.Source, realGeoJSON) || !strings.Contains(tr.Source, realCSV) {
		t.Errorf("Source = %q, want both file names", tr.Source)
	}
}

func contains(outer, inner [4]float64) bool {
	return outer[0] <= inner[0] && outer[1] <= inner[1] && outer[2] >= inner[2] && outer[3] >= inner[3]
}

func TestLoadRealGeoJSONAlone(t *testing.T) {
	tr := loadReal(t, false)
	if n := len(tr.Communes); n != 253 {
		t.Fatalf("communes = %d, want 253", n)
	}
	if p := tr.Population(); p != 0 {
		t.Fatalf("population = %d, want 0 (the file has no population property)", p)
	}
	multi := 0
	for i := range tr.Communes {
		c := &tr.Communes[i]
		var g struct{ Type string }
		if err := json.Unmarshal(c.Geometry, &g); err != nil {
			t.Fatal(err)
		}
		if g.Type == "MultiPolygon" {
			multi++
		}
		// Morbihan lies within about 2.2–3.8° W and 47.2–48.3° N.
		if c.BBox[0] < -3.8 || c.BBox[2] > -2.0 || c.BBox[1] < 47.2 || c.BBox[3] > 48.3 || c.BBox[0] >= c.BBox[2] {
			t.Fatalf("%s bbox %v is not in Morbihan", c.Code, c.BBox)
		}
	}
	if multi != 15 {
		t.Errorf("MultiPolygon communes = %d, want 15 (README: 238 Polygon, 15 MultiPolygon)", multi)
	}
	if c, ok := tr.Lookup("56069"); !ok || c.Name != "Groix" {
		t.Errorf("Lookup(56069) = %+v, %v", c, ok)
	}
	if _, ok := tr.Lookup("56999"); ok {
		t.Error("Lookup(56999) found a commune")
	}
}

// TestGeoJSONOutput checks the served FeatureCollection: one feature per
// commune with its properties, geometries that decode, and the same bytes
// on every call, including concurrent first calls.
func TestGeoJSONOutput(t *testing.T) {
	tr := loadReal(t, true)
	outs := make([][]byte, 4)
	var wg sync.WaitGroup
	for i := range outs {
		wg.Go(func() { outs[i] = tr.GeoJSON() })
	}
	wg.Wait()
	for i := range outs {
		if &outs[i][0] != &outs[0][0] {
			t.Fatal("GeoJSON was encoded more than once")
		}
	}
	var fc struct {
		Type     string
		Features []struct {
			Type       string
			Properties struct {
				Code, Nom  string
				Population int
			}
			BBox     [4]float64
			Geometry json.RawMessage
		}
	}
	if err := json.Unmarshal(outs[0], &fc); err != nil {
		t.Fatal(err)
	}
	if fc.Type != "FeatureCollection" || len(fc.Features) != 250 {
		t.Fatalf("type %q with %d features", fc.Type, len(fc.Features))
	}
	sum := 0
	for i, f := range fc.Features {
		c := tr.Communes[i]
		if f.Type != "Feature" || f.Properties.Code != c.Code || f.Properties.Nom != c.Name || f.BBox != c.BBox {
			t.Fatalf("feature %d = %+v, want commune %s %s", i, f.Properties, c.Code, c.Name)
		}
		if _, _, err := decodeGeometry(f.Geometry); err != nil {
			t.Fatalf("feature %d geometry: %v", i, err)
		}
		sum += f.Properties.Population
	}
	if sum != 759684 {
		t.Fatalf("population in GeoJSON = %d", sum)
	}
	// The served file is itself a valid boundaries file.
	again, err := parse(outs[0], nil, "served", "")
	if err != nil || len(again.Communes) != 250 || again.Population() != 759684 {
		t.Fatalf("served GeoJSON reloads as %v communes, err %v", len(again.Communes), err)
	}
}

func TestLoadOverHTTP(t *testing.T) {
	dir := geoDir(t)
	srv := serveDir(t, dir)
	tr, err := Load(context.Background(), srv.URL+"/"+realGeoJSON, srv.URL+"/"+realCSV)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Communes) != 250 || tr.Population() != 759684 {
		t.Fatalf("%d communes, population %d", len(tr.Communes), tr.Population())
	}
	_, err = Load(context.Background(), srv.URL+"/missing.geojson", "")
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("missing URL: err = %v, want a 404", err)
	}
}
