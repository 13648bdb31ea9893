package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"crisisroom/livemap"
)

// Annotations returns the livemap.AnnotationStore view of s.
func (s *Store) Annotations() livemap.AnnotationStore { return annotStore{s} }

type annotStore struct{ s *Store }

const annotCols = `id, room, kind, coords, label, color, author, author_name, editor, editor_name, created_at, updated_at, version`

func scanAnnot(row interface{ Scan(...any) error }) (livemap.Annotation, error) {
	var a livemap.Annotation
	var coords string
	var created, updated int64
	err := row.Scan(&a.ID, &a.Room, &a.Kind, &coords, &a.Label, &a.Color, &a.Author, &a.AuthorName,
		&a.Editor, &a.EditorName, &created, &updated, &a.Version)
	if err != nil {
		return a, err
	}
	a.CreatedAt, a.UpdatedAt = fromMS(created), fromMS(updated)
	if err := json.Unmarshal([]byte(coords), &a.Coords); err != nil {
		return a, fmt.Errorf("annotation %s: coords: %w", a.ID, err)
	}
	return a, nil
}

// Put implements livemap.AnnotationStore in one transaction.
func (st annotStore) Put(ctx context.Context, a livemap.Annotation) (livemap.Annotation, error) {
	coords, err := json.Marshal(a.Coords)
	if err != nil {
		return a, err
	}
	tx, err := st.s.db.BeginTx(ctx, nil)
	if err != nil {
		return a, err
	}
	defer tx.Rollback()
	var room string
	var deleted int64
	err = tx.QueryRowContext(ctx, `SELECT room, deleted_at FROM annotations WHERE id = ?`, a.ID).Scan(&room, &deleted)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = tx.ExecContext(ctx, `INSERT INTO annotations(`+annotCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,1)`,
			a.ID, a.Room, a.Kind, string(coords), a.Label, a.Color, a.Editor, a.EditorName, a.Editor, a.EditorName,
			ms(a.UpdatedAt), ms(a.UpdatedAt))
	case err != nil:
	case room != a.Room || deleted != 0:
		return a, livemap.ErrNotFound
	default:
		_, err = tx.ExecContext(ctx, `UPDATE annotations SET kind = ?, coords = ?, label = ?, color = ?, editor = ?,
			editor_name = ?, updated_at = ?, version = version + 1 WHERE id = ?`,
			a.Kind, string(coords), a.Label, a.Color, a.Editor, a.EditorName, ms(a.UpdatedAt), a.ID)
	}
	if err != nil {
		return a, err
	}
	got, err := scanAnnot(tx.QueryRowContext(ctx, `SELECT `+annotCols+` FROM annotations WHERE id = ?`, a.ID))
	if err != nil {
		return a, err
	}
	return got, tx.Commit()
}

// Delete implements livemap.AnnotationStore.
func (st annotStore) Delete(ctx context.Context, room, id string, by livemap.Author, at time.Time) (livemap.Annotation, error) {
	got, err := scanAnnot(st.s.db.QueryRowContext(ctx, `UPDATE annotations SET deleted_at = ?1, updated_at = ?1,
		editor = ?2, editor_name = ?3, version = version + 1
		WHERE id = ?4 AND room = ?5 AND deleted_at = 0 RETURNING `+annotCols, ms(at), by.ID, by.Name, id, room))
	if errors.Is(err, sql.ErrNoRows) {
		return got, livemap.ErrNotFound
	}
	return got, err
}

// List implements livemap.AnnotationStore.
func (st annotStore) List(ctx context.Context, room string) ([]livemap.Annotation, error) {
	rows, err := st.s.db.QueryContext(ctx, `SELECT `+annotCols+` FROM annotations
		WHERE room = ? AND deleted_at = 0 ORDER BY created_at, id`, room)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []livemap.Annotation
	for rows.Next() {
		a, err := scanAnnot(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
