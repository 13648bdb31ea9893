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
	// wdb is the declarations' group committer's own connection. A
	// connection that sees another one write drops its page cache; one
	// that only sees its own writes keeps it warm across commits.
	wdb   *sql.DB
	stmts stmts
}

// stmts are the statements of the hot paths (every API request's token
// lookup, every declaration's insert), prepared once: the pure-Go SQLite
// spends more time parsing a statement than running it. database/sql keeps
// one prepared copy per pooled connection.
type stmts struct {
	linkByHash, declByKey *sql.Stmt

	// Multi-row statements for 1, 2, 4 … insertChunk declarations and
	// their communes' versions: a group commit of any size is a few of
	// these.
	insertDecls, bumpVersions [insertSizes]*sql.Stmt
	// insertRev stores one revision: an amendment's (a declaration's
	// first revision is its row itself, see insertRun).
	insertRev *sql.Stmt
	all       []*sql.Stmt // to close
}

// maxConns bounds the pool. WAL readers do not block each other, so a few
// connections serve any number of concurrent requests; keeping them all
// idle (instead of database/sql's default of 2) stops the churn of closing
// and reopening connections under load, each reopen re-running the pragmas
// and losing the prepared statements.
const maxConns = 8

// Open opens (creating if needed) the database file and migrates it.
func Open(ctx context.Context, path string) (*Store, error) {
	q := url.Values{}
	// WAL lets readers run beside the writer; synchronous=FULL makes a
	// commit durable before it returns, which the declaration intake's
	// "201 only once on disk" promise relies on.
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(1)", "temp_store(MEMORY)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + filepath.ToSlash(path) + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	s := &Store{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	if s.wdb, err = sql.Open("sqlite", dsn); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("prepare %s: %w", path, err)
	}
	return s, nil
}

func (s *Store) prepare(ctx context.Context) error {
	type todo struct {
		db   *sql.DB
		stmt **sql.Stmt
		sql  string
	}
	list := []todo{
		{s.db, &s.stmts.linkByHash, `SELECT ` + linkCols + ` FROM links WHERE hash = ?`},
		{s.wdb, &s.stmts.declByKey, `SELECT ` + declCols + ` FROM declarations WHERE declarant = ? AND idem_key = ?`},
		{s.wdb, &s.stmts.insertRev, insertRevsSQL(1)},
	}
	for k := range insertSizes {
		list = append(list, todo{s.wdb, &s.stmts.insertDecls[k], insertDeclsSQL(1 << k)},
			todo{s.wdb, &s.stmts.bumpVersions[k], bumpVersionsSQL(1 << k)})
	}
	for _, p := range list {
		st, err := p.db.PrepareContext(ctx, p.sql)
		if err != nil {
			return err
		}
		*p.stmt = st
		s.stmts.all = append(s.stmts.all, st)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	for _, st := range s.stmts.all {
		st.Close()
	}
	var werr error
	if s.wdb != nil {
		werr = s.wdb.Close()
	}
	return errors.Join(s.db.Close(), werr)
}

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
	// Live map: annotations are soft-deleted (deleted_at) for the record;
	// operator layers keep their GeoJSON as uploaded (compacted).
	`CREATE TABLE annotations (
		id TEXT PRIMARY KEY,
		room TEXT NOT NULL,
		kind TEXT NOT NULL,
		coords TEXT NOT NULL,
		label TEXT NOT NULL,
		color TEXT NOT NULL,
		author TEXT NOT NULL,
		author_name TEXT NOT NULL,
		editor TEXT NOT NULL,
		editor_name TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL,
		version INTEGER NOT NULL,
		deleted_at INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX annotations_room ON annotations(room, deleted_at, created_at);
	CREATE TABLE map_layers (
		id TEXT PRIMARY KEY,
		name TEXT NOT NULL,
		features INTEGER NOT NULL,
		bytes INTEGER NOT NULL,
		author TEXT NOT NULL,
		author_label TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		geojson BLOB NOT NULL
	);`,
	// Main courante (mainlog.go).
	mainlogMigration,
	// Guest links: uses, lobby, watch-only (links.go).
	linksMigration,
	// Staff accounts, sessions, API tokens, access audit log (access.go).
	accessMigration,
	// A commune's declarations through an index that grows at its end
	// (declarations.go).
	declarationsByTimeMigration,
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
