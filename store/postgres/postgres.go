// Package postgres is the cluster-mode store: the same stores as
// store/sqlite on PostgreSQL, shared by every instance, through pgx v5 and
// its pool (the maintained native driver: binary protocol, statement
// cache, real PostgreSQL error codes, context cancellation).
//
// Times are TIMESTAMPTZ kept to the millisecond, like the SQLite store's
// integer milliseconds, so both back ends return the same values; "never"
// (not revoked, not deleted) is NULL where SQLite stores 0.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"crisisroom/rooms"
)

// Store implements the stores of every domain package on one database.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects to url (postgres://user:password@host:port/db?…), checks
// the server answers and migrates the schema. A schema newer than this
// binary is refused.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		// A request must not hang on a black-holed database: it gets a
		// 503 instead (the caller's context bounds it too).
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	reset := &resetOnDeadConn{}
	cfg.ConnConfig.Tracer = reset
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	reset.pool.Store(pool)
	s := &Store{pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database %s: %w", cfg.ConnConfig.Host, err)
	}
	return s, nil
}

// Close closes the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Ping implements rooms.Store (and /readyz).
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// resetOnDeadConn empties the pool when a statement finds its connection
// dead. After a database restart every idle connection is dead, and the
// pool only checks those idle for over a second before handing them out:
// without this, each would fail one request in turn; with it, only the
// requests in flight at the restart fail.
type resetOnDeadConn struct{ pool atomic.Pointer[pgxpool.Pool] }

func (r *resetOnDeadConn) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (r *resetOnDeadConn) TraceQueryEnd(ctx context.Context, conn *pgx.Conn, d pgx.TraceQueryEndData) {
	// A cancelled context closes its connection too: that one is not dead.
	if d.Err == nil || !conn.IsClosed() || ctx.Err() != nil ||
		errors.Is(d.Err, context.Canceled) || errors.Is(d.Err, context.DeadlineExceeded) {
		return
	}
	if p := r.pool.Load(); p != nil {
		p.Reset()
	}
}

// migrationLock is the advisory lock key under which instances starting
// together migrate one after the other.
const migrationLock = 0x6372_6973_6973 // "crisis"

// migrations are append-only; index+1 is the schema version, with the same
// meaning as store/sqlite's (a database of version N has the same tables).
var migrations = []string{
	`CREATE TABLE rooms (
		name TEXT PRIMARY KEY,
		title TEXT NOT NULL,
		created_at TIMESTAMPTZ NOT NULL
	);
	CREATE TABLE links (
		id TEXT PRIMARY KEY,
		hash BYTEA NOT NULL UNIQUE,
		kind TEXT NOT NULL,
		scope TEXT NOT NULL,
		role TEXT NOT NULL,
		label TEXT NOT NULL,
		created_at TIMESTAMPTZ NOT NULL,
		expires_at TIMESTAMPTZ NOT NULL,
		revoked_at TIMESTAMPTZ
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
		created_at TIMESTAMPTZ NOT NULL,
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
		at TIMESTAMPTZ NOT NULL,
		PRIMARY KEY (declaration_id, revision)
	);
	CREATE TABLE commune_versions (
		commune TEXT PRIMARY KEY,
		version BIGINT NOT NULL
	);`,
	`CREATE TABLE annotations (
		id TEXT PRIMARY KEY,
		room TEXT NOT NULL,
		kind TEXT NOT NULL,
		coords JSONB NOT NULL,
		label TEXT NOT NULL,
		color TEXT NOT NULL,
		author TEXT NOT NULL,
		author_name TEXT NOT NULL,
		editor TEXT NOT NULL,
		editor_name TEXT NOT NULL,
		created_at TIMESTAMPTZ NOT NULL,
		updated_at TIMESTAMPTZ NOT NULL,
		version BIGINT NOT NULL,
		deleted_at TIMESTAMPTZ
	);
	CREATE INDEX annotations_room ON annotations(room, created_at) WHERE deleted_at IS NULL;
	CREATE TABLE map_layers (
		id TEXT PRIMARY KEY,
		name TEXT NOT NULL,
		features INTEGER NOT NULL,
		bytes BIGINT NOT NULL,
		author TEXT NOT NULL,
		author_label TEXT NOT NULL,
		created_at TIMESTAMPTZ NOT NULL,
		geojson BYTEA NOT NULL
	);`,
	// Main courante (mainlog.go).
	mainlogMigration,
	// Guest links: uses, lobby, watch-only (links.go).
	linksMigration,
	// Staff accounts, sessions, API tokens, access audit log (access.go).
	accessMigration,
}

// SchemaVersion is the schema this binary writes.
func SchemaVersion() int { return len(migrations) }

// migrate brings the schema to SchemaVersion in one transaction (DDL is
// transactional in PostgreSQL: a failed migration leaves nothing half done).
func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return err
	}
	var v int
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return err
	}
	if v > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this binary (%d): refusing to run an old binary on it", v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		if _, err := tx.Exec(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_version(version) VALUES ($1)`, i+1); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// ts is how a time is stored: UTC, to the millisecond (as SQLite keeps it).
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// nullTS stores the zero time ("never") as NULL.
func nullTS(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	v := ts(t)
	return &v
}

// fromNull reads a nullable time back, NULL as the zero time.
func fromNull(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// CreateRoom implements rooms.Store.
func (s *Store) CreateRoom(ctx context.Context, r rooms.RoomInfo) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO rooms(name, title, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`,
		r.Name, r.Title, ts(r.CreatedAt))
	return tag.RowsAffected() == 1, err
}

// Room implements rooms.Store.
func (s *Store) Room(ctx context.Context, name string) (rooms.RoomInfo, error) {
	var r rooms.RoomInfo
	err := s.pool.QueryRow(ctx, `SELECT name, title, created_at FROM rooms WHERE name = $1`, name).Scan(&r.Name, &r.Title, &r.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, rooms.ErrNotFound
	}
	r.CreatedAt = r.CreatedAt.UTC()
	return r, err
}

// Rooms implements rooms.Store.
func (s *Store) Rooms(ctx context.Context) ([]rooms.RoomInfo, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, title, created_at FROM rooms ORDER BY name COLLATE "C"`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (rooms.RoomInfo, error) {
		var r rooms.RoomInfo
		err := row.Scan(&r.Name, &r.Title, &r.CreatedAt)
		r.CreatedAt = r.CreatedAt.UTC()
		return r, err
	})
}

// RevokeLink implements rooms.Store; revoking twice keeps the first time.
func (s *Store) RevokeLink(ctx context.Context, id string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE links SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`, ts(at), id)
	if err != nil || tag.RowsAffected() == 1 {
		return err
	}
	var one int
	err = s.pool.QueryRow(ctx, `SELECT 1 FROM links WHERE id = $1`, id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return rooms.ErrNotFound
	}
	return err
}

// retryable tells a transaction worth running again from PostgreSQL's
// answer: it aborted it to break a deadlock or a serialization conflict
// with another instance (40P01, 40001), or the connection was cut by a
// shutdown or restart (class 57P0x, and class 08: connection exception).
func retryable(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	return pe.Code == "40P01" || pe.Code == "40001" || strings.HasPrefix(pe.Code, "57P0") || strings.HasPrefix(pe.Code, "08")
}

// isServerError tells an error PostgreSQL answered (a constraint, a bad
// statement…: running again gives the same) from a connection failure.
func isServerError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe)
}
