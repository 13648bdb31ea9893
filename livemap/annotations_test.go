package livemap_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"crisisroom/livemap"
	"crisisroom/protocol"
	"crisisroom/rooms"
	"crisisroom/store/sqlite"
)

func TestAnnotationValidate(t *testing.T) {
	ok := livemap.Annotation{Kind: livemap.KindLine, Coords: [][2]float64{{47.7, -2.8}, {47.8, -2.7}}, Label: "itinéraire d'évacuation", Color: "#FF7f0e"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid line refused: %v", err)
	}
	square := make([][2]float64, 1_000_000)
	cases := []struct {
		name     string
		mod      func(a *livemap.Annotation)
		tooLarge bool
		want     string
	}{
		{"unknown kind", func(a *livemap.Annotation) { a.Kind = "circle" }, false, `kind: "circle"`},
		{"marker with two points", func(a *livemap.Annotation) { a.Kind = livemap.KindMarker }, false, "exactly 1 point, got 2"},
		{"line with one point", func(a *livemap.Annotation) { a.Coords = a.Coords[:1] }, false, "at least 2 points, got 1"},
		{"polygon with two points", func(a *livemap.Annotation) { a.Kind = livemap.KindPolygon }, false, "at least 3 points, got 2"},
		{"a million points", func(a *livemap.Annotation) { a.Kind, a.Coords = livemap.KindPolygon, square }, true, "1000000 points, at most 5000"},
		{"5001 points", func(a *livemap.Annotation) { a.Coords = square[:5001] }, true, "5001 points, at most 5000"},
		{"latitude out of range", func(a *livemap.Annotation) { a.Coords[1] = [2]float64{91, 0} }, false, "coords[1]: latitude 91"},
		{"longitude out of range", func(a *livemap.Annotation) { a.Coords[0] = [2]float64{0, -180.5} }, false, "coords[0]: longitude -180.5"},
		{"NaN", func(a *livemap.Annotation) { a.Coords[0] = [2]float64{math.NaN(), 0} }, false, "coords[0]: not a finite number"},
		{"infinity", func(a *livemap.Annotation) { a.Coords[1] = [2]float64{0, math.Inf(1)} }, false, "coords[1]: not a finite number"},
		{"empty label", func(a *livemap.Annotation) { a.Label = "" }, false, "label: 1 to 200"},
		{"long label", func(a *livemap.Annotation) { a.Label = strings.Repeat("é", 201) }, false, "got 201"},
		{"control in label", func(a *livemap.Annotation) { a.Label = "a\nb" }, false, "control characters"},
		{"colour name", func(a *livemap.Annotation) { a.Color = "red" }, false, `color: "red" is not #rrggbb`},
		{"short colour", func(a *livemap.Annotation) { a.Color = "#fff" }, false, "is not #rrggbb"},
		{"colour not hex", func(a *livemap.Annotation) { a.Color = "#12345g" }, false, "is not #rrggbb"},
	}
	for _, c := range cases {
		a := ok
		a.Coords = append([][2]float64(nil), ok.Coords...)
		c.mod(&a)
		err := a.Validate()
		var ve *livemap.ValidationError
		if !errors.As(err, &ve) || ve.TooLarge != c.tooLarge || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v (too large %v), want %q", c.name, err, ve != nil && ve.TooLarge, c.want)
		}
	}
	long := ok
	long.Label = strings.Repeat("é", 200)
	if err := long.Validate(); err != nil {
		t.Fatalf("200-character label refused: %v", err)
	}
}

// recorder is a Subscriber that keeps what it is sent.
type recorder struct {
	mu     sync.Mutex
	frames []protocol.Envelope
}

func (r *recorder) Send(f rooms.Frame) {
	var env protocol.Envelope
	if err := json.Unmarshal(f.Data, &env); err != nil {
		panic(err)
	}
	r.mu.Lock()
	r.frames = append(r.frames, env)
	r.mu.Unlock()
}

func (r *recorder) take() []protocol.Envelope {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.frames
	r.frames = nil
	return out
}

