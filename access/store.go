package access

import (
	"context"
	"errors"
	"time"
)

// User is a staff account. Admin makes it an administrator of every
// event; otherwise its memberships say where it belongs.
type User struct {
	ID           string    `json:"id"`
	Login        string    `json:"login"` // unique, lower-case
	Name         string    `json:"name"`  // shown in rooms and audit trails
	Admin        bool      `json:"admin"`
	PasswordHash string    `json:"-"` // PHC string (argon2id)
	CreatedAt    time.Time `json:"created_at"`
	DisabledAt   time.Time `json:"disabled_at,omitzero"`
}

// Membership is a user's role in one event (and, inherited, in its
// sub-events).
type Membership struct {
	UserID string `json:"user_id"`
	Event  string `json:"event"`
	Role   Role   `json:"role"`
}

// Session is a logged-in browser. Only the hash of its cookie is stored.
type Session struct {
	Hash      []byte
	UserID    string
	CSRF      string // sent back by the page on every state-changing request
	CreatedAt time.Time
	ExpiresAt time.Time
	IP        string
	UserAgent string
}

// Token is an API token for scripts and integrations. Event "" means the
// role holds in every event.
type Token struct {
	ID        string    `json:"id"`
	Hash      []byte    `json:"-"`
	UserID    string    `json:"user_id"`
	Role      Role      `json:"role"`
	Event     string    `json:"event,omitempty"`
	Label     string    `json:"label,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// AuditEntry is one access event: a login (or its failure), a logout, a
// link or token created or revoked, a guest admitted or refused.
type AuditEntry struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`  // who acted: user login, link or token label, "system"
	Action string    `json:"action"` // login, login_failed, logout, link_created, ...
	Target string    `json:"target,omitempty"`
	IP     string    `json:"ip,omitempty"`
	Detail string    `json:"detail,omitempty"`
}

// Store errors.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
)

// Store keeps accounts, sessions, tokens and the audit log. SQLite and
// PostgreSQL implement it; accesstest.Run checks both.
type Store interface {
	// CreateUser stores u with its login lower-cased; ErrExists if the
	// login (in any case) or the ID is taken.
	CreateUser(ctx context.Context, u User) error
	UserByLogin(ctx context.Context, login string) (User, error) // any case; ErrNotFound
	UserByID(ctx context.Context, id string) (User, error)
	Users(ctx context.Context) ([]User, error)                  // by login
	SetPassword(ctx context.Context, userID, hash string) error // ErrNotFound if unknown
	// SetDisabled disables an account from at (its logins, sessions and
	// tokens are refused); a zero at enables it again. ErrNotFound if
	// unknown.
	SetDisabled(ctx context.Context, userID string, at time.Time) error
	// SetMembership adds or changes a user's role in an event; an empty
	// role removes the membership (the user inherits again from the
	// events above), None is stored like a role (it blocks them).
	// ErrNotFound for an unknown user.
	SetMembership(ctx context.Context, m Membership) error
	Memberships(ctx context.Context, userID string) ([]Membership, error) // by event
	EventMembers(ctx context.Context, event string) ([]Membership, error) // by user ID

	CreateSession(ctx context.Context, s Session) error
	// SessionByHash returns ErrNotFound for an unknown hash (expiry is the
	// caller's to check).
	SessionByHash(ctx context.Context, hash []byte) (Session, error)
	DeleteSession(ctx context.Context, hash []byte) error // nil if already gone
	// DeleteUserSessions logs a user out everywhere; it returns how many
	// sessions ended.
	DeleteUserSessions(ctx context.Context, userID string) (int, error)
	// DeleteExpiredSessions drops the sessions expired at now, which
	// nothing else removes; it returns how many.
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error)

	CreateToken(ctx context.Context, t Token) error              // ErrExists for an ID taken
	TokenByHash(ctx context.Context, hash []byte) (Token, error) // ErrNotFound
	Tokens(ctx context.Context) ([]Token, error)                 // oldest first, revoked and expired too
	// RevokeToken is ErrNotFound if unknown; revoking twice keeps the
	// first time.
	RevokeToken(ctx context.Context, id string, at time.Time) error

	// Audit appends e (its ID is the store's). The log is append-only,
	// in the database itself.
	Audit(ctx context.Context, e AuditEntry) error
	// AuditLog returns the newest entries first (in the order they were
	// appended), at most limit (every entry if limit ≤ 0).
	AuditLog(ctx context.Context, limit int) ([]AuditEntry, error)
}
