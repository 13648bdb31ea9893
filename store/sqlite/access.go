package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"crisisroom/access"
)

// Access returns the access.Store view of s.
func (s *Store) Access() access.Store { return accessStore{s} }

type accessStore struct{ s *Store }

// accessMigration: staff accounts, their memberships, sessions, API tokens
// and the access audit log. Sessions and tokens keep only the SHA-256 of
// their secret. The audit log refuses UPDATE and DELETE in the database
// itself, like the main courante.
const accessMigration = `CREATE TABLE users (
		id TEXT PRIMARY KEY,
		login TEXT NOT NULL UNIQUE,
		name TEXT NOT NULL,
		admin INTEGER NOT NULL,
		password_hash TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		disabled_at INTEGER NOT NULL DEFAULT 0
	);
	CREATE TABLE memberships (
		user_id TEXT NOT NULL REFERENCES users(id),
		event TEXT NOT NULL,
		role TEXT NOT NULL,
		PRIMARY KEY (user_id, event)
	);
	CREATE INDEX memberships_event ON memberships(event, user_id);
	CREATE TABLE sessions (
		hash BLOB PRIMARY KEY,
		user_id TEXT NOT NULL REFERENCES users(id),
		csrf TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL,
		ip TEXT NOT NULL,
		user_agent TEXT NOT NULL
	);
	CREATE INDEX sessions_user ON sessions(user_id);
	CREATE INDEX sessions_expires ON sessions(expires_at);
	CREATE TABLE api_tokens (
		id TEXT PRIMARY KEY,
		hash BLOB NOT NULL UNIQUE,
		user_id TEXT NOT NULL REFERENCES users(id),
		role TEXT NOT NULL,
		event TEXT NOT NULL,
		label TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL,
		revoked_at INTEGER NOT NULL DEFAULT 0
	);
	CREATE TABLE audit_log (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		at INTEGER NOT NULL,
		actor TEXT NOT NULL,
		action TEXT NOT NULL,
		target TEXT NOT NULL,
		ip TEXT NOT NULL,
		detail TEXT NOT NULL
	);
	CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'the access audit log is append-only'); END;
	CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'the access audit log is append-only'); END;`

const userCols = `id, login, name, admin, password_hash, created_at, disabled_at`

func scanUser(row interface{ Scan(...any) error }) (access.User, error) {
	var u access.User
	var created, disabled int64
	err := row.Scan(&u.ID, &u.Login, &u.Name, &u.Admin, &u.PasswordHash, &created, &disabled)
	u.CreatedAt, u.DisabledAt = fromMS(created), fromMS(disabled)
	return u, err
}

// CreateUser implements access.Store. ON CONFLICT DO NOTHING covers both
// the ID and the login: nothing inserted means one is taken.
func (st accessStore) CreateUser(ctx context.Context, u access.User) error {
	res, err := st.s.db.ExecContext(ctx, `INSERT INTO users(`+userCols+`) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		u.ID, strings.ToLower(u.Login), u.Name, u.Admin, u.PasswordHash, ms(u.CreatedAt), ms(u.DisabledAt))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return errors.Join(err, access.ErrExists)
	}
	return nil
}

// UserByLogin implements access.Store.
func (st accessStore) UserByLogin(ctx context.Context, login string) (access.User, error) {
	u, err := scanUser(st.s.db.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE login = ?`, strings.ToLower(login)))
	if errors.Is(err, sql.ErrNoRows) {
		return u, access.ErrNotFound
	}
	return u, err
}

// UserByID implements access.Store.
func (st accessStore) UserByID(ctx context.Context, id string) (access.User, error) {
	u, err := scanUser(st.s.db.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return u, access.ErrNotFound
	}
	return u, err
}

// Users implements access.Store.
func (st accessStore) Users(ctx context.Context) ([]access.User, error) {
	rows, err := st.s.db.QueryContext(ctx, `SELECT `+userCols+` FROM users ORDER BY login`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []access.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// SetPassword implements access.Store.
func (st accessStore) SetPassword(ctx context.Context, userID, hash string) error {
	res, err := st.s.db.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, hash, userID)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return errors.Join(err, access.ErrNotFound)
	}
	return nil
}

// SetDisabled implements access.Store.
func (st accessStore) SetDisabled(ctx context.Context, userID string, at time.Time) error {
	res, err := st.s.db.ExecContext(ctx, `UPDATE users SET disabled_at = ? WHERE id = ?`, ms(at), userID)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return errors.Join(err, access.ErrNotFound)
	}
	return nil
}

// SetMembership implements access.Store. The insert selects nothing for
// an unknown user, which is how ErrNotFound is told from a foreign-key
// failure.
func (st accessStore) SetMembership(ctx context.Context, m access.Membership) error {
	if m.Role == "" {
		_, err := st.s.db.ExecContext(ctx, `DELETE FROM memberships WHERE user_id = ? AND event = ?`, m.UserID, m.Event)
		return err
	}
	res, err := st.s.db.ExecContext(ctx, `INSERT INTO memberships(user_id, event, role)
		SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM users WHERE id = ?)
		ON CONFLICT(user_id, event) DO UPDATE SET role = excluded.role`, m.UserID, m.Event, string(m.Role), m.UserID)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return errors.Join(err, access.ErrNotFound)
	}
	return nil
}

