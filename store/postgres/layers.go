package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"crisisroom/layers"
)

// Layers returns the layers.Store view of s.
func (s *Store) Layers() layers.Store { return layerStore{s} }

type layerStore struct{ s *Store }

// Create implements layers.Store.
func (st layerStore) Create(ctx context.Context, l layers.Layer, geojson []byte) error {
	_, err := st.s.pool.Exec(ctx, `INSERT INTO map_layers(id, name, features, bytes, author, author_label, created_at, geojson)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, l.ID, l.Name, l.Features, l.Bytes, l.AuthorID, l.Author, ts(l.Created), geojson)
	return err
}

// List implements layers.Store; the GeoJSON itself is not read.
func (st layerStore) List(ctx context.Context) ([]layers.Layer, error) {
	rows, err := st.s.pool.Query(ctx, `SELECT id, name, features, bytes, author, author_label, created_at
		FROM map_layers ORDER BY created_at, id COLLATE "C"`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (layers.Layer, error) {
		var l layers.Layer
		err := row.Scan(&l.ID, &l.Name, &l.Features, &l.Bytes, &l.AuthorID, &l.Author, &l.Created)
		l.Created = l.Created.UTC()
		return l, err
	})
}

// GeoJSON implements layers.Store.
func (st layerStore) GeoJSON(ctx context.Context, id string) ([]byte, error) {
	var b []byte
	err := st.s.pool.QueryRow(ctx, `SELECT geojson FROM map_layers WHERE id = $1`, id).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, layers.ErrNotFound
	}
	return b, err
}

// Delete implements layers.Store.
func (st layerStore) Delete(ctx context.Context, id string) error {
	tag, err := st.s.pool.Exec(ctx, `DELETE FROM map_layers WHERE id = $1`, id)
	if err == nil && tag.RowsAffected() == 0 {
		return layers.ErrNotFound
	}
	return err
}
