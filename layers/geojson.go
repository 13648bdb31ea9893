package layers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
)

// GeoJSONError says what is wrong with an upload and, when it is inside one
// feature, which (0-based index in "features"; -1 for the collection).
type GeoJSONError struct {
	Feature int
	Msg     string
}

func (e *GeoJSONError) Error() string {
	if e.Feature < 0 {
		return e.Msg
	}
	return fmt.Sprintf("feature %d: %s", e.Feature, e.Msg)
}

func collErr(format string, args ...any) error {
	return &GeoJSONError{Feature: -1, Msg: fmt.Sprintf(format, args...)}
}

// Parse checks that body is a GeoJSON FeatureCollection (RFC 7946) the map
// can draw and returns its feature count. It reads the collection as a
// stream, feature by feature, so that even a syntax error names the feature
// it is in.
func Parse(body []byte) (features int, err error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := expectDelim(dec, '{'); err != nil {
		return 0, collErr("not a JSON object: %v", err)
	}
	var typ string
	seen := false
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return 0, collErr("malformed JSON: %v", err)
		}
		switch key {
		case "type":
			if err := dec.Decode(&typ); err != nil {
				return 0, collErr("type: %v", err)
			}
		case "features":
			if seen {
				return 0, collErr(`"features" appears twice`)
			}
			seen = true
			if features, err = parseFeatures(dec); err != nil {
				return 0, err
			}
		default: // foreign members (bbox, name, crs…) are kept as they are
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return 0, collErr("malformed JSON in %q: %v", key, err)
			}
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return 0, collErr("malformed JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return 0, collErr("trailing data after the collection")
	}
	switch {
	case typ != "FeatureCollection":
		return 0, collErr(`type: %q, want "FeatureCollection"`, typ)
	case !seen || features == 0:
		return 0, collErr("features: at least one feature is required")
	}
	return features, nil
}

func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != d {
		return fmt.Errorf("found %v where %q was expected", tok, d)
	}
	return nil
}

func parseFeatures(dec *json.Decoder) (int, error) {
	if err := expectDelim(dec, '['); err != nil {
		return 0, collErr("features: must be an array: %v", err)
	}
	n := 0
	for ; dec.More(); n++ {
		if n >= MaxFeatures {
			return 0, &GeoJSONError{Feature: n, Msg: fmt.Sprintf("too many features: at most %d in one layer", MaxFeatures)}
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return 0, &GeoJSONError{Feature: n, Msg: "malformed JSON: " + err.Error()}
		}
		if msg := checkFeature(raw); msg != "" {
			return 0, &GeoJSONError{Feature: n, Msg: msg}
		}
	}
	if err := expectDelim(dec, ']'); err != nil {
		return 0, &GeoJSONError{Feature: n, Msg: "malformed JSON: " + err.Error()}
	}
	return n, nil
}

type feature struct {
	Type       string          `json:"type"`
	Geometry   json.RawMessage `json:"geometry"`
	Properties json.RawMessage `json:"properties"`
}

type geometry struct {
	Type        string          `json:"type"`
	Coordinates json.RawMessage `json:"coordinates"`
}

// checkFeature returns what is wrong with one feature, or "".
func checkFeature(raw json.RawMessage) string {
	var f feature
	if err := json.Unmarshal(raw, &f); err != nil {
		return "not a Feature object: " + err.Error()
	}
	if f.Type != "Feature" {
		return fmt.Sprintf(`type: %q, want "Feature"`, f.Type)
	}
	if p := bytes.TrimSpace(f.Properties); len(p) > 0 && p[0] != '{' && !bytes.Equal(p, []byte("null")) {
		return "properties: must be an object or null"
	}
	var g geometry
	if len(f.Geometry) == 0 || bytes.Equal(bytes.TrimSpace(f.Geometry), []byte("null")) {
		return "geometry: missing (a layer shows located features only)"
	}
	if err := json.Unmarshal(f.Geometry, &g); err != nil {
		return "geometry: not an object: " + err.Error()
	}
	if err := checkGeometry(g); err != nil {
		return "geometry " + g.Type + ": " + err.Error()
	}
	return ""
}

// Supported geometry types. GeometryCollection is not: nothing we import
// needs it, and it nests without bound.
func checkGeometry(g geometry) error {
	var err error
	switch g.Type {
	case "Point":
		var p []float64
		if err = decodeCoords(g.Coordinates, &p, "a [longitude, latitude] position"); err == nil {
			err = checkPosition(p)
		}
	case "MultiPoint":
		var ps [][]float64
		if err = decodeCoords(g.Coordinates, &ps, "an array of positions"); err == nil {
			err = checkLine(ps, 0)
		}
	case "LineString":
		var ps [][]float64
		if err = decodeCoords(g.Coordinates, &ps, "an array of positions"); err == nil {
			err = checkLine(ps, 2)
		}
	case "MultiLineString":
		var ls [][][]float64
		if err = decodeCoords(g.Coordinates, &ls, "an array of lines (arrays of positions)"); err == nil {
			err = each(ls, "line", func(l [][]float64) error { return checkLine(l, 2) })
		}
	case "Polygon":
		var rings [][][]float64
		if err = decodeCoords(g.Coordinates, &rings, "an array of linear rings (arrays of positions)"); err == nil {
			err = checkPolygon(rings)
		}
	case "MultiPolygon":
		var polys [][][][]float64
		if err = decodeCoords(g.Coordinates, &polys, "an array of polygons (arrays of linear rings)"); err == nil {
			err = each(polys, "polygon", checkPolygon)
		}
	default:
		return errors.New("unsupported type: use Point, MultiPoint, LineString, MultiLineString, Polygon or MultiPolygon")
	}
	return err
}

func decodeCoords(raw json.RawMessage, v any, want string) error {
	if len(raw) == 0 {
		return errors.New("coordinates: missing")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("coordinates: must be %s (%v)", want, err)
	}
	return nil
}

func each[T any](xs []T, what string, check func(T) error) error {
	for i, x := range xs {
		if err := check(x); err != nil {
			return fmt.Errorf("%s %d: %w", what, i, err)
		}
	}
	return nil
}

func checkLine(ps [][]float64, min int) error {
	if len(ps) < min {
		return fmt.Errorf("%d positions, at least %d", len(ps), min)
	}
	return each(ps, "position", checkPosition)
}

func checkPolygon(rings [][][]float64) error {
	if len(rings) == 0 {
		return errors.New("no ring: a polygon needs its exterior ring")
	}
	return each(rings, "ring", func(r [][]float64) error {
		if len(r) < 4 {
			return fmt.Errorf("%d positions, at least 4 (a closed ring repeats its first position at the end)", len(r))
		}
		if err := each(r, "position", checkPosition); err != nil {
			return err
		}
		first, last := r[0], r[len(r)-1]
		if first[0] != last[0] || first[1] != last[1] {
			return errors.New("not closed: the last position must repeat the first")
		}
		return nil
	})
}

// checkPosition: GeoJSON order is [longitude, latitude(, altitude)].
func checkPosition(p []float64) error {
	if len(p) < 2 || len(p) > 3 {
		return fmt.Errorf("%v: a position is [longitude, latitude] or [longitude, latitude, altitude]", p)
	}
	for _, v := range p {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return errors.New("not a finite number")
		}
	}
	if p[0] < -180 || p[0] > 180 || p[1] < -90 || p[1] > 90 {
		return fmt.Errorf("[%g, %g] out of range: longitude in [-180, 180] first, then latitude in [-90, 90]", p[0], p[1])
	}
	return nil
}
