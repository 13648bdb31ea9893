package rooms

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"time"
)

// Link kinds and roles. Accounts and finer roles come later; a link already
// carries the role it grants so that they build on this primitive.
const (
	KindRoom = "room" // grants entry to one room

	RoleHost        = "host"
	RoleParticipant = "participant"
)

// TokenBytes is the entropy of every secret we hand out: 256 bits, over the
// 128 the threat model needs, at the cost of a few characters in a URL.
const TokenBytes = 32

// NewSecret returns a fresh random secret and its hash. Only the hash is
// stored: a copy of the database does not let anyone in.
func NewSecret() (plain string, hash []byte) {
	b := make([]byte, TokenBytes)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand never fails on supported platforms; if it does we
		// must not hand out a guessable token.
		panic("rooms: crypto/rand: " + err.Error())
	}
	plain = base64.RawURLEncoding.EncodeToString(b)
	return plain, HashSecret(plain)
}

// HashSecret is SHA-256: the secrets are 256 random bits, so a slow KDF adds
// nothing but latency on every join.
func HashSecret(plain string) []byte {
	h := sha256.Sum256([]byte(plain))
	return h[:]
}

// SameHash compares two hashes in constant time.
func SameHash(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// Link is a stored capability: whoever holds the plain secret may do what
// Kind, Scope and Role say until ExpiresAt, unless it has been revoked.
type Link struct {
	ID        string
	Hash      []byte
	Kind      string // KindRoom
	Scope     string // the room name for KindRoom
	Role      string
	Label     string
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt time.Time // zero if live
}

// Errors a link check can give.
var (
	ErrNotFound     = errors.New("not found")
	ErrTokenInvalid = errors.New("token unknown or revoked")
	ErrTokenExpired = errors.New("token expired")
	ErrWrongScope   = errors.New("token not valid for this use")
)

// Check tells whether the link may be used now for kind.
func (l Link) Check(kind string, now time.Time) error {
	switch {
	case !l.RevokedAt.IsZero():
		return ErrTokenInvalid
	case l.Kind != kind:
		return ErrWrongScope
	case !now.Before(l.ExpiresAt):
		return ErrTokenExpired
	}
	return nil
}

// NewID returns a random identifier for links and members (not a secret).
func NewID() string { return newID() }