func (st accessStore) memberships(ctx context.Context, q string, arg string) ([]access.Membership, error) {
	rows, err := st.s.db.QueryContext(ctx, q, arg)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []access.Membership
	for rows.Next() {
		var m access.Membership
		if err := rows.Scan(&m.UserID, &m.Event, &m.Role); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Memberships implements access.Store.
func (st accessStore) Memberships(ctx context.Context, userID string) ([]access.Membership, error) {
	return st.memberships(ctx, `SELECT user_id, event, role FROM memberships WHERE user_id = ? ORDER BY event`, userID)
}

// EventMembers implements access.Store.
func (st accessStore) EventMembers(ctx context.Context, event string) ([]access.Membership, error) {
	return st.memberships(ctx, `SELECT user_id, event, role FROM memberships WHERE event = ? ORDER BY user_id`, event)
}

// CreateSession implements access.Store.
func (st accessStore) CreateSession(ctx context.Context, s access.Session) error {
	_, err := st.s.db.ExecContext(ctx, `INSERT INTO sessions(hash, user_id, csrf, created_at, expires_at, ip, user_agent)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, s.Hash, s.UserID, s.CSRF, ms(s.CreatedAt), ms(s.ExpiresAt), s.IP, s.UserAgent)
	return err
}

// SessionByHash implements access.Store.
func (st accessStore) SessionByHash(ctx context.Context, hash []byte) (access.Session, error) {
	var s access.Session
	var created, expires int64
	err := st.s.db.QueryRowContext(ctx, `SELECT hash, user_id, csrf, created_at, expires_at, ip, user_agent FROM sessions WHERE hash = ?`,
		hash).Scan(&s.Hash, &s.UserID, &s.CSRF, &created, &expires, &s.IP, &s.UserAgent)
	if errors.Is(err, sql.ErrNoRows) {
		return s, access.ErrNotFound
	}
	s.CreatedAt, s.ExpiresAt = fromMS(created), fromMS(expires)
	return s, err
}

// DeleteSession implements access.Store.
func (st accessStore) DeleteSession(ctx context.Context, hash []byte) error {
	_, err := st.s.db.ExecContext(ctx, `DELETE FROM sessions WHERE hash = ?`, hash)
	return err
}

func (st accessStore) deleteSessions(ctx context.Context, q string, arg any) (int, error) {
	res, err := st.s.db.ExecContext(ctx, q, arg)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// DeleteUserSessions implements access.Store.
func (st accessStore) DeleteUserSessions(ctx context.Context, userID string) (int, error) {
	return st.deleteSessions(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID)
}

// DeleteExpiredSessions implements access.Store.
func (st accessStore) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	return st.deleteSessions(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, ms(now))
}

const tokenCols = `id, hash, user_id, role, event, label, created_at, expires_at, revoked_at`

func scanToken(row interface{ Scan(...any) error }) (access.Token, error) {
	var t access.Token
	var c, e, r int64
	err := row.Scan(&t.ID, &t.Hash, &t.UserID, &t.Role, &t.Event, &t.Label, &c, &e, &r)
	t.CreatedAt, t.ExpiresAt, t.RevokedAt = fromMS(c), fromMS(e), fromMS(r)
	return t, err
}

// CreateToken implements access.Store.
func (st accessStore) CreateToken(ctx context.Context, t access.Token) error {
	res, err := st.s.db.ExecContext(ctx, `INSERT INTO api_tokens(`+tokenCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(id) DO NOTHING`, t.ID, t.Hash, t.UserID, string(t.Role), t.Event, t.Label, ms(t.CreatedAt), ms(t.ExpiresAt), ms(t.RevokedAt))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return errors.Join(err, access.ErrExists)
	}
	return nil
}

// TokenByHash implements access.Store.
func (st accessStore) TokenByHash(ctx context.Context, hash []byte) (access.Token, error) {
	t, err := scanToken(st.s.db.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return t, access.ErrNotFound
	}
	return t, err
}

// Tokens implements access.Store.
func (st accessStore) Tokens(ctx context.Context) ([]access.Token, error) {
	rows, err := st.s.db.QueryContext(ctx, `SELECT `+tokenCols+` FROM api_tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []access.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeToken implements access.Store.
func (st accessStore) RevokeToken(ctx context.Context, id string, at time.Time) error {
	res, err := st.s.db.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, ms(at), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	var one int
	err = st.s.db.QueryRowContext(ctx, `SELECT 1 FROM api_tokens WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return access.ErrNotFound
	}
	return err
}

// Audit implements access.Store.
func (st accessStore) Audit(ctx context.Context, e access.AuditEntry) error {
	_, err := st.s.db.ExecContext(ctx, `INSERT INTO audit_log(at, actor, action, target, ip, detail) VALUES (?, ?, ?, ?, ?, ?)`,
		ms(e.At), e.Actor, e.Action, e.Target, e.IP, e.Detail)
	return err
}

// AuditLog implements access.Store.
func (st accessStore) AuditLog(ctx context.Context, limit int) ([]access.AuditEntry, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := st.s.db.QueryContext(ctx, `SELECT id, at, actor, action, target, ip, detail FROM audit_log ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []access.AuditEntry
	for rows.Next() {
		var e access.AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.IP, &e.Detail); err != nil {
			return nil, err
		}
		e.At = fromMS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}
