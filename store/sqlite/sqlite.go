// Package sqlite is the embedded default store: one SQLite file under the
// data dir, through a pure-Go driver so the binary stays static (no cgo).
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"crisisroom/rooms"
)

// Store implements the stores of every domain package on one database.
type Store struct {
	db *sql.DB
}

// Open opens (creating if needed) the database file and migrates it.
func Open(ctx context.Context, path string) (*Store, error) {
	q := url.Values{}
	// WAL lets readers run beside the writer; synchronous=FULL makes a
	// commit durable before it returns, which the declaration intake's
	// "201 only once on disk" promise relies on.
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + filepath.ToSlash(path) + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := &Store{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// DB exposes the handle to other packages' store code in this module.
func (s *Store) DB() *sql.DB { return s.db }

// migrations are append-only: a shipped migration is never edited, a change
// is a new entry. Index+1 is the schema version.
var migrations = []string{
	`CREATE TABLE rooms (
		name TEXT PRIMARY KEY,
		title TEXT NOT NULL,
		created_at INTEGER NOT NULL
	);
	CREATE TABLE links (
		id TEXT PRIMARY KEY,
		hash BLOB NOT NULL UNIQUE,
		kind TEXT NOT NULL,
		scope TEXT NOT NULL,
		role TEXT NOT NULL,
		label TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL,
		revoked_at INTEGER NOT NULL DEFAULT 0
	);`,
	`CREATE TABLE declarations (
		id TEXT PRIMARY KEY,
		commune TEXT NOT NULL,
		day TEXT NOT NULL,
		place TEXT NOT NULL,
		count INTEGER NOT NULL,
		note TEXT NOT NULL,
		idem_key TEXT NOT NULL,
		declarant TEXT NOT NULL,
		declarant_label TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		revision INTEGER NOT NULL,
		UNIQUE (declarant, idem_key)
	);
	CREATE INDEX declarations_commune ON declarations(commune, created_at);
	CREATE TABLE declaration_revisions (
		declaration_id TEXT NOT NULL REFERENCES declarations(id),
		revision INTEGER NOT NULL,
		day TEXT NOT NULL,
		place TEXT NOT NULL,
		count INTEGER NOT NULL,
		note TEXT NOT NULL,
		reason TEXT NOT NULL,
		actor TEXT NOT NULL,
		actor_label TEXT NOT NULL,
		at INTEGER NOT NULL,
		PRIMARY KEY (declaration_id, revision)
	);
	CREATE TABLE commune_versions (
		commune TEXT PRIMARY KEY,
		version INTEGER NOT NULL
	);`,
}

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return err
	}
	if v > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this binary (%d): refusing to run an old binary on it", v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version(version) VALUES (?)`, i+1); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// CreateRoom implements rooms.Store.
func (s *Store) CreateRoom(ctx context.Context, r rooms.RoomInfo) (bool, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO rooms(name, title, created_at) VALUES (?, ?, ?) ON CONFLICT(name) DO NOTHING`,
		r.Name, r.Title, ms(r.CreatedAt))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Room implements rooms.Store.
func (s *Store) Room(ctx context.Context, name string) (rooms.RoomInfo, error) {
	var r rooms.RoomInfo
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT name, title, created_at FROM rooms WHERE name = ?`, name).Scan(&r.Name, &r.Title, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return r, rooms.ErrNotFound
	}
	r.CreatedAt = fromMS(created)
	return r, err
}

// Rooms implements rooms.Store.
func (s *Store) Rooms(ctx context.Context) ([]rooms.RoomInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, title, created_at FROM rooms ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []rooms.RoomInfo
	for rows.Next() {
		var r rooms.RoomInfo
		var created int64
		if err := rows.Scan(&r.Name, &r.Title, &created); err != nil {
			return nil, err
		}
		r.CreatedAt = fromMS(created)
		out = append(out, r)
	}
	return out, rows.Err()
}

// CreateLink implements rooms.Store.
func (s *Store) CreateLink(ctx context.Context, l rooms.Link) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO links(id, hash, kind, scope, role, label, created_at, expires_at, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		l.ID, l.Hash, l.Kind, l.Scope, l.Role, l.Label, ms(l.CreatedAt), ms(l.ExpiresAt), ms(l.RevokedAt))
	return err
}

// LinkByHash implements rooms.Store.
func (s *Store) LinkByHash(ctx context.Context, hash []byte) (rooms.Link, error) {
	var l rooms.Link
	var c, e, r int64
	err := s.db.QueryRowContext(ctx, `SELECT id, hash, kind, scope, role, label, created_at, expires_at, revoked_at
		FROM links WHERE hash = ?`, hash).Scan(&l.ID, &l.Hash, &l.Kind, &l.Scope, &l.Role, &l.Label, &c, &e, &r)
	if errors.Is(err, sql.ErrNoRows) {
		return l, rooms.ErrNotFound
	}
	l.CreatedAt, l.ExpiresAt, l.RevokedAt = fromMS(c), fromMS(e), fromMS(r)
	return l, err
}

// RevokeLink implements rooms.Store.
func (s *Store) RevokeLink(ctx context.Context, id string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE links SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, ms(at), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var one int
		if err := s.db.QueryRowContext(ctx, `SELECT 1 FROM links WHERE id = ?`, id).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return rooms.ErrNotFound
		}
	}
	return nil
}
