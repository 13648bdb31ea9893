package territory

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// listRow is one commune of the commune list (CSV).
type listRow struct {
	Line       int // 1-based line in the file, for messages
	Code       string
	Name       string
	Population int
	Parts      []string // boundary codes whose shapes make up the commune
}

// Column names of the commune list, as in communes-56-morbihan-cog2021.csv.
// Other columns (arrondissement, codes_postaux, anciens_codes, …) are ignored.
const (
	colCode       = "code_insee"
	colName       = "nom"
	colPopulation = "population"
	colParts      = "codes_geometrie_2018" // optional; absent or empty means the row's own code
)

// parseCommuneList reads the commune list: a comma-separated file with a
// header row naming at least code_insee, nom and population.
func parseCommuneList(data []byte) ([]listRow, error) {
	data = bytes.TrimPrefix(data, []byte("\uFEFF")) // spreadsheets add a BOM
	r := csv.NewReader(bytes.NewReader(data))
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	cols := map[string]int{}
	for i, h := range header {
		cols[strings.ToLower(strings.TrimSpace(h))] = i
	}
	for _, need := range []string{colCode, colName, colPopulation} {
		if _, ok := cols[need]; !ok {
			return nil, fmt.Errorf("header has no %q column (columns: %s)", need, strings.Join(header, ","))
		}
	}
	var rows []listRow
	seen := map[string]int{}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err // csv errors carry the line number
		}
		line, _ := r.FieldPos(0)
		row, err := parseRow(rec, cols, line)
		if err != nil {
			return nil, rowError(line, row.Code, err)
		}
		if prev, dup := seen[row.Code]; dup {
			return nil, rowError(line, row.Code, fmt.Errorf("duplicate code, already on line %d", prev))
		}
		seen[row.Code] = line
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return nil, errors.New("no communes after the header")
	}
	return rows, nil
}

func rowError(line int, code string, err error) error {
	if code != "" {
		return fmt.Errorf("line %d (code_insee %q): %w", line, code, err)
	}
	return fmt.Errorf("line %d: %w", line, err)
}

func parseRow(rec []string, cols map[string]int, line int) (listRow, error) {
	row := listRow{Line: line, Code: strings.TrimSpace(rec[cols[colCode]])}
	if !ValidCode(row.Code) {
		return row, fmt.Errorf("code_insee %q is not an INSEE commune code (5 characters: digits, or 2A/2B then 3 digits)", row.Code)
	}
	row.Name = strings.TrimSpace(rec[cols[colName]])
	if row.Name == "" {
		return row, errors.New("nom is empty")
	}
	if !utf8.ValidString(row.Name) {
		return row, errors.New("nom is not valid UTF-8 (convert the file from Windows-1252?)")
	}
	pop := strings.TrimSpace(rec[cols[colPopulation]])
	n, err := strconv.Atoi(pop)
	if err != nil || n < 0 || strings.HasPrefix(pop, "+") {
		return row, fmt.Errorf("population %q is not a non-negative integer", pop)
	}
	row.Population = n
	if i, ok := cols[colParts]; ok {
		// The reference file separates codes with spaces; "|" is accepted too.
		row.Parts = strings.FieldsFunc(rec[i], func(r rune) bool { return r == '|' || unicode.IsSpace(r) })
	}
	if len(row.Parts) == 0 {
		row.Parts = []string{row.Code}
	}
	for k, p := range row.Parts {
		if !ValidCode(p) {
			return row, fmt.Errorf("%s: %q is not an INSEE commune code", colParts, p)
		}
		if slices.Contains(row.Parts[:k], p) {
			return row, fmt.Errorf("%s names %s twice", colParts, p)
		}
	}
	return row, nil
}

// mergeCommunes builds the communes of the list from the boundary features.
// Every part a row names must be a feature, no feature may belong to two
// rows, and every feature must belong to one row, so the map covers the
// territory exactly once.
func mergeCommunes(feats []feature, rows []listRow) ([]Commune, error) {
	byCode := make(map[string]int, len(feats))
	for i, f := range feats {
		byCode[f.Code] = i
	}
	owner := make(map[string]int, len(feats)) // boundary code → line
	out := make([]Commune, 0, len(rows))
	for _, row := range rows {
		parts := make([]*feature, 0, len(row.Parts))
		for _, p := range row.Parts {
			i, ok := byCode[p]
			if !ok {
				return nil, rowError(row.Line, row.Code, fmt.Errorf("boundary code %s is not in the boundaries file", p))
			}
			if prev, taken := owner[p]; taken {
				return nil, rowError(row.Line, row.Code, fmt.Errorf("boundary code %s is already used by line %d", p, prev))
			}
			owner[p] = row.Line
			parts = append(parts, &feats[i])
		}
		out = append(out, newCommune(row.Code, row.Name, row.Population, parts))
	}
	for i, f := range feats {
		if _, ok := owner[f.Code]; !ok {
			return nil, featureError(i, f.Code, fmt.Errorf("%q is not covered by any row of the commune list (add it to a row's %s)", f.Name, colParts))
		}
	}
	return out, nil
}

// newCommune draws a commune as its parts' shapes. Several parts are not
// dissolved: their polygons are collected into one MultiPolygon, which
// fills the same area; the former border between them remains in the data
// and shows only where a map strokes polygon outlines.
func newCommune(code, name string, population int, parts []*feature) Commune {
	var polys []polygon
	multi := len(parts) > 1
	for _, f := range parts {
		polys = append(polys, f.Polygons...)
		multi = multi || f.Multi
	}
	return Commune{
		Code:       code,
		Name:       name,
		Population: population,
		Geometry:   encodeGeometry(polys, multi),
		BBox:       bbox(polys),
	}
}
