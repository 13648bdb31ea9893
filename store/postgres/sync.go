package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"crisisroom/declarations"
)

// The declarations.Syncer reads: what instances of a cluster compare and
// reload to stay in step when the bus lost a message.
var _ declarations.Syncer = declStore{}

// Versions implements declarations.Syncer: one row per commune that has
// ever been declared, so a cheap read to run every few seconds.
func (d declStore) Versions(ctx context.Context) (map[string]int64, error) {
	rows, err := d.s.pool.Query(ctx, `SELECT commune, version FROM commune_versions`)
	if err != nil {
		return nil, err
	}
	return collectVersions(rows)
}

// CommuneCounts implements declarations.Syncer, from one snapshot like
// Counts, reading only the communes asked (through the commune index).
func (d declStore) CommuneCounts(ctx context.Context, communes []string) ([]declarations.Cell, map[string]int64, error) {
	tx, err := d.s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, nil, err
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, `SELECT commune, day, place, SUM(count) FROM declarations
		WHERE commune = ANY($1::text[]) GROUP BY commune, day, place`, communes)
	if err != nil {
		return nil, nil, err
	}
	cells, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (declarations.Cell, error) {
		var c declarations.Cell
		err := row.Scan(&c.Commune, &c.Date, &c.Place, &c.Count)
		return c, err
	})
	if err != nil {
		return nil, nil, err
	}
	rows, err = tx.Query(ctx, `SELECT commune, version FROM commune_versions WHERE commune = ANY($1::text[])`, communes)
	if err != nil {
		return nil, nil, err
	}
	versions, err := collectVersions(rows)
	if err != nil {
		return nil, nil, err
	}
	return cells, versions, tx.Commit(ctx)
}

func collectVersions(rows pgx.Rows) (map[string]int64, error) {
	versions := map[string]int64{}
	var c string
	var v int64
	_, err := pgx.ForEachRow(rows, []any{&c, &v}, func() error { versions[c] = v; return nil })
	return versions, err
}
