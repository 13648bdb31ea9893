package rooms

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
)

// Link kinds and roles. A link carries the role it grants in its room
// (access.ParseRole reads it: "host" is an operator).
const (
	KindRoom  = "room"  // grants entry to one room
	KindGuest = "guest" // an outside partner's entry to one room: limited uses, maybe a lobby

	RoleHost        = "host"
	RoleParticipant = "participant"
	RoleGuest       = "guest"
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
	Kind      string // KindRoom, KindGuest
	Scope     string // the room name for KindRoom and KindGuest
	Role      string
	Label     string
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt time.Time // zero if live
	// MaxUses bounds the joins (admissions, through a lobby) the link
	// allows; 0 is unlimited, which only non-guest kinds may be. Uses
	// counts them (Store.UseLink).
	MaxUses int
	Uses    int
	// WatchOnly: its holders watch and listen, without camera, microphone
	// or annotations. Lobby: they wait until a host admits them.
	WatchOnly bool
	Lobby     bool
	CreatedBy string // who minted it (a staff member's name), for the list
}

// Errors a link check can give.
var (
	ErrNotFound     = errors.New("not found")
	ErrTokenInvalid = errors.New("token unknown or revoked")
	ErrTokenExpired = errors.New("token expired")
	ErrWrongScope   = errors.New("token not valid for this use")
	ErrLinkUsedUp   = errors.New("link used as many times as it allows")
)

// Check tells whether the link may be used now for kind.
func (l Link) Check(kind string, now time.Time) error {
	if l.Kind != kind && !l.RevokedAt.IsZero() {
		return ErrTokenInvalid
	}
	if l.Kind != kind {
		return ErrWrongScope
	}
	return l.Live(now)
}

// CheckJoin tells whether the link may let someone into its room now: a
// room or guest link, live, not used up.
func (l Link) CheckJoin(now time.Time) error {
	if l.Kind != KindRoom && l.Kind != KindGuest {
		if !l.RevokedAt.IsZero() {
			return ErrTokenInvalid
		}
		return ErrWrongScope
	}
	return l.Live(now)
}

// Live tells whether the link may be used at now, whatever its kind: not
// revoked, not expired, not used up.
func (l Link) Live(now time.Time) error {
	switch {
	case !l.RevokedAt.IsZero():
		return ErrTokenInvalid
	case !now.Before(l.ExpiresAt):
		return ErrTokenExpired
	case l.MaxUses > 0 && l.Uses >= l.MaxUses:
		return ErrLinkUsedUp
	}
	return nil
}

// State sums the link up for lists: "active", "revoked", "expired" or
// "used_up".
func (l Link) State(now time.Time) string {
	switch l.Live(now) {
	case ErrTokenInvalid:
		return "revoked"
	case ErrTokenExpired:
		return "expired"
	case ErrLinkUsedUp:
		return "used_up"
	}
	return "active"
}

// NewID returns a random identifier for links and members (not a secret).
func NewID() string { return newID() }

// CreateLink mints a room link and returns its plain secret: the only time it
// is ever visible.
func CreateLink(ctx context.Context, st Store, roomName, role, label string, ttl time.Duration, now time.Time) (string, Link, error) {
	if ttl <= 0 {
		return "", Link{}, errors.New("a link needs a positive lifetime")
	}
	if _, err := st.Room(ctx, roomName); err != nil {
		return "", Link{}, fmt.Errorf("room %q: %w", roomName, err)
	}
	plain, hash := NewSecret()
	l := Link{ID: newID(), Hash: hash, Kind: KindRoom, Scope: roomName, Role: role, Label: label,
		CreatedAt: now.UTC(), ExpiresAt: now.Add(ttl).UTC()}
	if err := st.CreateLink(ctx, l); err != nil {
		return "", Link{}, err
	}
	return plain, l, nil
}

// GuestLink is what an operator asks for when inviting an outside partner.
type GuestLink struct {
	Room      string
	Label     string
	CreatedBy string
	TTL       time.Duration // mandatory
	MaxUses   int           // at least 1: a guest link is never unlimited
	WatchOnly bool
	Lobby     bool
}

// CreateGuestLink mints a guest link (KindGuest, role guest) and returns
// its plain secret: the only time it is ever visible.
func CreateGuestLink(ctx context.Context, st Store, g GuestLink, now time.Time) (string, Link, error) {
	if g.TTL <= 0 {
		return "", Link{}, errors.New("a guest link needs a positive lifetime")
	}
	if g.MaxUses < 1 {
		return "", Link{}, errors.New("a guest link needs a maximum number of uses")
	}
	if _, err := st.Room(ctx, g.Room); err != nil {
		return "", Link{}, fmt.Errorf("room %q: %w", g.Room, err)
	}
	plain, hash := NewSecret()
	l := Link{ID: newID(), Hash: hash, Kind: KindGuest, Scope: g.Room, Role: RoleGuest, Label: g.Label,
		CreatedAt: now.UTC(), ExpiresAt: now.Add(g.TTL).UTC(), MaxUses: g.MaxUses, WatchOnly: g.WatchOnly,
		Lobby: g.Lobby, CreatedBy: g.CreatedBy}
	if err := st.CreateLink(ctx, l); err != nil {
		return "", Link{}, err
	}
	return plain, l, nil
}
