package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"crisisroom/rooms"
)

// linksMigration adds what guest links need (store/sqlite's twin).
const linksMigration = `ALTER TABLE links
		ADD COLUMN max_uses INTEGER NOT NULL DEFAULT 0,
		ADD COLUMN uses INTEGER NOT NULL DEFAULT 0,
		ADD COLUMN watch_only BOOLEAN NOT NULL DEFAULT FALSE,
		ADD COLUMN lobby BOOLEAN NOT NULL DEFAULT FALSE,
		ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
	CREATE INDEX links_scope ON links(scope, created_at);`

const linkCols = `id, hash, kind, scope, role, label, created_at, expires_at, revoked_at, max_uses, uses, watch_only, lobby, created_by`

func scanLink(row pgx.Row) (rooms.Link, error) {
	var l rooms.Link
	var revoked *time.Time
	err := row.Scan(&l.ID, &l.Hash, &l.Kind, &l.Scope, &l.Role, &l.Label, &l.CreatedAt, &l.ExpiresAt, &revoked,
		&l.MaxUses, &l.Uses, &l.WatchOnly, &l.Lobby, &l.CreatedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return l, rooms.ErrNotFound
	}
	l.CreatedAt, l.ExpiresAt, l.RevokedAt = l.CreatedAt.UTC(), l.ExpiresAt.UTC(), fromNull(revoked)
	return l, err
}

// CreateLink implements rooms.Store.
func (s *Store) CreateLink(ctx context.Context, l rooms.Link) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO links(`+linkCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		l.ID, l.Hash, l.Kind, l.Scope, l.Role, l.Label, ts(l.CreatedAt), ts(l.ExpiresAt), nullTS(l.RevokedAt),
		l.MaxUses, l.Uses, l.WatchOnly, l.Lobby, l.CreatedBy)
	return err
}

// LinkByHash implements rooms.Store.
func (s *Store) LinkByHash(ctx context.Context, hash []byte) (rooms.Link, error) {
	return scanLink(s.pool.QueryRow(ctx, `SELECT `+linkCols+` FROM links WHERE hash = $1`, hash))
}

// Links implements rooms.Store.
func (s *Store) Links(ctx context.Context, scope string) ([]rooms.Link, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+linkCols+` FROM links WHERE scope = $1 ORDER BY created_at DESC, id COLLATE "C"`, scope)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (rooms.Link, error) { return scanLink(row) })
}

// UseLink implements rooms.Store: one UPDATE whose WHERE holds every
// condition. Concurrent ones queue on the row's lock and re-check the
// condition on the row as the previous one left it (READ COMMITTED), so
// uses never count past max_uses.
func (s *Store) UseLink(ctx context.Context, id string, now time.Time) (rooms.Link, error) {
	l, err := scanLink(s.pool.QueryRow(ctx, `UPDATE links SET uses = uses + 1
		WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2 AND (max_uses = 0 OR uses < max_uses)
		RETURNING `+linkCols, id, ts(now)))
	if !errors.Is(err, rooms.ErrNotFound) {
		return l, err
	}
	// Nothing counted: say why.
	l, err = scanLink(s.pool.QueryRow(ctx, `SELECT `+linkCols+` FROM links WHERE id = $1`, id))
	if err != nil {
		return l, err
	}
	if err := l.Live(now); err != nil {
		return l, err
	}
	return l, rooms.ErrLinkUsedUp // it changed between the two statements
}
