package app

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"sync"
)

// MapPageConfig is what the room page needs to draw the map: whether
// there is one, the optional tile template (empty by default: the page then
// asks no third party for anything) and the territory's time zone (what
// "today" means in the commune series).
type MapPageConfig struct {
	Territory   bool   `json:"territory"`
	Tiles       string `json:"tiles"`
	Attribution string `json:"attribution"`
	Timezone    string `json:"timezone"`
}

// pageConfig serves GET /config.json.
func (a *App) pageConfig(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	writeJSON(w, http.StatusOK, map[string]MapPageConfig{"map": {
		Territory: a.Territory != nil, Tiles: a.cfg.MapTiles, Attribution: a.cfg.MapAttribution, Timezone: a.cfg.Timezone,
	}})
}

// territoryGeoJSON serves the commune boundaries the map draws (a
// FeatureCollection with properties code, nom, population and a bbox per
// feature). The bytes are encoded once and only change when the server
// restarts with another territory, so clients revalidate by ETag.
func (a *App) territoryGeoJSON() http.HandlerFunc {
	var (
		once sync.Once
		etag string
	)
	return func(w http.ResponseWriter, r *http.Request) {
		if a.Territory == nil {
			writeError(w, http.StatusNotFound, "no_territory", "the map is off: start the server with --territory (and --communes)")
			return
		}
		body := a.Territory.GeoJSON()
		once.Do(func() {
			sum := sha256.Sum256(body)
			etag = `"` + hex.EncodeToString(sum[:12]) + `"`
		})
		h := w.Header()
		h.Set("Content-Type", "application/geo+json")
		h.Set("Cache-Control", "public, max-age=300, must-revalidate")
		h.Set("ETag", etag)
		http.ServeContent(w, r, "", a.start, bytes.NewReader(body))
	}
}
