package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"crisisroom/layers"
)

// Layers returns the layers.Store view of s.
func (s *Store) Layers() layers.Store { return layerStore{s} }

type layerStore struct{ s *Store }

// Create implements layers.Store.
func (st layerStore) Create(ctx context.Context, l layers.Layer, geojson []byte) error {
	_, err := st.s.db.ExecContext(ctx, `INSERT INTO map_layers(id, name, features, bytes, author, author_label, created_at, geojson)
		VALUES (?,?,?,?,?,?,?,?)`, l.ID, l.Name, l.Features, l.Bytes, l.AuthorID, l.Author, ms(l.Created), geojson)
	return err
}

// List implements layers.Store; the GeoJSON itself is not read.
func (st layerStore) List(ctx context.Context) ([]layers.Layer, error) {
	rows, err := st.s.db.QueryContext(ctx, `SELECT id, name, features, bytes, author, author_label, created_at
		FROM map_layers ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []layers.Layer
	for rows.Next() {
		var l layers.Layer
		var created int64
		if err := rows.Scan(&l.ID, &l.Name, &l.Features, &l.Bytes, &l.AuthorID, &l.Author, &created); err != nil {
			return nil, err
		}
		l.Created = fromMS(created)
		out = append(out, l)
	}
	return out, rows.Err()
}

// GeoJSON implements layers.Store.
func (st layerStore) GeoJSON(ctx context.Context, id string) ([]byte, error) {
	var b []byte
	err := st.s.db.QueryRowContext(ctx, `SELECT geojson FROM map_layers WHERE id = ?`, id).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, layers.ErrNotFound
	}
	return b, err
}

// Delete implements layers.Store.
func (st layerStore) Delete(ctx context.Context, id string) error {
	res, err := st.s.db.ExecContext(ctx, `DELETE FROM map_layers WHERE id = ?`, id)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err == nil && n == 0 {
		return layers.ErrNotFound
	}
	return err
}
