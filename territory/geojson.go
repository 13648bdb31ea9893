package territory

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The decoder below reads boundaries strictly: a crisis room map that
// silently drops or distorts a commune is worse than one that refuses to start,
// so every defect is reported with the index and code of the feature.

// coord is one number of a GeoJSON position. It has its own decoder because
// encoding/json leaves a float64 untouched (zero) on a JSON null and
// json.Number accepts quoted numbers; both would let a broken file through.
type coord float64

func (c *coord) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return fmt.Errorf("non-numeric coordinate %s", clip(b))
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("coordinate %s is not a finite number", clip(b))
	}
	*c = coord(f)
	return nil
}

type (
	position []coord // longitude, latitude[, altitude]
	ring     []position
	polygon  []ring // outer ring, then holes
)

// feature is one validated boundary feature.
type feature struct {
	Code          string
	Name          string
	Population    int
	HasPopulation bool      // the population property was present
	Multi         bool      // the geometry was a MultiPolygon
	Polygons      []polygon // a Polygon geometry gives one element
}

// featureError names the feature at fault so an operator can find it in
// the file: its index in "features" and its code when it could be read.
func featureError(i int, code string, err error) error {
	if code != "" {
		return fmt.Errorf("feature %d (code %q): %w", i, code, err)
	}
	return fmt.Errorf("feature %d: %w", i, err)
}

// decodeFeatures parses and validates a GeoJSON FeatureCollection of
// commune boundaries. Codes are unique in the result, which keeps the
// order of the file.
func decodeFeatures(data []byte) ([]feature, error) {
	var top struct {
		Type     string            `json:"type"`
		Features []json.RawMessage `json:"features"`
	}
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("not valid GeoJSON: %w", err)
	}
	if top.Type != "FeatureCollection" {
		return nil, fmt.Errorf("top-level type is %q, want \"FeatureCollection\"", top.Type)
	}
	if len(top.Features) == 0 {
		return nil, errors.New("the FeatureCollection has no features")
	}
	feats := make([]feature, 0, len(top.Features))
	seen := make(map[string]int, len(top.Features))
	for i, raw := range top.Features {
		f, err := decodeFeature(raw)
		if err != nil {
			return nil, featureError(i, f.Code, err)
		}
		if j, dup := seen[f.Code]; dup {
			return nil, featureError(i, f.Code, fmt.Errorf("duplicate code, already used by feature %d", j))
		}
		seen[f.Code] = i
		feats = append(feats, f)
	}
	return feats, nil
}

// decodeFeature validates one feature. On error the returned feature still
// carries the code when it was readable, for the message.
func decodeFeature(raw json.RawMessage) (feature, error) {
	var in struct {
		Type       string                     `json:"type"`
		Properties map[string]json.RawMessage `json:"properties"`
		Geometry   json.RawMessage            `json:"geometry"`
	}
	var f feature
	err := json.Unmarshal(raw, &in)
	_ = json.Unmarshal(in.Properties["code"], &f.Code) // best effort, for messages
	if err != nil {
		return f, err
	}
	if in.Type != "Feature" {
		return f, fmt.Errorf("type is %q, want \"Feature\"", in.Type)
	}
	if f.Code, err = stringProperty(in.Properties, "code"); err != nil {
		return f, err
	}
	if !ValidCode(f.Code) {
		return f, fmt.Errorf("code %q is not an INSEE commune code (5 characters: digits, or 2A/2B then 3 digits)", f.Code)
	}
	if f.Name, err = stringProperty(in.Properties, "nom"); err != nil {
		return f, err
	}
	if f.Population, f.HasPopulation, err = populationProperty(in.Properties); err != nil {
		return f, err
	}
	f.Polygons, f.Multi, err = decodeGeometry(in.Geometry)
	return f, err
}

func stringProperty(props map[string]json.RawMessage, name string) (string, error) {
	raw, ok := props[name]
	if !ok || string(raw) == "null" {
		return "", fmt.Errorf("missing property %q", name)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("property %q must be a string, got %s", name, clip(raw))
	}
	if s = strings.TrimSpace(s); s == "" {
		return "", fmt.Errorf("property %q is empty", name)
	}
	return s, nil
}

// populationProperty reads the optional "population": absent or null means
// unknown; otherwise it must be a non-negative JSON integer.
func populationProperty(props map[string]json.RawMessage) (int, bool, error) {
	raw, ok := props["population"]
	if !ok || string(raw) == "null" {
		return 0, false, nil
	}
	n, err := strconv.Atoi(string(raw))
	if err != nil || n < 0 {
		return 0, false, fmt.Errorf("property \"population\" must be a non-negative integer, got %s", clip(raw))
	}
	return n, true, nil
}

// ValidCode reports whether s has the shape of an INSEE commune code:
// five characters, all digits except a leading 2A or 2B (Corsica).
func ValidCode(s string) bool {
	if len(s) != 5 {
		return false
	}
	for i := 0; i < 5; i++ {
		c := s[i]
		if c >= '0' && c <= '9' {
			continue
		}
		if i == 1 && s[0] == '2' && (c == 'A' || c == 'B') {
			continue
		}
		return false
	}
	return true
}

