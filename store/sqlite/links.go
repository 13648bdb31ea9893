package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"crisisroom/rooms"
)

// linksMigration adds what guest links need: uses counted against a
// maximum, the lobby and watch-only flags, and who minted the link; and
// an index for a room's list.
const linksMigration = `ALTER TABLE links ADD COLUMN max_uses INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE links ADD COLUMN uses INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE links ADD COLUMN watch_only INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE links ADD COLUMN lobby INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE links ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
	CREATE INDEX links_scope ON links(scope, created_at);`

const linkCols = `id, hash, kind, scope, role, label, created_at, expires_at, revoked_at, max_uses, uses, watch_only, lobby, created_by`

type rowScanner interface{ Scan(dest ...any) error }

func scanLink(row rowScanner) (rooms.Link, error) {
	var l rooms.Link
	var c, e, r int64
	err := row.Scan(&l.ID, &l.Hash, &l.Kind, &l.Scope, &l.Role, &l.Label, &c, &e, &r, &l.MaxUses, &l.Uses, &l.WatchOnly, &l.Lobby, &l.CreatedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return l, rooms.ErrNotFound
	}
	l.CreatedAt, l.ExpiresAt, l.RevokedAt = fromMS(c), fromMS(e), fromMS(r)
	return l, err
}

// CreateLink implements rooms.Store.
func (s *Store) CreateLink(ctx context.Context, l rooms.Link) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO links(`+linkCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		l.ID, l.Hash, l.Kind, l.Scope, l.Role, l.Label, ms(l.CreatedAt), ms(l.ExpiresAt), ms(l.RevokedAt),
		l.MaxUses, l.Uses, l.WatchOnly, l.Lobby, l.CreatedBy)
	return err
}

// LinkByHash implements rooms.Store.
func (s *Store) LinkByHash(ctx context.Context, hash []byte) (rooms.Link, error) {
	return scanLink(s.stmts.linkByHash.QueryRowContext(ctx, hash))
}

// Links implements rooms.Store.
func (s *Store) Links(ctx context.Context, scope string) ([]rooms.Link, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+linkCols+` FROM links WHERE scope = ? ORDER BY created_at DESC, id`, scope)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []rooms.Link
	for rows.Next() {
		l, err := scanLink(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// UseLink implements rooms.Store: one UPDATE whose WHERE holds every
// condition, so that concurrent uses never count past max_uses (SQLite
// runs writers one at a time).
func (s *Store) UseLink(ctx context.Context, id string, now time.Time) (rooms.Link, error) {
	l, err := scanLink(s.db.QueryRowContext(ctx, `UPDATE links SET uses = uses + 1
		WHERE id = ? AND revoked_at = 0 AND expires_at > ? AND (max_uses = 0 OR uses < max_uses)
		RETURNING `+linkCols, id, ms(now)))
	if !errors.Is(err, rooms.ErrNotFound) {
		return l, err
	}
	// Nothing counted: say why.
	l, err = scanLink(s.db.QueryRowContext(ctx, `SELECT `+linkCols+` FROM links WHERE id = ?`, id))
	if err != nil {
		return l, err
	}
	if err := l.Live(now); err != nil {
		return l, err
	}
	return l, rooms.ErrLinkUsedUp // it changed between the two statements
}
