// Package layers keeps the operators' own GIS layers (hospitals, EHPADs,
// zones…): GeoJSON FeatureCollections uploaded over HTTP, checked and
// size-limited, listed for everyone in the room and toggled on the map.
// Every change pushes the new list to every map watcher.
package layers

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Limits of an upload. 5 MiB holds a département's EHPADs and hospitals
// many times over; the map must stay fluid on a prefecture laptop.
const (
	MaxBytes     = 5 << 20
	MaxFeatures  = 20_000
	MaxNameRunes = 100
)

// Layer describes one uploaded layer (its GeoJSON is fetched apart).
type Layer struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Features int       `json:"features"`
	Bytes    int64     `json:"bytes"`
	Author   string    `json:"author"`    // the uploader's link label
	AuthorID string    `json:"author_id"` // its link id, for the record
	Created  time.Time `json:"created"`
}

// List is the body of GET /api/v1/layers and of the `layers` message.
type List struct {
	Items []Layer `json:"items"`
}

// ErrNotFound: no layer with that id.
var ErrNotFound = errors.New("no such layer")

// Store keeps layers durably.
type Store interface {
	Create(ctx context.Context, l Layer, geojson []byte) error
	// List returns every layer, oldest first.
	List(ctx context.Context) ([]Layer, error)
	// GeoJSON returns a layer's collection; ErrNotFound if unknown.
	GeoJSON(ctx context.Context, id string) ([]byte, error)
	// Delete removes a layer; ErrNotFound if unknown.
	Delete(ctx context.Context, id string) error
}

// CheckName validates a layer's name.
func CheckName(s string) error {
	n := utf8.RuneCountInString(s)
	if n == 0 || n > MaxNameRunes || !utf8.ValidString(s) {
		return fmt.Errorf("name: 1 to %d characters, got %d (give ?name=…)", MaxNameRunes, n)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return errors.New("name: control characters are not allowed")
		}
	}
	return nil
}
