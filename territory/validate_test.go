package territory

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A small closed ring near Vannes, and helpers writing GeoJSON by hand.
const (
	triangle = `[[[-2.8,47.6],[-2.7,47.6],[-2.7,47.7],[-2.8,47.6]]]`
	polyA    = `{"type":"Polygon","coordinates":` + triangle + `}`
	multiB   = `{"type":"MultiPolygon","coordinates":[` + triangle + `,` + triangle + `]}`
)

func feat(props, geom string) string {
	return `{"type":"Feature","properties":` + props + `,"geometry":` + geom + `}`
}

func fc(features ...string) string {
	return `{"type":"FeatureCollection","features":[` + strings.Join(features, ",") + `]}`
}

func withRing(ring string) string {
	return feat(`{"code":"56003","nom":"Arradon"}`, `{"type":"Polygon","coordinates":[`+ring+`]}`)
}

var okA = feat(`{"code":"56001","nom":"Allaire","population":3886}`, polyA)

func TestGeoJSONValidation(t *testing.T) {
	cases := []struct {
		name, doc, want string
	}{
		{"not json", `{"type":`, "not valid GeoJSON"},
		{"single feature", okA, `top-level type is "Feature"`},
		{"no features", fc(), "no features"},
		{"feature type", fc(okA, `{"type":"Thing","properties":{"code":"56002","nom":"Ambon"},"geometry":`+polyA+`}`), `feature 1 (code "56002"): type is "Thing"`},
		{"null feature", fc(okA, `null`), `feature 1: type is ""`},
		{"missing code", fc(okA, feat(`{"nom":"Ambon"}`, polyA)), `feature 1: missing property "code"`},
		{"null properties", fc(feat(`null`, polyA)), `feature 0: missing property "code"`},
		{"numeric code", fc(feat(`{"code":56002,"nom":"Ambon"}`, polyA)), `feature 0: property "code" must be a string, got 56002`},
		{"missing nom", fc(okA, feat(`{"code":"56002"}`, polyA)), `feature 1 (code "56002"): missing property "nom"`},
		{"empty nom", fc(feat(`{"code":"56002","nom":"  "}`, polyA)), `feature 0 (code "56002"): property "nom" is empty`},
		{"short code", fc(feat(`{"code":"5602","nom":"Ambon"}`, polyA)), `feature 0 (code "5602"): code "5602" is not an INSEE commune code`},
		{"letter code", fc(feat(`{"code":"56A02","nom":"Ambon"}`, polyA)), `code "56A02" is not an INSEE`},
		{"duplicate code", fc(okA, feat(`{"code":"56001","nom":"Allaire bis"}`, polyA)), `feature 1 (code "56001"): duplicate code, already used by feature 0`},
		{"population string", fc(feat(`{"code":"56002","nom":"Ambon","population":"1961"}`, polyA)), `"population" must be a non-negative integer, got "1961"`},
		{"population negative", fc(feat(`{"code":"56002","nom":"Ambon","population":-3}`, polyA)), `got -3`},
		{"population fraction", fc(feat(`{"code":"56002","nom":"Ambon","population":19.5}`, polyA)), `got 19.5`},
		{"missing geometry", fc(feat(`{"code":"56002","nom":"Ambon"}`, `null`)), `feature 0 (code "56002"): missing geometry`},
		{"point", fc(feat(`{"code":"56002","nom":"Ambon"}`, `{"type":"Point","coordinates":[-2.8,47.6]}`)), `geometry type "Point" is not supported`},
		{"no coordinates", fc(feat(`{"code":"56002","nom":"Ambon"}`, `{"type":"Polygon"}`)), `Polygon geometry has no coordinates`},
		{"empty multipolygon", fc(feat(`{"code":"56002","nom":"Ambon"}`, `{"type":"MultiPolygon","coordinates":[]}`)), `MultiPolygon has no polygons`},
		{"polygon without rings", fc(feat(`{"code":"56002","nom":"Ambon"}`, `{"type":"Polygon","coordinates":[]}`)), `polygon 0: no rings`},
		{"short ring", fc(withRing(`[[-2.8,47.6],[-2.7,47.6],[-2.8,47.6]]`)), `feature 0 (code "56003"): polygon 0: ring 0 has 3 positions, a closed ring needs at least 4`},
		{"unclosed ring", fc(withRing(`[[-2.8,47.6],[-2.7,47.6],[-2.7,47.7],[-2.8,47.7]]`)), `polygon 0: ring 0 is not closed`},
		{"longitude range", fc(withRing(`[[-2.8,47.6],[200,47.6],[-2.7,47.7],[-2.8,47.6]]`)), `ring 0 position 1: longitude 200 out of range`},
		{"latitude range", fc(withRing(`[[-2.8,47.6],[-2.7,-91],[-2.7,47.7],[-2.8,47.6]]`)), `ring 0 position 1: latitude -91 out of range`},
		{"swapped axes", fc(withRing(`[[47.6,-2.8],[47.6,-2.7],[47.7,-2.7],[47.6,-2.8]]`)), ""}, // legal, if wrong: both in range
		{"string coordinate", fc(withRing(`[[-2.8,47.6],[-2.7,"47.6"],[-2.7,47.7],[-2.8,47.6]]`)), `feature 0 (code "56003"): Polygon coordinates: non-numeric coordinate "47.6"`},
		{"null coordinate", fc(withRing(`[[-2.8,47.6],[-2.7,null],[-2.7,47.7],[-2.8,47.6]]`)), `non-numeric coordinate null`},
		{"huge coordinate", fc(withRing(`[[-2.8,47.6],[-2.7,1e999],[-2.7,47.7],[-2.8,47.6]]`)), `coordinate 1e999 is not a finite number`},
		{"one number position", fc(withRing(`[[-2.8,47.6],[-2.7],[-2.7,47.7],[-2.8,47.6]]`)), `position 1: position has 1 numbers`},
		{"bad hole in multipolygon", fc(okA, feat(`{"code":"56004","nom":"Arzal"}`, `{"type":"MultiPolygon","coordinates":[`+triangle+`,[[[-2.8,47.6],[-2.7,47.6],[-2.7,47.7],[-2.8,47.6]],[[0,0],[1,1],[0,0]]]]}`)), `feature 1 (code "56004"): polygon 1: ring 1 has 3 positions`},
		{"corsica and altitude", fc(feat(`{"code":"2A004","nom":"Ajaccio"}`, `{"type":"Polygon","coordinates":[[[8.7,41.9,0],[8.8,41.9,5],[8.8,42,3],[8.7,41.9,0]]]}`), okA), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := parse([]byte(tc.doc), nil, "test.geojson", "")
			if tc.want == "" {
				if err != nil || len(tr.Communes) == 0 {
					t.Fatalf("want success, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error containing %q, got none", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "test.geojson") {
				t.Fatalf("error %q\nwant it to contain %q and the file name", err, tc.want)
			}
		})
	}
}

// A boundaries file for the commune-list tests: 56001, 56002 and 56003.
var threeFeatures = fc(okA,
	feat(`{"code":"56002","nom":"Ambon"}`, multiB),
	feat(`{"code":"56003","nom":"Arradon"}`, polyA))

const csvHeader = "code_insee,nom,population,arrondissement,codes_geometrie_2018\n"

func TestCommuneListValidation(t *testing.T) {
	cases := []struct {
		name, csv, want string
	}{
		{"ok with merge", csvHeader + "56001,Allaire,10,563,\n56002,Ambon-Arradon,20,563,56002|56003\n", ""},
		{"ok without parts column", "code_insee,nom,population\n56001,A,1\n56002,B,2\n56003,C,3\n", ""},
		{"ok with BOM", "\uFEFF" + csvHeader + "56001,A,1,5,\n56002,B,2,5,56002 56003\n", ""},
		{"empty file", "", "header: EOF"},
		{"header only", csvHeader, "no communes after the header"},
		{"missing column", "code_insee,nom\n56001,A\n", `header has no "population" column`},
		{"bad code", csvHeader + "5601,A,1,5,\n", `line 2 (code_insee "5601"): code_insee "5601" is not an INSEE`},
		{"empty name", csvHeader + "56001,,1,5,\n", `line 2 (code_insee "56001"): nom is empty`},
		{"bad population", csvHeader + "56001,A,12k,5,\n", `line 2 (code_insee "56001"): population "12k" is not a non-negative integer`},
		{"negative population", csvHeader + "56001,A,-1,5,\n", `population "-1"`},
		{"duplicate row", csvHeader + "56001,A,1,5,\n56001,B,2,5,56002 56003\n", `line 3 (code_insee "56001"): duplicate code, already on line 2`},
		{"bad part", csvHeader + "56001,A,1,5,56001 560X2\n", `codes_geometrie_2018: "560X2" is not an INSEE`},
		{"part twice", csvHeader + "56001,A,1,5,56001|56001\n", `names 56001 twice`},
		{"wrong field count", csvHeader + "56001,A,1\n", "wrong number of fields"},
		{"invalid utf8", csvHeader + "56001,All\xe9aire,1,5,\n", "not valid UTF-8"},
		{"unknown boundary", csvHeader + "56001,A,1,5,\n56002,B,2,5,56002 56003 56099\n", `line 3 (code_insee "56002"): boundary code 56099 is not in the boundaries file`},
		{"boundary used twice", csvHeader + "56001,A,1,5,56001 56003\n56002,B,2,5,56002 56003\n", `line 3 (code_insee "56002"): boundary code 56003 is already used by line 2`},
		{"feature not covered", csvHeader + "56001,A,1,5,\n56002,B,2,5,\n", `feature 2 (code "56003"): "Arradon" is not covered by any row`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := parse([]byte(threeFeatures), []byte(tc.csv), "b.geojson", "list.csv")
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want success, got %v", err)
				}
				if tr.Population() == 0 || len(tr.Communes) < 2 {
					t.Fatalf("loaded %d communes, population %d", len(tr.Communes), tr.Population())
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error containing %q, got none", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "list.csv") {
				t.Fatalf("error %q\nwant it to contain %q and the list's name", err, tc.want)
			}
		})
	}
}

