package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"crisisroom/livemap"
	"crisisroom/livemap/annotationstest"
)

func TestAnnotationsConformance(t *testing.T) {
	annotationstest.Run(t, func(t *testing.T) livemap.AnnotationStore { return open(t).Annotations() })
}

// TestAnnotationsSurviveReopen: what was stored, and what was deleted, is
// still so after closing and reopening the file.
func TestAnnotationsSurviveReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	for _, id := range []string{"keep", "drop"} {
		if _, err := s.Annotations().Put(ctx, livemap.Annotation{ID: id, Room: "main", Kind: livemap.KindMarker,
			Coords: [][2]float64{{47.66, -2.76}}, Label: "PC sécurité", Color: "#2ca02c", Editor: "m1", EditorName: "COD", UpdatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Annotations().Delete(ctx, "main", "drop", livemap.Author{ID: "m1", Name: "COD"}, at); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	list, err := s.Annotations().List(ctx, "main")
	if err != nil || len(list) != 1 || list[0].ID != "keep" || list[0].Label != "PC sécurité" {
		t.Fatalf("after reopen: %+v, %v", list, err)
	}
	var deletedAt int64
	if err := s.db.QueryRowContext(ctx, `SELECT deleted_at FROM annotations WHERE id = 'drop'`).Scan(&deletedAt); err != nil || deletedAt != at.UnixMilli() {
		t.Fatalf("deleted row kept for the record: deleted_at %d, %v", deletedAt, err)
	}
}
