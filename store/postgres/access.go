package postgres

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"crisisroom/access"
)

// Access returns the access.Store view of s.
func (s *Store) Access() access.Store { return accessStore{s} }

type accessStore struct{ s *Store }

// accessMigration is store/sqlite's, on PostgreSQL. The audit log refuses
// UPDATE, DELETE and TRUNCATE in the database itself.
const accessMigration = `CREATE TABLE users (
		id TEXT PRIMARY KEY,
		login TEXT NOT NULL UNIQUE,
		name TEXT NOT NULL,
		admin BOOLEAN NOT NULL,
		password_hash TEXT NOT NULL,
		created_at TIMESTAMPTZ NOT NULL,
		disabled_at TIMESTAMPTZ
	);
	CREATE TABLE memberships (
		user_id TEXT NOT NULL REFERENCES users(id),
		event TEXT NOT NULL,
		role TEXT NOT NULL,
		PRIMARY KEY (user_id, event)
	);
	CREATE INDEX memberships_event ON memberships(event, user_id);
	CREATE TABLE sessions (
		hash BYTEA PRIMARY KEY,
		user_id TEXT NOT NULL REFERENCES users(id),
		csrf TEXT NOT NULL,
		created_at TIMESTAMPTZ NOT NULL,
		expires_at TIMESTAMPTZ NOT NULL,
		ip TEXT NOT NULL,
		user_agent TEXT NOT NULL
	);
	CREATE INDEX sessions_user ON sessions(user_id);
	CREATE INDEX sessions_expires ON sessions(expires_at);
	CREATE TABLE api_tokens (
		id TEXT PRIMARY KEY,
		hash BYTEA NOT NULL UNIQUE,
		user_id TEXT NOT NULL REFERENCES users(id),
		role TEXT NOT NULL,
		event TEXT NOT NULL,
		label TEXT NOT NULL,
		created_at TIMESTAMPTZ NOT NULL,
		expires_at TIMESTAMPTZ NOT NULL,
		revoked_at TIMESTAMPTZ
	);
	CREATE TABLE audit_log (
		id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		at TIMESTAMPTZ NOT NULL,
		actor TEXT NOT NULL,
		action TEXT NOT NULL,
		target TEXT NOT NULL,
		ip TEXT NOT NULL,
		detail TEXT NOT NULL
	);
	CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
		RAISE EXCEPTION 'access audit log: % refused: the log is append-only', TG_OP;
	END $$;
	CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
	CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();`

const userCols = `id, login, name, admin, password_hash, created_at, disabled_at`

func scanUser(row pgx.Row) (access.User, error) {
	var u access.User
	var disabled *time.Time
	err := row.Scan(&u.ID, &u.Login, &u.Name, &u.Admin, &u.PasswordHash, &u.CreatedAt, &disabled)
	u.CreatedAt, u.DisabledAt = u.CreatedAt.UTC(), fromNull(disabled)
	return u, err
}

// CreateUser implements access.Store. ON CONFLICT DO NOTHING covers both
// the ID and the login: nothing inserted means one is taken.
func (st accessStore) CreateUser(ctx context.Context, u access.User) error {
	tag, err := st.s.pool.Exec(ctx, `INSERT INTO users(`+userCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
		u.ID, strings.ToLower(u.Login), u.Name, u.Admin, u.PasswordHash, ts(u.CreatedAt), nullTS(u.DisabledAt))
	if err == nil && tag.RowsAffected() == 0 {
		return access.ErrExists
	}
	return err
}

