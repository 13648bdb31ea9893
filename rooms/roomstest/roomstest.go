// Package roomstest is the conformance suite every rooms.Store must pass.
package roomstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
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

	t.Run("GuestLinkRoundTripAndList", func(t *testing.T) {
		st := newStore(t)
		for _, r := range []string{"main", "other"} {
			if _, err := st.CreateRoom(ctx, rooms.RoomInfo{Name: r, Title: r, CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
		}
		_, room, err := rooms.CreateLink(ctx, st, "main", rooms.RoleHost, "host", time.Hour, now)
		if err != nil {
			t.Fatal(err)
		}
		plain, g, err := rooms.CreateGuestLink(ctx, st, rooms.GuestLink{Room: "main", Label: "ARS Bretagne", CreatedBy: "Préfète",
			TTL: 2 * time.Hour, MaxUses: 3, WatchOnly: true, Lobby: true}, now.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := rooms.CreateLink(ctx, st, "other", rooms.RoleParticipant, "elsewhere", time.Hour, now); err != nil {
			t.Fatal(err)
		}
		got, err := st.LinkByHash(ctx, rooms.HashSecret(plain))
		if err != nil {
			t.Fatal(err)
		}
		want := g
		if got.ID != want.ID || got.Kind != rooms.KindGuest || got.Role != rooms.RoleGuest || got.Scope != "main" ||
			got.Label != "ARS Bretagne" || got.CreatedBy != "Préfète" || got.MaxUses != 3 || got.Uses != 0 ||
			!got.WatchOnly || !got.Lobby || !got.CreatedAt.Equal(now.Add(time.Minute)) || !got.ExpiresAt.Equal(now.Add(time.Minute+2*time.Hour)) {
			t.Fatalf("guest link = %+v, want %+v", got, want)
		}
		if err := got.CheckJoin(now); err != nil {
			t.Fatalf("guest link check: %v", err)
		}
		if err := got.Check(rooms.KindRoom, now); !errors.Is(err, rooms.ErrWrongScope) {
			t.Fatalf("guest link used as a room link: %v, want ErrWrongScope", err)
		}
		list, err := st.Links(ctx, "main")
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].ID != g.ID || list[1].ID != room.ID || list[1].MaxUses != 0 || list[1].Lobby {
			t.Fatalf("links of main = %+v, want the guest link then the host link", list)
		}
		if list, err := st.Links(ctx, "nowhere"); err != nil || len(list) != 0 {
			t.Fatalf("links of an unknown scope = %+v, %v", list, err)
		}
		if _, _, err := rooms.CreateGuestLink(ctx, st, rooms.GuestLink{Room: "main", TTL: time.Hour}, now); err == nil {
			t.Fatal("a guest link without a maximum of uses was created")
		}
		if _, _, err := rooms.CreateGuestLink(ctx, st, rooms.GuestLink{Room: "main", MaxUses: 1}, now); err == nil {
			t.Fatal("a guest link without expiry was created")
		}
	})

	t.Run("UseLink", func(t *testing.T) {
		st := newStore(t)
		if _, err := st.CreateRoom(ctx, rooms.RoomInfo{Name: "main", Title: "t", CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		_, g, err := rooms.CreateGuestLink(ctx, st, rooms.GuestLink{Room: "main", TTL: time.Hour, MaxUses: 2}, now)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 2; i++ {
			l, err := st.UseLink(ctx, g.ID, now.Add(time.Minute))
			if err != nil || l.Uses != i || l.ID != g.ID || l.MaxUses != 2 {
				t.Fatalf("use %d: %+v, %v", i, l, err)
			}
		}
		if l, err := st.UseLink(ctx, g.ID, now.Add(time.Minute)); !errors.Is(err, rooms.ErrLinkUsedUp) || l.Uses != 2 {
			t.Fatalf("third use: uses %d, %v; want 2, ErrLinkUsedUp", l.Uses, err)
		}
		got, _ := st.LinkByHash(ctx, g.Hash)
		if got.Uses != 2 || !errors.Is(got.CheckJoin(now), rooms.ErrLinkUsedUp) || got.State(now) != "used_up" {
			t.Fatalf("used-up link = %+v", got)
		}

		_, unlimited, err := rooms.CreateLink(ctx, st, "main", rooms.RoleParticipant, "", time.Hour, now)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 5; i++ {
			if l, err := st.UseLink(ctx, unlimited.ID, now); err != nil || l.Uses != i {
				t.Fatalf("unlimited use %d: %+v, %v", i, l, err)
			}
		}
		if _, err := st.UseLink(ctx, unlimited.ID, now.Add(time.Hour)); !errors.Is(err, rooms.ErrTokenExpired) {
			t.Fatalf("use at expiry: %v, want ErrTokenExpired", err)
		}
		if err := st.RevokeLink(ctx, unlimited.ID, now); err != nil {
			t.Fatal(err)
		}
		if _, err := st.UseLink(ctx, unlimited.ID, now); !errors.Is(err, rooms.ErrTokenInvalid) {
			t.Fatalf("use of a revoked link: %v, want ErrTokenInvalid", err)
		}
		got, _ = st.LinkByHash(ctx, unlimited.Hash)
		if got.Uses != 5 || got.State(now) != "revoked" {
			t.Fatalf("refused uses counted: %+v", got)
		}
		if _, err := st.UseLink(ctx, "unknown", now); !errors.Is(err, rooms.ErrNotFound) {
			t.Fatalf("use of an unknown link: %v, want ErrNotFound", err)
		}
	})

	t.Run("ConcurrentUseLinkNeverExceedsMax", func(t *testing.T) {
		st := newStore(t)
		if _, err := st.CreateRoom(ctx, rooms.RoomInfo{Name: "main", Title: "t", CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		const maxUses, tries = 5, 40
		_, g, err := rooms.CreateGuestLink(ctx, st, rooms.GuestLink{Room: "main", TTL: time.Hour, MaxUses: maxUses}, now)
		if err != nil {
			t.Fatal(err)
		}
		var (
			wg             sync.WaitGroup
			mu             sync.Mutex
			ok, usedUp     int
			seen           = map[int]bool{}
			unexpectedErrs []error
		)
		start := make(chan struct{})
		for range tries {
			wg.Go(func() {
				<-start
				l, err := st.UseLink(ctx, g.ID, now)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
					if seen[l.Uses] {
						unexpectedErrs = append(unexpectedErrs, fmt.Errorf("count %d returned twice", l.Uses))
					}
					seen[l.Uses] = true
				case errors.Is(err, rooms.ErrLinkUsedUp):
					usedUp++
				default:
					unexpectedErrs = append(unexpectedErrs, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if len(unexpectedErrs) > 0 {
			t.Fatalf("unexpected: %v", unexpectedErrs)
		}
		got, _ := st.LinkByHash(ctx, g.Hash)
		if ok != maxUses || usedUp != tries-maxUses || got.Uses != maxUses {
			t.Fatalf("%d uses granted, %d refused, %d stored; want %d, %d, %d", ok, usedUp, got.Uses, maxUses, tries-maxUses, maxUses)
		}
	})

	t.Run("Ping", func(t *testing.T) {
		if err := newStore(t).Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