// TestMergeShapes checks a merge of a MultiPolygon (2 parts) and a Polygon
// into one MultiPolygon of 3, and a single MultiPolygon staying as it is.
func TestMergeShapes(t *testing.T) {
	list := csvHeader + "56001,A,1,5,\n56002,B,2,5,56003|56002\n"
	tr, err := parse([]byte(threeFeatures), []byte(list), "b", "l")
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Communes) != 2 || tr.Population() != 3 {
		t.Fatalf("%d communes, population %d", len(tr.Communes), tr.Population())
	}
	a, _ := tr.Lookup("56001")
	b, _ := tr.Lookup("56002")
	if want := `{"type":"Polygon","coordinates":` + triangle + `}`; string(a.Geometry) != want {
		t.Errorf("56001 geometry = %s\nwant %s", a.Geometry, want)
	}
	if want := `{"type":"MultiPolygon","coordinates":[` + strings.Repeat(triangle+",", 2) + triangle + `]}`; string(b.Geometry) != want {
		t.Errorf("56002 geometry = %s\nwant %s", b.Geometry, want)
	}
	if b.BBox != [4]float64{-2.8, 47.6, -2.7, 47.7} || b.Name != "B" {
		t.Errorf("56002 = %+v", b)
	}
}

func TestSizeLimit(t *testing.T) {
	// A sparse file one byte over the limit: refused from its size, unread.
	big := filepath.Join(t.TempDir(), "big.geojson")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxInputBytes + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = Load(context.Background(), big, "")
	if err == nil || !strings.Contains(err.Error(), "over the 64 MiB limit") {
		t.Fatalf("err = %v, want the 64 MiB limit", err)
	}
	// Downloads are cut at the limit whatever the server announces; a small
	// limit keeps the test light.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		for range 10 {
			fmt.Fprint(w, strings.Repeat(" ", 100))
			w.(http.Flusher).Flush() // chunked: no Content-Length to check first
		}
	}))
	defer srv.Close()
	_, err = readSource(context.Background(), srv.URL, 999)
	if err == nil || !strings.Contains(err.Error(), "over the 999-byte limit") {
		t.Fatalf("download err = %v", err)
	}
	data, err := readSource(context.Background(), srv.URL, 1000)
	if err != nil || len(data) != 1000 {
		t.Fatalf("download at the limit: %d bytes, %v", len(data), err)
	}
}

func TestLoadErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Load(ctx, "", ""); err == nil || !strings.Contains(err.Error(), "no boundaries") {
		t.Fatalf("empty: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "nope.geojson")
	if _, err := Load(ctx, missing, ""); err == nil || !strings.Contains(err.Error(), "nope.geojson") {
		t.Fatalf("missing file: %v", err)
	}
	dir := geoDir(t)
	if _, err := Load(ctx, filepath.Join(dir, realGeoJSON), missing); err == nil || !strings.Contains(err.Error(), "commune list") {
		t.Fatalf("missing list: %v", err)
	}
}