// UserByLogin implements access.Store.
func (st accessStore) UserByLogin(ctx context.Context, login string) (access.User, error) {
	u, err := scanUser(st.s.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE login = $1`, strings.ToLower(login)))
	if errors.Is(err, pgx.ErrNoRows) {
		return u, access.ErrNotFound
	}
	return u, err
}

// UserByID implements access.Store.
func (st accessStore) UserByID(ctx context.Context, id string) (access.User, error) {
	u, err := scanUser(st.s.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return u, access.ErrNotFound
	}
	return u, err
}

// Users implements access.Store.
func (st accessStore) Users(ctx context.Context) ([]access.User, error) {
	rows, err := st.s.pool.Query(ctx, `SELECT `+userCols+` FROM users ORDER BY login COLLATE "C"`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (access.User, error) { return scanUser(row) })
}

// SetPassword implements access.Store.
func (st accessStore) SetPassword(ctx context.Context, userID, hash string) error {
	tag, err := st.s.pool.Exec(ctx, `UPDATE users SET password_hash = $1 WHERE id = $2`, hash, userID)
	if err == nil && tag.RowsAffected() == 0 {
		return access.ErrNotFound
	}
	return err
}

// SetDisabled implements access.Store. NULL is an enabled account.
func (st accessStore) SetDisabled(ctx context.Context, userID string, at time.Time) error {
	var v *time.Time
	if !at.IsZero() {
		u := at.UTC()
		v = &u
	}
	tag, err := st.s.pool.Exec(ctx, `UPDATE users SET disabled_at = $1 WHERE id = $2`, v, userID)
	if err == nil && tag.RowsAffected() == 0 {
		return access.ErrNotFound
	}
	return err
}

// SetMembership implements access.Store. The insert selects nothing for
// an unknown user, which is how ErrNotFound is told from a foreign-key
// failure.
func (st accessStore) SetMembership(ctx context.Context, m access.Membership) error {
	if m.Role == "" {
		_, err := st.s.pool.Exec(ctx, `DELETE FROM memberships WHERE user_id = $1 AND event = $2`, m.UserID, m.Event)
		return err
	}
	tag, err := st.s.pool.Exec(ctx, `INSERT INTO memberships(user_id, event, role)
		SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM users WHERE id = $1)
		ON CONFLICT (user_id, event) DO UPDATE SET role = excluded.role`, m.UserID, m.Event, string(m.Role))
	if err == nil && tag.RowsAffected() == 0 {
		return access.ErrNotFound
	}
	return err
}

func (st accessStore) memberships(ctx context.Context, q, arg string) ([]access.Membership, error) {
	rows, err := st.s.pool.Query(ctx, q, arg)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (access.Membership, error) {
		var m access.Membership
		var role string
		err := row.Scan(&m.UserID, &m.Event, &role)
		m.Role = access.Role(role)
		return m, err
	})
}

// Memberships implements access.Store.
func (st accessStore) Memberships(ctx context.Context, userID string) ([]access.Membership, error) {
	return st.memberships(ctx, `SELECT user_id, event, role FROM memberships WHERE user_id = $1 ORDER BY event COLLATE "C"`, userID)
}

// EventMembers implements access.Store.
func (st accessStore) EventMembers(ctx context.Context, event string) ([]access.Membership, error) {
	return st.memberships(ctx, `SELECT user_id, event, role FROM memberships WHERE event = $1 ORDER BY user_id COLLATE "C"`, event)
}

// CreateSession implements access.Store.
func (st accessStore) CreateSession(ctx context.Context, s access.Session) error {
	_, err := st.s.pool.Exec(ctx, `INSERT INTO sessions(hash, user_id, csrf, created_at, expires_at, ip, user_agent)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, s.Hash, s.UserID, s.CSRF, ts(s.CreatedAt), ts(s.ExpiresAt), s.IP, s.UserAgent)
	return err
}

// SessionByHash implements access.Store.
func (st accessStore) SessionByHash(ctx context.Context, hash []byte) (access.Session, error) {
	var s access.Session
	err := st.s.pool.QueryRow(ctx, `SELECT hash, user_id, csrf, created_at, expires_at, ip, user_agent FROM sessions WHERE hash = $1`,
		hash).Scan(&s.Hash, &s.UserID, &s.CSRF, &s.CreatedAt, &s.ExpiresAt, &s.IP, &s.UserAgent)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, access.ErrNotFound
	}
	s.CreatedAt, s.ExpiresAt = s.CreatedAt.UTC(), s.ExpiresAt.UTC()
	return s, err
}