// decodeGeometry accepts a Polygon or a MultiPolygon and checks every ring.
func decodeGeometry(raw json.RawMessage) ([]polygon, bool, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, false, errors.New("missing geometry")
	}
	var g struct {
		Type        string          `json:"type"`
		Coordinates json.RawMessage `json:"coordinates"`
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		return nil, false, fmt.Errorf("geometry: %w", err)
	}
	if g.Type != "Polygon" && g.Type != "MultiPolygon" {
		return nil, false, fmt.Errorf("geometry type %q is not supported, want Polygon or MultiPolygon", g.Type)
	}
	if len(g.Coordinates) == 0 || string(g.Coordinates) == "null" {
		return nil, false, fmt.Errorf("%s geometry has no coordinates", g.Type)
	}
	var polys []polygon
	multi := g.Type == "MultiPolygon"
	if multi {
		if err := json.Unmarshal(g.Coordinates, &polys); err != nil {
			return nil, false, fmt.Errorf("MultiPolygon coordinates: %w", coordsError(err))
		}
		if len(polys) == 0 {
			return nil, false, errors.New("MultiPolygon has no polygons")
		}
	} else {
		var p polygon
		if err := json.Unmarshal(g.Coordinates, &p); err != nil {
			return nil, false, fmt.Errorf("Polygon coordinates: %w", coordsError(err))
		}
		polys = []polygon{p}
	}
	for i, p := range polys {
		if err := checkPolygon(p); err != nil {
			return nil, false, fmt.Errorf("polygon %d: %w", i, err)
		}
	}
	return polys, multi, nil
}

// coordsError rewords encoding/json's type errors, which name Go types,
// for someone editing a GeoJSON file.
func coordsError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("found a JSON %s at byte %d where an array was expected", te.Value, te.Offset)
	}
	return err
}

func checkPolygon(p polygon) error {
	if len(p) == 0 {
		return errors.New("no rings")
	}
	for r, rg := range p {
		if len(rg) < 4 {
			return fmt.Errorf("ring %d has %d positions, a closed ring needs at least 4", r, len(rg))
		}
		for k, pos := range rg {
			if err := checkPosition(pos); err != nil {
				return fmt.Errorf("ring %d position %d: %w", r, k, err)
			}
		}
		if !samePosition(rg[0], rg[len(rg)-1]) {
			return fmt.Errorf("ring %d is not closed: first position %v differs from last %v", r, rg[0], rg[len(rg)-1])
		}
	}
	return nil
}

func checkPosition(p position) error {
	if len(p) < 2 || len(p) > 3 {
		return fmt.Errorf("position has %d numbers, want 2 (longitude, latitude) or 3", len(p))
	}
	if p[0] < -180 || p[0] > 180 {
		return fmt.Errorf("longitude %v out of range [-180, 180]", float64(p[0]))
	}
	if p[1] < -90 || p[1] > 90 {
		return fmt.Errorf("latitude %v out of range [-90, 90]", float64(p[1]))
	}
	return nil
}

func samePosition(a, b position) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// encodeGeometry writes polygons back as compact GeoJSON: a Polygon when
// there is one part and the source was not a MultiPolygon, else a
// MultiPolygon. Numbers use the shortest form that reads back exactly.
func encodeGeometry(polys []polygon, multi bool) json.RawMessage {
	b := make([]byte, 0, 64+24*countPositions(polys))
	if multi {
		b = append(b, `{"type":"MultiPolygon","coordinates":[`...)
		for i, p := range polys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendPolygon(b, p)
		}
		b = append(b, ']')
	} else {
		b = append(b, `{"type":"Polygon","coordinates":`...)
		b = appendPolygon(b, polys[0])
	}
	return append(b, '}')
}

func appendPolygon(b []byte, p polygon) []byte {
	b = append(b, '[')
	for i, rg := range p {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		for j, pos := range rg {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			for k, c := range pos {
				if k > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendFloat(b, float64(c), 'f', -1, 64)
			}
			b = append(b, ']')
		}
		b = append(b, ']')
	}
	return append(b, ']')
}

func countPositions(polys []polygon) int {
	n := 0
	for _, p := range polys {
		for _, rg := range p {
			n += len(rg)
		}
	}
	return n
}

// bbox returns [west, south, east, north] of all positions.
func bbox(polys []polygon) [4]float64 {
	bb := [4]float64{180, 90, -180, -90}
	for _, p := range polys {
		for _, rg := range p {
			for _, pos := range rg {
				x, y := float64(pos[0]), float64(pos[1])
				bb[0], bb[1] = min(bb[0], x), min(bb[1], y)
				bb[2], bb[3] = max(bb[2], x), max(bb[3], y)
			}
		}
	}
	return bb
}

// clip shortens a JSON fragment quoted in an error message.
func clip(b []byte) string {
	const n = 40
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
