// Package territory loads the communes a crisis room covers: INSEE code,
// name, population and boundary.
//
// Boundaries come from a GeoJSON FeatureCollection (properties "code" and
// "nom", optional "population"; Polygon or MultiPolygon geometries).
// An optional commune list (CSV, columns code_insee, nom, population and
// codes_geometrie_2018) gives the current communes: communes in France merge
// every year, and a list entry naming several older boundary codes is drawn
// as the union of those shapes under its current code. Both inputs are
// validated on load and errors name the feature or the line at fault.
//
// A Territory is read-only once loaded and safe for concurrent use.
package territory

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// MaxInputBytes bounds each input file or download: the national commune
// boundaries at full resolution are far below it, a mistaken URL is not.
const MaxInputBytes = 64 << 20

// downloadTimeout bounds an http(s) input when the caller's context has no
// deadline of its own.
const downloadTimeout = 2 * time.Minute

// Commune is one commune of the territory.
type Commune struct {
	Code       string // INSEE code, e.g. "56102"
	Name       string
	Population int // 0 when unknown
	// Geometry is a GeoJSON Polygon or MultiPolygon. A commune made of
	// several older boundaries is one MultiPolygon collecting all their
	// polygons (not dissolved).
	Geometry json.RawMessage
	BBox     [4]float64 // west, south, east, north (longitude, latitude)
}

// Territory is the set of communes loaded from one source.
type Territory struct {
	Communes []Commune // sorted by code; Lookup relies on it
	Source   string    // where the data came from, for logs and the UI

	once    sync.Once
	geojson []byte
}

// Load reads the boundaries (a GeoJSON file path or http(s) URL) and, if
// communes is not empty, the commune list (a CSV file path or URL), then
// validates and merges them. Without a list every boundary feature is a
// commune and its population is the feature's "population" property, or 0.
func Load(ctx context.Context, boundaries, communes string) (*Territory, error) {
	if boundaries == "" {
		return nil, errors.New("territory: no boundaries file or URL given")
	}
	geo, err := readSource(ctx, boundaries, MaxInputBytes)
	if err != nil {
		return nil, fmt.Errorf("territory: boundaries: %w", err)
	}
	var list []byte
	if communes != "" {
		if list, err = readSource(ctx, communes, MaxInputBytes); err != nil {
			return nil, fmt.Errorf("territory: commune list: %w", err)
		}
	}
	return parse(geo, list, boundaries, communes)
}

// parse validates and merges inputs already in memory; list may be nil.
// The names are those of the sources, for messages and Territory.Source.
func parse(geo, list []byte, geoName, listName string) (*Territory, error) {
	feats, err := decodeFeatures(geo)
	if err != nil {
		return nil, fmt.Errorf("territory: boundaries %s: %w", geoName, err)
	}
	var cs []Commune
	source := geoName
	if list == nil {
		cs = make([]Commune, 0, len(feats))
		for i := range feats {
			f := &feats[i]
			cs = append(cs, newCommune(f.Code, f.Name, f.Population, []*feature{f}))
		}
	} else {
		source += " + " + listName
		rows, err := parseCommuneList(list)
		if err != nil {
			return nil, fmt.Errorf("territory: commune list %s: %w", listName, err)
		}
		if cs, err = mergeCommunes(feats, rows); err != nil {
			return nil, fmt.Errorf("territory: commune list %s against boundaries %s: %w", listName, geoName, err)
		}
	}
	slices.SortFunc(cs, func(a, b Commune) int { return cmp.Compare(a.Code, b.Code) })
	return &Territory{Communes: cs, Source: source}, nil
}

// Lookup finds a commune by INSEE code. The result points into Communes
// and must not be modified.
func (t *Territory) Lookup(code string) (*Commune, bool) {
	i, ok := slices.BinarySearchFunc(t.Communes, code, func(c Commune, code string) int {
		return cmp.Compare(c.Code, code)
	})
	if !ok {
		return nil, false
	}
	return &t.Communes[i], true
}

// Population is the total population of the communes.
func (t *Territory) Population() int {
	n := 0
	for i := range t.Communes {
		n += t.Communes[i].Population
	}
	return n
}

// GeoJSON returns the communes as a FeatureCollection, each feature with
// properties code, nom and population and a bbox. It is encoded on the
// first call and the same bytes are returned afterwards (callers must not
// modify them), so a map endpoint can serve it on every request.
func (t *Territory) GeoJSON() []byte {
	t.once.Do(func() { t.geojson = encodeCollection(t.Communes) })
	return t.geojson
}

func encodeCollection(cs []Commune) []byte {
	type props struct {
		Code       string `json:"code"`
		Nom        string `json:"nom"`
		Population int    `json:"population"`
	}
	type feat struct {
		Type       string          `json:"type"`
		Properties props           `json:"properties"`
		BBox       [4]float64      `json:"bbox"`
		Geometry   json.RawMessage `json:"geometry"`
	}
	var b bytes.Buffer
	b.WriteString(`{"type":"FeatureCollection","features":[`)
	for i := range cs {
		c := &cs[i]
		f := feat{"Feature", props{c.Code, c.Name, c.Population}, c.BBox, c.Geometry}
		if !json.Valid(f.Geometry) {
			f.Geometry = nil // a hand-built Commune with a broken shape: keep the others drawable
		}
		enc, err := json.Marshal(f)
		if err != nil {
			continue // only a hand-built NaN or infinite BBox gets here: drop that one, keep the map
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(enc)
	}
	b.WriteString("]}")
	return b.Bytes()
}

// readSource reads a file path or an http(s) URL, refusing more than limit bytes.
func readSource(ctx context.Context, src string, limit int64) ([]byte, error) {
	if isURL(src) {
		return download(ctx, src, limit)
	}
	f, err := os.Open(src)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > limit {
		return nil, fmt.Errorf("%s is %d bytes, over the %s limit", src, st.Size(), sizeText(limit))
	}
	return readLimited(f, src, limit)
}

func isURL(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://")
}

func download(ctx context.Context, url string, limit int64) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, downloadTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/geo+json, application/json, text/csv;q=0.9, */*;q=0.5")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096)) // let the connection be reused
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("GET %s: %d bytes announced, over the %s limit", url, resp.ContentLength, sizeText(limit))
	}
	return readLimited(resp.Body, url, limit)
}

func readLimited(r io.Reader, name string, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is over the %s limit", name, sizeText(limit))
	}
	return data, nil
}

func sizeText(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d-byte", n)
}