// DeleteSession implements access.Store.
func (st accessStore) DeleteSession(ctx context.Context, hash []byte) error {
	_, err := st.s.pool.Exec(ctx, `DELETE FROM sessions WHERE hash = $1`, hash)
	return err
}

// DeleteUserSessions implements access.Store.
func (st accessStore) DeleteUserSessions(ctx context.Context, userID string) (int, error) {
	tag, err := st.s.pool.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID)
	return int(tag.RowsAffected()), err
}

// DeleteExpiredSessions implements access.Store.
func (st accessStore) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	tag, err := st.s.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at <= $1`, ts(now))
	return int(tag.RowsAffected()), err
}

const tokenCols = `id, hash, user_id, role, event, label, created_at, expires_at, revoked_at`

func scanToken(row pgx.Row) (access.Token, error) {
	var t access.Token
	var role string
	var revoked *time.Time
	err := row.Scan(&t.ID, &t.Hash, &t.UserID, &role, &t.Event, &t.Label, &t.CreatedAt, &t.ExpiresAt, &revoked)
	t.Role, t.CreatedAt, t.ExpiresAt, t.RevokedAt = access.Role(role), t.CreatedAt.UTC(), t.ExpiresAt.UTC(), fromNull(revoked)
	return t, err
}

// CreateToken implements access.Store.
func (st accessStore) CreateToken(ctx context.Context, t access.Token) error {
	tag, err := st.s.pool.Exec(ctx, `INSERT INTO api_tokens(`+tokenCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (id) DO NOTHING`, t.ID, t.Hash, t.UserID, string(t.Role), t.Event, t.Label, ts(t.CreatedAt), ts(t.ExpiresAt), nullTS(t.RevokedAt))
	if err == nil && tag.RowsAffected() == 0 {
		return access.ErrExists
	}
	return err
}

// TokenByHash implements access.Store.
func (st accessStore) TokenByHash(ctx context.Context, hash []byte) (access.Token, error) {
	t, err := scanToken(st.s.pool.QueryRow(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return t, access.ErrNotFound
	}
	return t, err
}

// Tokens implements access.Store.
func (st accessStore) Tokens(ctx context.Context) ([]access.Token, error) {
	rows, err := st.s.pool.Query(ctx, `SELECT `+tokenCols+` FROM api_tokens ORDER BY created_at, id COLLATE "C"`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (access.Token, error) { return scanToken(row) })
}

// RevokeToken implements access.Store; revoking twice keeps the first time.
func (st accessStore) RevokeToken(ctx context.Context, id string, at time.Time) error {
	tag, err := st.s.pool.Exec(ctx, `UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`, ts(at), id)
	if err != nil || tag.RowsAffected() == 1 {
		return err
	}
	var one int
	err = st.s.pool.QueryRow(ctx, `SELECT 1 FROM api_tokens WHERE id = $1`, id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return access.ErrNotFound
	}
	return err
}

// Audit implements access.Store.
func (st accessStore) Audit(ctx context.Context, e access.AuditEntry) error {
	_, err := st.s.pool.Exec(ctx, `INSERT INTO audit_log(at, actor, action, target, ip, detail) VALUES ($1, $2, $3, $4, $5, $6)`,
		ts(e.At), e.Actor, e.Action, e.Target, e.IP, e.Detail)
	return err
}

// AuditLog implements access.Store.
func (st accessStore) AuditLog(ctx context.Context, limit int) ([]access.AuditEntry, error) {
	var lim *int // NULL: no limit
	if limit > 0 {
		lim = &limit
	}
	rows, err := st.s.pool.Query(ctx, `SELECT id, at, actor, action, target, ip, detail FROM audit_log ORDER BY id DESC LIMIT $1`, lim)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (access.AuditEntry, error) {
		var e access.AuditEntry
		err := row.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Target, &e.IP, &e.Detail)
		e.At = e.At.UTC()
		return e, err
	})
}
