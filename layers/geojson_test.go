package layers

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func fc(features ...string) string {
	return `{"type":"FeatureCollection","name":"ehpad","features":[` + strings.Join(features, ",") + `]}`
}

func feat(geom string) string {
	return `{"type":"Feature","properties":{"nom":"EHPAD Les Mimosas"},"geometry":` + geom + `}`
}

const (
	point   = `{"type":"Point","coordinates":[-2.76,47.66]}`
	square  = `{"type":"Polygon","coordinates":[[[-2.8,47.6],[-2.7,47.6],[-2.7,47.7],[-2.8,47.6]]]}`
	allKind = `{"type":"MultiPolygon","coordinates":[[[[-2.8,47.6],[-2.7,47.6],[-2.7,47.7],[-2.8,47.6]]]]}`
)

func TestParseAccepts(t *testing.T) {
	body := fc(feat(point), feat(square), feat(allKind),
		feat(`{"type":"MultiPoint","coordinates":[[-2.76,47.66],[-2.7,47.6,12.5]]}`),
		feat(`{"type":"LineString","coordinates":[[-2.76,47.66],[-2.7,47.6]]}`),
		feat(`{"type":"MultiLineString","coordinates":[[[-2.76,47.66],[-2.7,47.6]]]}`),
		`{"type":"Feature","properties":null,"id":7,"geometry":`+point+`}`)
	n, err := Parse([]byte(body))
	if err != nil || n != 7 {
		t.Fatalf("Parse = %d, %v", n, err)
	}
}

func TestParseRefuses(t *testing.T) {
	many := make([]string, MaxFeatures+1)
	for i := range many {
		many[i] = feat(point)
	}
	two := fc(feat(point), feat(point))
	truncated := two[:len(two)-10] // inside the second feature
	cases := []struct {
		name    string
		body    string
		feature int
		want    string
	}{
		{"not JSON", `hello`, -1, "not a JSON object"},
		{"array", `[1,2]`, -1, "not a JSON object"},
		{"feature not a collection", feat(point), -1, `want "FeatureCollection"`},
		{"no features", `{"type":"FeatureCollection","features":[]}`, -1, "at least one feature"},
		{"features missing", `{"type":"FeatureCollection"}`, -1, "at least one feature"},
		{"features twice", `{"type":"FeatureCollection","features":[` + feat(point) + `],"features":[]}`, -1, "appears twice"},
		{"trailing data", fc(feat(point)) + `{}`, -1, "trailing data"},
		{"syntax error in a feature", fc(feat(point), feat(point), `{"type":"Feature","geometry":{"type":"Point","coordinates":[1,}}`), 2, "malformed JSON"},
		{"truncated", truncated, 1, "malformed JSON"},
		{"geometry null", fc(feat(point), feat(`null`)), 1, "geometry: missing"},
		{"not a Feature", fc(`{"type":"Point","coordinates":[0,0]}`), 0, `type: "Point", want "Feature"`},
		{"properties array", fc(`{"type":"Feature","properties":[1],"geometry":` + point + `}`), 0, "properties: must be an object"},
		{"geometry collection", fc(feat(`{"type":"GeometryCollection","geometries":[]}`)), 0, "unsupported type"},
		{"lat/lng swapped beyond range", fc(feat(`{"type":"Point","coordinates":[47.66,-92.76]}`)), 0, "out of range"},
		{"position of one number", fc(feat(point), feat(point), feat(point), feat(`{"type":"Point","coordinates":[1]}`)), 3, "a position is [longitude, latitude]"},
		{"point as string", fc(feat(`{"type":"Point","coordinates":"here"}`)), 0, "coordinates: must be a [longitude, latitude] position"},
		{"coordinates missing", fc(feat(`{"type":"LineString"}`)), 0, "coordinates: missing"},
		{"line of one point", fc(feat(`{"type":"LineString","coordinates":[[0,0]]}`)), 0, "1 positions, at least 2"},
		{"ring not closed", fc(feat(`{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1]]]}`)), 0, "ring 0: not closed"},
		{"ring too short", fc(feat(`{"type":"Polygon","coordinates":[[[0,0],[1,0],[0,0]]]}`)), 0, "ring 0: 3 positions, at least 4"},
		{"polygon without ring", fc(feat(`{"type":"Polygon","coordinates":[]}`)), 0, "no ring"},
		{"bad second polygon", fc(feat(`{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,0]]],[[[0,0],[1,0],[1,1],[0,2]]]]}`)), 0, "polygon 1: ring 0: not closed"},
		{"number out of float range", fc(feat(`{"type":"Point","coordinates":[1e999,0]}`)), 0, "coordinates"},
		{"too many features", fc(many...), MaxFeatures, fmt.Sprintf("at most %d", MaxFeatures)},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.body))
		var ge *GeoJSONError
		if !errors.As(err, &ge) || ge.Feature != c.feature || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v (feature %d), want feature %d and %q", c.name, err, func() int {
				if ge != nil {
					return ge.Feature
				}
				return -2
			}(), c.feature, c.want)
		}
	}
}

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{"EHPAD du Morbihan": true, "": false, strings.Repeat("x", MaxNameRunes+1): false, "a\tb": false} {
		if (CheckName(name) == nil) != ok {
			t.Errorf("CheckName(%q) = %v", name, CheckName(name))
		}
	}
}
