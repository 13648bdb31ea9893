package livemap

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// Annotation kinds.
const (
	KindMarker  = "marker"
	KindLine    = "line"
	KindPolygon = "polygon"
)

// Limits of one annotation and of a room's set. A room's whole set is sent
// to every watcher that subscribes, so its size is bounded as a whole too:
// 100,000 points are about 2.5 MB of JSON.
const (
	MaxLabelRunes  = 200
	MaxPoints      = 5000
	MaxRoomItems   = 1000
	MaxRoomPoints  = 100_000
	colorHexDigits = 6
)

// Annotation is a marker, line or polygon drawn on a room's map. Coords are
// [latitude, longitude] pairs (Leaflet's order, not GeoJSON's). Room,
// Author*, Editor*, the times and Version are stamped by the server.
type Annotation struct {
	ID     string       `json:"id"`
	Room   string       `json:"room"`
	Kind   string       `json:"kind"`
	Coords [][2]float64 `json:"coords"`
	Label  string       `json:"label"`
	Color  string       `json:"color"` // #rrggbb, lower case
	// Author created it; Editor made the latest change (create, update or
	// delete): the record says who drew a "zone confinée" and who moved it.
	Author     string    `json:"author"`
	AuthorName string    `json:"author_name"`
	Editor     string    `json:"editor"`
	EditorName string    `json:"editor_name"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	Version    int64     `json:"version"`
}

// ValidationError is a rule an annotation breaks. TooLarge tells a size
// limit (answered too_large) from a malformed field (answered invalid).
type ValidationError struct {
	Msg      string
	TooLarge bool
}

func (e *ValidationError) Error() string { return e.Msg }

func invalid(format string, args ...any) error {
	return &ValidationError{Msg: fmt.Sprintf(format, args...)}
}

// Validate checks what a client sets: kind, points, label and colour.
func (a *Annotation) Validate() error {
	need := map[string]int{KindMarker: 1, KindLine: 2, KindPolygon: 3}[a.Kind]
	switch {
	case need == 0:
		return invalid("kind: %q is not one of marker, line, polygon", a.Kind)
	case len(a.Coords) > MaxPoints:
		return &ValidationError{TooLarge: true,
			Msg: fmt.Sprintf("coords: %d points, at most %d: simplify the shape", len(a.Coords), MaxPoints)}
	case a.Kind == KindMarker && len(a.Coords) != 1:
		return invalid("coords: a marker has exactly 1 point, got %d", len(a.Coords))
	case len(a.Coords) < need:
		return invalid("coords: a %s needs at least %d points, got %d", a.Kind, need, len(a.Coords))
	}
	for i, p := range a.Coords {
		if err := checkPoint(p); err != nil {
			return invalid("coords[%d]: %v", i, err)
		}
	}
	if err := checkLabel(a.Label); err != nil {
		return err
	}
	return checkColor(a.Color)
}

func checkPoint(p [2]float64) error {
	lat, lng := p[0], p[1]
	switch {
	case math.IsNaN(lat) || math.IsInf(lat, 0) || math.IsNaN(lng) || math.IsInf(lng, 0):
		return errors.New("not a finite number")
	case lat < -90 || lat > 90:
		return fmt.Errorf("latitude %g out of [-90, 90] (points are [latitude, longitude])", lat)
	case lng < -180 || lng > 180:
		return fmt.Errorf("longitude %g out of [-180, 180]", lng)
	}
	return nil
}

func checkLabel(s string) error {
	n := utf8.RuneCountInString(s)
	if n == 0 || n > MaxLabelRunes || !utf8.ValidString(s) {
		return invalid("label: 1 to %d characters of valid UTF-8, got %d", MaxLabelRunes, n)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return invalid("label: control characters are not allowed")
		}
	}
	return nil
}

func checkColor(s string) error {
	ok := len(s) == 1+colorHexDigits && s[0] == '#'
	for i := 1; ok && i < len(s); i++ {
		c := s[i] | 0x20 // lower case
		ok = c >= '0' && c <= '9' || c >= 'a' && c <= 'f'
	}
	if !ok {
		return invalid("color: %q is not #rrggbb", s)
	}
	return nil
}

// Errors of the annotation store and service.
var (
	ErrNotFound = errors.New("no such annotation in this room")
	ErrTooMany  = errors.New("the room has too many annotations")
)

// AnnotationStore keeps annotations durably. Implementations live in
// store/...; every one must pass annotationstest.Run.
type AnnotationStore interface {
	// Put creates a (version 1, author = editor, created = updated) when
	// its ID is new; otherwise it replaces kind, coords, label and colour of
	// the live annotation with that ID in a.Room, records a.Editor* and
	// a.UpdatedAt, and adds 1 to the version, keeping author and creation
	// time. ErrNotFound if that ID is deleted or belongs to another room.
	// It returns the annotation as stored.
	Put(ctx context.Context, a Annotation) (Annotation, error)
	// Delete marks the annotation deleted (the row is kept for the record),
	// records who and when, adds 1 to the version and returns it.
	// ErrNotFound if it is not live in room.
	Delete(ctx context.Context, room, id string, by Author, at time.Time) (Annotation, error)
	// List returns the room's live annotations, oldest first.
	List(ctx context.Context, room string) ([]Annotation, error)
}

// Author is the member acting on an annotation.
type Author struct {
	ID   string
	Name string
	Role string
}
