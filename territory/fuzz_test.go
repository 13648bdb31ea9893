package territory

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodeFeatures feeds arbitrary bytes to the boundaries decoder. It
// must never panic, and whatever it accepts must satisfy the validation
// rules and survive encodeGeometry → decodeGeometry unchanged.
func FuzzDecodeFeatures(f *testing.F) {
	f.Add([]byte(threeFeatures))
	f.Add([]byte(fc(okA)))
	f.Add([]byte(fc(withRing(`[[-2.8,47.6],[-2.7,null],[-2.7,47.7],[-2.8,47.6]]`))))
	f.Add([]byte(fc(feat(`{"code":"2B033","nom":"Bastia","population":0}`, `{"type":"Polygon","coordinates":[[[9.4,42.7,1],[9.5,42.7,1],[9.5,42.8,1],[9.4,42.7,1]]]}`))))
	f.Add([]byte(`{"type":"FeatureCollection","features":[null]}`))
	// The first real feature too, so mutations start from real shapes.
	if data, err := os.ReadFile(filepath.Join(geoDir(f), realGeoJSON)); err == nil {
		var top struct{ Features []json.RawMessage }
		if json.Unmarshal(data, &top) == nil && len(top.Features) > 0 {
			f.Add([]byte(fc(string(top.Features[0]))))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		feats, err := decodeFeatures(data)
		if err != nil {
			return
		}
		if len(feats) == 0 {
			t.Fatal("accepted a collection with no features")
		}
		seen := map[string]bool{}
		for _, ft := range feats {
			if !ValidCode(ft.Code) || ft.Name == "" || ft.Population < 0 || seen[ft.Code] {
				t.Fatalf("accepted feature %+v", ft)
			}
			seen[ft.Code] = true
			for _, p := range ft.Polygons {
				if err := checkPolygon(p); err != nil {
					t.Fatalf("accepted bad polygon: %v", err)
				}
			}
			enc := encodeGeometry(ft.Polygons, ft.Multi)
			if !json.Valid(enc) {
				t.Fatalf("encoded invalid JSON %s", enc)
			}
			back, multi, err := decodeGeometry(enc)
			if err != nil || multi != ft.Multi || len(back) != len(ft.Polygons) {
				t.Fatalf("round trip: %v", err)
			}
			for i := range back {
				for r := range back[i] {
					for k := range back[i][r] {
						if !samePosition(back[i][r][k], ft.Polygons[i][r][k]) {
							t.Fatalf("round trip changed %v into %v", ft.Polygons[i][r][k], back[i][r][k])
						}
					}
				}
			}
			bb := bbox(ft.Polygons)
			if bb[0] > bb[2] || bb[1] > bb[3] {
				t.Fatalf("bbox %v", bb)
			}
		}
	})
}
