// Package roomstest is the conformance suite every rooms.Store must pass.
package roomstest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"crisisroom/rooms"
)

// Run runs the suite; newStore returns a fresh, empty store for each subtest.
func Run(t *testing.T, newStore func(t *testing.T) rooms.Store) {
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)

	t.Run("RoomCreateIsIdempotent", func(t *testing.T) {
		st := newStore(t)
		created, err := st.CreateRoom(ctx, rooms.RoomInfo{Name: "main", Title: "Salle de crise", CreatedAt: now})
		if err != nil || !created {
			t.Fatalf("first create: created=%v err=%v", created, err)
		}
		created, err = st.CreateRoom(ctx, rooms.RoomInfo{Name: "main", Title: "other", CreatedAt: now.Add(time.Hour)})
		if err != nil || created {
			t.Fatalf("second create: created=%v err=%v, want false,nil", created, err)
		}
		r, err := st.Room(ctx, "main")
		if err != nil || r.Title != "Salle de crise" || !r.CreatedAt.Equal(now) {
			t.Fatalf("room = %+v, %v", r, err)
		}
		if _, err := st.Room(ctx, "nope"); !errors.Is(err, rooms.ErrNotFound) {
			t.Fatalf("unknown room err = %v, want ErrNotFound", err)
		}
		all, err := st.Rooms(ctx)
		if err != nil || len(all) != 1 || all[0].Name != "main" {
			t.Fatalf("rooms = %+v, %v", all, err)
		}
	})

	t.Run("LinkRoundTripAndRevoke", func(t *testing.T) {
		st := newStore(t)
		if _, err := st.CreateRoom(ctx, rooms.RoomInfo{Name: "main", Title: "t", CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		plain, l, err := rooms.CreateLink(ctx, st, "main", rooms.RoleParticipant, "invite", time.Hour, now)
		if err != nil {
			t.Fatal(err)
		}
		got, err := st.LinkByHash(ctx, rooms.HashSecret(plain))
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != l.ID || !bytes.Equal(got.Hash, l.Hash) || got.Scope != "main" || got.Role != rooms.RoleParticipant ||
			got.Kind != rooms.KindRoom || got.Label != "invite" || !got.ExpiresAt.Equal(now.Add(time.Hour)) || !got.RevokedAt.IsZero() {
			t.Fatalf("link = %+v, want %+v", got, l)
		}
		if err := got.Check(rooms.KindRoom, now); err != nil {
			t.Fatalf("fresh link check: %v", err)
		}
		if err := got.Check(rooms.KindRoom, now.Add(time.Hour)); !errors.Is(err, rooms.ErrTokenExpired) {
			t.Fatalf("expired check: %v", err)
		}
		if _, err := st.LinkByHash(ctx, rooms.HashSecret(plain+"x")); !errors.Is(err, rooms.ErrNotFound) {
			t.Fatalf("forged token lookup: %v, want ErrNotFound", err)
		}
		if err := st.RevokeLink(ctx, l.ID, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		got, _ = st.LinkByHash(ctx, l.Hash)
		if err := got.Check(rooms.KindRoom, now); !errors.Is(err, rooms.ErrTokenInvalid) {
			t.Fatalf("revoked link check: %v", err)
		}
		if err := st.RevokeLink(ctx, "unknown", now); !errors.Is(err, rooms.ErrNotFound) {
			t.Fatalf("revoke unknown: %v", err)
		}
	})

	t.Run("LinkNeedsRoom", func(t *testing.T) {
		st := newStore(t)
		if _, _, err := rooms.CreateLink(ctx, st, "ghost", rooms.RoleParticipant, "", time.Hour, now); err == nil {
			t.Fatal("link for a missing room was created")
		}
		if _, err := st.CreateRoom(ctx, rooms.RoomInfo{Name: "main", CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := rooms.CreateLink(ctx, st, "main", rooms.RoleParticipant, "", 0, now); err == nil {
			t.Fatal("link without expiry was created")
		}
	})

	t.Run("Ping", func(t *testing.T) {
		if err := newStore(t).Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
