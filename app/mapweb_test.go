package app

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const twoCommunes = `{"type":"FeatureCollection","features":[
{"type":"Feature","properties":{"code":"56001","nom":"Allaire","population":3886},"geometry":{"type":"Polygon","coordinates":[[[-2.2,47.6],[-2.1,47.6],[-2.1,47.7],[-2.2,47.7],[-2.2,47.6]]]}},
{"type":"Feature","properties":{"code":"56002","nom":"Ambon","population":1961},"geometry":{"type":"Polygon","coordinates":[[[-2.6,47.5],[-2.5,47.5],[-2.5,47.6],[-2.6,47.6],[-2.6,47.5]]]}}]}`

func mapConfig(t testing.TB, withTerritory bool) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Addr = "127.0.0.1:0"
	cfg.SFUUDP, cfg.SFUTCP = "127.0.0.1:0", "" // parallel test processes share no fixed port
	if withTerritory {
		p := filepath.Join(cfg.DataDir, "communes.geojson")
		if err := os.WriteFile(p, []byte(twoCommunes), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.Territory = p
	}
	return cfg
}

func get(t *testing.T, url string, hdr map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	// A transport of our own: the default one would ask for gzip itself
	// and hide the encoding.
	res, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

func TestTerritoryGeoJSONServed(t *testing.T) {
	_, srv := startApp(t, mapConfig(t, true))
	res := get(t, srv.URL+"/territory.geojson", nil)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/geo+json" {
		t.Fatalf("GET /territory.geojson: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	etag := res.Header.Get("ETag")
	if etag == "" || !strings.Contains(res.Header.Get("Cache-Control"), "max-age") {
		t.Errorf("cache headers: ETag %q, Cache-Control %q", etag, res.Header.Get("Cache-Control"))
	}
	var fc struct {
		Type     string
		Features []struct {
			Properties struct {
				Code, Nom  string
				Population int
			}
			BBox [4]float64
		}
	}
	if err := json.NewDecoder(res.Body).Decode(&fc); err != nil {
		t.Fatal(err)
	}
	if fc.Type != "FeatureCollection" || len(fc.Features) != 2 {
		t.Fatalf("collection: %+v", fc)
	}
	if f := fc.Features[1]; f.Properties.Code != "56002" || f.Properties.Nom != "Ambon" || f.Properties.Population != 1961 || f.BBox != [4]float64{-2.6, 47.5, -2.5, 47.6} {
		t.Errorf("feature: %+v", f)
	}

	if res := get(t, srv.URL+"/territory.geojson", map[string]string{"If-None-Match": etag}); res.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation with the ETag: %d, want 304", res.StatusCode)
	}
	if res := get(t, srv.URL+"/territory.geojson", map[string]string{"Accept-Encoding": "gzip"}); res.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("not compressed for a client that accepts gzip: %q", res.Header.Get("Content-Encoding"))
	}

	res = get(t, srv.URL+"/config.json", nil)
	var pc struct{ Map MapPageConfig }
	if err := json.NewDecoder(res.Body).Decode(&pc); err != nil {
		t.Fatal(err)
	}
	if !pc.Map.Territory || pc.Map.Tiles != "" || pc.Map.Timezone != "Europe/Paris" {
		t.Errorf("config.json: %+v", pc.Map)
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self' data: blob:;") {
		t.Errorf("without tiles the CSP allows images from elsewhere: %s", csp)
	}
}

func TestTerritoryGeoJSONWithoutTerritory(t *testing.T) {
	_, srv := startApp(t, mapConfig(t, false))
	res := get(t, srv.URL+"/territory.geojson", nil)
	var body map[string]string
	_ = json.NewDecoder(res.Body).Decode(&body)
	if res.StatusCode != http.StatusNotFound || body["error"] != "no_territory" {
		t.Errorf("GET /territory.geojson without territory: %d %v", res.StatusCode, body)
	}
	res = get(t, srv.URL+"/config.json", nil)
	var pc struct{ Map MapPageConfig }
	_ = json.NewDecoder(res.Body).Decode(&pc)
	if pc.Map.Territory {
		t.Errorf("config.json says there is a territory")
	}
}

func TestMapTilesOriginInCSP(t *testing.T) {
	cfg := mapConfig(t, true)
	cfg.MapTiles = "https://{s}.tiles.example.fr/osm/{z}/{x}/{y}.png"
	_, srv := startApp(t, cfg)
	res := get(t, srv.URL+"/config.json", nil)
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self' data: blob: https://*.tiles.example.fr;") {
		t.Errorf("CSP does not allow the tile server: %s", csp)
	}
	var pc struct{ Map MapPageConfig }
	_ = json.NewDecoder(res.Body).Decode(&pc)
	if pc.Map.Tiles != cfg.MapTiles {
		t.Errorf("config.json tiles: %q", pc.Map.Tiles)
	}
}

func TestMapTilesValidation(t *testing.T) {
	for tiles, want := range map[string]string{
		"":                                 "",
		"/tiles/{z}/{x}/{y}.png":           "",
		"https://t.example.fr/{z}/{x}/{y}": "https://t.example.fr",
		"http://{s}.example.fr:8080/{z}/{x}/{y}.png": "http://*.example.fr:8080",
	} {
		c := DefaultConfig()
		c.MapTiles = tiles
		if got, err := c.mapTilesOrigin(); err != nil || got != want {
			t.Errorf("%q: got %q, %v; want %q", tiles, got, err, want)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%q: %v", tiles, err)
		}
	}
	for _, bad := range []string{
		"https://t.example.fr/{z}/{x}.png", // no {y}
		"ftp://t.example.fr/{z}/{x}/{y}",
		"//t.example.fr/{z}/{x}/{y}",
		"https://evil.fr; script-src *;/{z}/{x}/{y}",
		"https://user@t.example.fr/{z}/{x}/{y}",
	} {
		c := DefaultConfig()
		c.MapTiles = bad
		if err := c.Validate(); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
