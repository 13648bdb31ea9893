// Package annotationstest is the conformance suite every
// livemap.AnnotationStore must pass.
package annotationstest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"crisisroom/livemap"
)

// Run runs the suite; newStore returns a fresh, empty store per subtest.
func Run(t *testing.T, newStore func(t *testing.T) livemap.AnnotationStore) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	zone := func(id, room string) livemap.Annotation {
		return livemap.Annotation{ID: id, Room: room, Kind: livemap.KindPolygon,
			Coords: [][2]float64{{47.75, -2.9}, {47.76, -2.9}, {47.76, -2.88}}, Label: "zone confinée", Color: "#d62728",
			Editor: "m1", EditorName: "Préfecture", UpdatedAt: t0}
	}
	mustPut := func(t *testing.T, st livemap.AnnotationStore, a livemap.Annotation) livemap.Annotation {
		t.Helper()
		got, err := st.Put(ctx, a)
		if err != nil {
			t.Fatalf("put %s: %v", a.ID, err)
		}
		return got
	}

	t.Run("CreateStampsAuthorAndVersion", func(t *testing.T) {
		st := newStore(t)
		got := mustPut(t, st, zone("a1", "main"))
		want := zone("a1", "main")
		want.Author, want.AuthorName, want.CreatedAt, want.Version = "m1", "Préfecture", t0, 1
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("put returned\n%+v\nwant\n%+v", got, want)
		}
		list, err := st.List(ctx, "main")
		if err != nil || len(list) != 1 || !reflect.DeepEqual(list[0], want) {
			t.Fatalf("list = %+v, %v", list, err)
		}
		if other, err := st.List(ctx, "other"); err != nil || len(other) != 0 {
			t.Fatalf("other room lists %+v, %v", other, err)
		}
	})

	t.Run("UpdateKeepsAuthorBumpsVersion", func(t *testing.T) {
		st := newStore(t)
		mustPut(t, st, zone("a1", "main"))
		up := livemap.Annotation{ID: "a1", Room: "main", Kind: livemap.KindMarker, Coords: [][2]float64{{47.7, -2.7}},
			Label: "centre d'hébergement", Color: "#1f77b4", Editor: "m2", EditorName: "SDIS", UpdatedAt: t0.Add(time.Minute),
			Author: "forged", CreatedAt: t0.Add(time.Hour), Version: 99}
		got := mustPut(t, st, up)
		want := up
		want.Author, want.AuthorName, want.CreatedAt, want.Version = "m1", "Préfecture", t0, 2
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("update returned\n%+v\nwant\n%+v", got, want)
		}
		list, _ := st.List(ctx, "main")
		if len(list) != 1 || !reflect.DeepEqual(list[0], want) {
			t.Fatalf("list after update = %+v", list)
		}
	})

	t.Run("UpdateInAnotherRoomIsNotFound", func(t *testing.T) {
		st := newStore(t)
		mustPut(t, st, zone("a1", "main"))
		if _, err := st.Put(ctx, zone("a1", "other")); !errors.Is(err, livemap.ErrNotFound) {
			t.Fatalf("put across rooms: %v, want ErrNotFound", err)
		}
		list, _ := st.List(ctx, "main")
		if len(list) != 1 || list[0].Version != 1 || list[0].Room != "main" {
			t.Fatalf("list = %+v", list)
		}
	})

	t.Run("DeleteIsSoftAndFinal", func(t *testing.T) {
		st := newStore(t)
		mustPut(t, st, zone("a1", "main"))
		mustPut(t, st, zone("a2", "main"))
		by := livemap.Author{ID: "m3", Name: "ARS", Role: "participant"}
		at := t0.Add(2 * time.Minute)
		got, err := st.Delete(ctx, "main", "a1", by, at)
		if err != nil || got.ID != "a1" || got.Version != 2 || got.Editor != "m3" || got.EditorName != "ARS" ||
			!got.UpdatedAt.Equal(at) || got.Author != "m1" || got.Label != "zone confinée" {
			t.Fatalf("delete = %+v, %v", got, err)
		}
		list, _ := st.List(ctx, "main")
		if len(list) != 1 || list[0].ID != "a2" {
			t.Fatalf("list after delete = %+v", list)
		}
		if _, err := st.Delete(ctx, "main", "a1", by, at); !errors.Is(err, livemap.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		if _, err := st.Delete(ctx, "other", "a2", by, at); !errors.Is(err, livemap.ErrNotFound) {
			t.Fatalf("delete across rooms: %v", err)
		}
		if _, err := st.Delete(ctx, "main", "nope", by, at); !errors.Is(err, livemap.ErrNotFound) {
			t.Fatalf("delete unknown: %v", err)
		}
		// A deleted ID stays taken: it cannot come back to life by a put.
		if _, err := st.Put(ctx, zone("a1", "main")); !errors.Is(err, livemap.ErrNotFound) {
			t.Fatalf("put on a deleted id: %v", err)
		}
	})

	t.Run("ListIsOldestFirstWithExactCoords", func(t *testing.T) {
		st := newStore(t)
		for i, id := range []string{"c", "a", "b"} {
			a := zone(id, "main")
			a.UpdatedAt = t0.Add(time.Duration(i) * time.Second)
			a.Coords = append(a.Coords, [2]float64{-89.123456789012, 179.98765432101})
			mustPut(t, st, a)
		}
		list, err := st.List(ctx, "main")
		if err != nil || len(list) != 3 || list[0].ID != "c" || list[1].ID != "a" || list[2].ID != "b" {
			t.Fatalf("list order = %+v, %v", list, err)
		}
		if p := list[2].Coords[3]; p != [2]float64{-89.123456789012, 179.98765432101} {
			t.Fatalf("coords came back as %v", p)
		}
	})
}
