package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"crisisroom/livemap"
)

// Annotations returns the livemap.AnnotationStore view of s.
func (s *Store) Annotations() livemap.AnnotationStore { return annotStore{s} }

type annotStore struct{ s *Store }

const annotCols = `id, room, kind, coords, label, color, author, author_name, editor, editor_name, created_at, updated_at, version`

func scanAnnot(row pgx.Row) (livemap.Annotation, error) {
	var a livemap.Annotation
	var coords []byte
	err := row.Scan(&a.ID, &a.Room, &a.Kind, &coords, &a.Label, &a.Color, &a.Author, &a.AuthorName,
		&a.Editor, &a.EditorName, &a.CreatedAt, &a.UpdatedAt, &a.Version)
	if err != nil {
		return a, err
	}
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	if err := json.Unmarshal(coords, &a.Coords); err != nil {
		return a, fmt.Errorf("annotation %s: coords: %w", a.ID, err)
	}
	return a, nil
}

// Put implements livemap.AnnotationStore in two single statements: create
// if the ID is new, else update the live one in the same room. Each is
// atomic on its own, so two instances putting the same new ID at once
// yield one create and one update, never an error.
func (st annotStore) Put(ctx context.Context, a livemap.Annotation) (livemap.Annotation, error) {
	coords, err := json.Marshal(a.Coords)
	if err != nil {
		return a, err
	}
	at := ts(a.UpdatedAt)
	got, err := scanAnnot(st.s.pool.QueryRow(ctx, `INSERT INTO annotations(`+annotCols+`)
		VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $7, $8, $9, $9, 1)
		ON CONFLICT (id) DO NOTHING RETURNING `+annotCols,
		a.ID, a.Room, a.Kind, string(coords), a.Label, a.Color, a.Editor, a.EditorName, at))
	if !errors.Is(err, pgx.ErrNoRows) {
		return got, err
	}
	got, err = scanAnnot(st.s.pool.QueryRow(ctx, `UPDATE annotations SET kind = $1, coords = $2::jsonb, label = $3,
			color = $4, editor = $5, editor_name = $6, updated_at = $7, version = version + 1
		WHERE id = $8 AND room = $9 AND deleted_at IS NULL RETURNING `+annotCols,
		a.Kind, string(coords), a.Label, a.Color, a.Editor, a.EditorName, at, a.ID, a.Room))
	if errors.Is(err, pgx.ErrNoRows) {
		return a, livemap.ErrNotFound // deleted, or another room's
	}
	return got, err
}

// Delete implements livemap.AnnotationStore.
func (st annotStore) Delete(ctx context.Context, room, id string, by livemap.Author, at time.Time) (livemap.Annotation, error) {
	got, err := scanAnnot(st.s.pool.QueryRow(ctx, `UPDATE annotations SET deleted_at = $1, updated_at = $1,
			editor = $2, editor_name = $3, version = version + 1
		WHERE id = $4 AND room = $5 AND deleted_at IS NULL RETURNING `+annotCols, ts(at), by.ID, by.Name, id, room))
	if errors.Is(err, pgx.ErrNoRows) {
		return got, livemap.ErrNotFound
	}
	return got, err
}

// List implements livemap.AnnotationStore.
func (st annotStore) List(ctx context.Context, room string) ([]livemap.Annotation, error) {
	rows, err := st.s.pool.Query(ctx, `SELECT `+annotCols+` FROM annotations
		WHERE room = $1 AND deleted_at IS NULL ORDER BY created_at, id COLLATE "C"`, room)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (livemap.Annotation, error) { return scanAnnot(r) })
}