func openStore(t *testing.T) *sqlite.Store {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestAnnotationsFanOutAndCaps(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	svc := livemap.NewAnnotations(st.Annotations(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	w1, w2, w3, author := &recorder{}, &recorder{}, &recorder{}, &recorder{}
	for w, room := range map[*recorder]string{w1: "main", w2: "main", w3: "other"} {
		if err := svc.Watch(ctx, room, w); err != nil {
			t.Fatal(err)
		}
		if f := w.take(); len(f) != 1 || f[0].Type != livemap.TypeAnnotations {
			t.Fatalf("watch sent %v", f)
		}
	}
	host := livemap.Author{ID: "m1", Name: "Préfète", Role: rooms.RoleHost}
	mk := func(n int) livemap.Annotation {
		a := livemap.Annotation{Kind: livemap.KindPolygon, Label: "zone", Color: "#ABCDEF"}
		for i := range n {
			a.Coords = append(a.Coords, [2]float64{47 + float64(i)/1e4, -2})
		}
		return a
	}
	got, err := svc.Apply(ctx, livemap.Change{Room: "main", By: host, Op: protocol.OpCreate, Item: mk(3)}, w1, "r1")
	if err != nil || got.ID == "" || got.Version != 1 || got.Color != "#abcdef" || got.Author != "m1" || got.Room != "main" {
		t.Fatalf("create = %+v, %v", got, err)
	}
	if f := w1.take(); len(f) != 1 || f[0].Type != livemap.TypeAnnotation || f[0].ID != "r1" {
		t.Fatalf("origin got %v", f)
	}
	if f := w2.take(); len(f) != 1 || f[0].ID != "" || !strings.Contains(string(f[0].Data), got.ID) {
		t.Fatalf("other watcher got %v", f)
	}
	if f := w3.take(); len(f) != 0 {
		t.Fatalf("another room's watcher got %v", f)
	}
	// Refusals change nothing and tell nobody.
	_, err = svc.Apply(ctx, livemap.Change{Room: "main", By: host, Op: protocol.OpCreate, Item: mk(2)}, author, "r2")
	if ve := (*livemap.ValidationError)(nil); !errors.As(err, &ve) {
		t.Fatalf("polygon of 2 points: %v", err)
	}
	_, err = svc.Apply(ctx, livemap.Change{Room: "other", By: host, Op: protocol.OpUpdate, Item: got}, author, "r3")
	if !errors.Is(err, livemap.ErrNotFound) {
		t.Fatalf("update from another room: %v", err)
	}
	// The room's points are capped as a whole: 20 shapes of 5,000 fill it.
	for i := 1; i < livemap.MaxRoomPoints/livemap.MaxPoints; i++ {
		if _, err := svc.Apply(ctx, livemap.Change{Room: "main", By: host, Op: protocol.OpCreate, Item: mk(livemap.MaxPoints)}, author, ""); err != nil {
			t.Fatalf("shape %d: %v", i, err)
		}
	}
	_, err = svc.Apply(ctx, livemap.Change{Room: "main", By: host, Op: protocol.OpCreate, Item: mk(livemap.MaxPoints)}, author, "")
	if !errors.Is(err, livemap.ErrTooMany) || !strings.Contains(err.Error(), "at most 100000") {
		t.Fatalf("over the room's points: %v", err)
	}
	// Deleting frees room; the deleted one is gone from a fresh service
	// (as after a restart), the others are there.
	if _, err := svc.Apply(ctx, livemap.Change{Room: "main", By: host, Op: protocol.OpDelete, Item: livemap.Annotation{ID: got.ID}}, author, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Apply(ctx, livemap.Change{Room: "main", By: host, Op: protocol.OpCreate, Item: mk(3)}, author, ""); err != nil {
		t.Fatalf("create after delete: %v", err)
	}
	if n := len(w2.take()); n != 21 {
		t.Fatalf("watcher saw %d changes, want 21", n)
	}
	fresh := livemap.NewAnnotations(st.Annotations(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	list, err := fresh.List(ctx, "main")
	if err != nil || len(list) != 20 || list[0].ID == got.ID {
		t.Fatalf("fresh list has %d items, %v", len(list), err)
	}
	svc.Unwatch(w2)
	if _, err := svc.Apply(ctx, livemap.Change{Room: "main", By: host, Op: protocol.OpDelete, Item: list[0]}, author, ""); err != nil {
		t.Fatal(err)
	}
	if f := w2.take(); len(f) != 0 {
		t.Fatalf("unwatched subscriber got %v", f)
	}
}
