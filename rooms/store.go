package rooms

import (
	"context"
	"time"
)

// RoomInfo is what is stored about a room; live membership is not stored.
type RoomInfo struct {
	Name      string
	Title     string
	CreatedAt time.Time
}

// Store is what rooms needs from persistence. Implementations live in
// store/...; every one of them must pass roomstest.Run.
type Store interface {
	// CreateRoom stores a room; it reports created=false, nil if a room of
	// that name already exists (start-up calls it every time).
	CreateRoom(ctx context.Context, r RoomInfo) (created bool, err error)
	Room(ctx context.Context, name string) (RoomInfo, error)
	Rooms(ctx context.Context) ([]RoomInfo, error)
	CreateLink(ctx context.Context, l Link) error
	// LinkByHash returns ErrNotFound for an unknown hash.
	LinkByHash(ctx context.Context, hash []byte) (Link, error)
	// Links returns every link of a scope (a room's, a commune's), newest
	// first.
	Links(ctx context.Context, scope string) ([]Link, error)
	// RevokeLink returns ErrNotFound for an unknown id; revoking twice
	// keeps the first time.
	RevokeLink(ctx context.Context, id string, at time.Time) error
	// UseLink counts one use of the link and returns it as it now is, in
	// one atomic step: only if it is live at now (not revoked, not expired)
	// and under its MaxUses. Otherwise nothing changes and the error says
	// why: ErrNotFound, ErrTokenInvalid (revoked), ErrTokenExpired or
	// ErrLinkUsedUp. Concurrent calls never count past MaxUses.
	UseLink(ctx context.Context, id string, now time.Time) (Link, error)
	Ping(ctx context.Context) error
}
