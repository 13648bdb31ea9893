package cluster_test

import (
	"context"
	"testing"
	"time"

	"crisisroom/access"
	"crisisroom/protocol"
	"crisisroom/rooms"
)

// guestEnter resolves a guest link on in and enters with it.
func guestEnter(t *testing.T, in *instance, token, name string) (*rooms.Member, *rooms.Waiter, *peer) {
	t.Helper()
	ctx := context.Background()
	p := newPeer()
	l, pr, err := in.m.LinkCredential(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	chain := []string{l.Scope}
	mem, w, err := in.m.Enter(ctx, rooms.Entry{Room: l.Scope, Name: name, ReqID: "j-" + name, Peer: p, Principal: pr, Link: &l,
		Role: l.Role, Admitter: access.Decide(pr, access.RoomAdmit, chain) == nil, Can: rooms.Can(pr, chain), WatchOnly: pr.WatchOnly})
	if err != nil {
		t.Fatalf("enter %s on %s: %v", name, in.name, err)
	}
	return mem, w, p
}

// lastLobby waits until p's latest lobby-list has n guests and returns it.
func lastLobby(t *testing.T, p *peer, n int) []protocol.LobbyEntry {
	t.Helper()
	for {
		var l protocol.LobbyList
		p.expect(t, protocol.TypeLobbyList, &l)
		if len(l.Waiting) == n {
			return l.Waiting
		}
	}
}

// TestLobbyAcrossInstances: a guest waits on one instance; the host, on
// another, sees it, admits it there, and the guest is seated where it
// waits. Revoking its link on the host's instance kicks it on its own.
func TestLobbyAcrossInstances(t *testing.T) {
	w := newWorld(t, 4)
	a, b := w.start("a"), w.start("b")
	host := w.join(a, "host") // host links may admit
	ctx := context.Background()
	token, l, err := rooms.CreateGuestLink(ctx, w.st, rooms.GuestLink{Room: "main", Label: "ARS", TTL: time.Hour, MaxUses: 2, Lobby: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}

	_, wt, gp := guestEnter(t, b, token, "Dr Martin")
	if wt == nil {
		t.Fatal("the guest did not wait")
	}
	gp.expect(t, protocol.TypeLobby, nil)
	list := lastLobby(t, host.p, 1)
	if list[0].ID != wt.ID || list[0].Name != "Dr Martin" || list[0].Label != "ARS" {
		t.Fatalf("host on a sees %+v", list)
	}
	// A host joining later on a third instance is given the list at once.
	c := w.start("c")
	late := w.join(c, "late host")
	if got := lastLobby(t, late.p, 1); got[0].ID != wt.ID {
		t.Fatalf("late host sees %+v", got)
	}

	if err := host.Admit(ctx, wt.ID, true); err != nil {
		t.Fatal(err)
	}
	var j protocol.Joined
	gp.expect(t, protocol.TypeJoined, &j)
	if j.ResumeToken == "" || len(j.Peers) != 2 {
		t.Fatalf("admitted guest got %+v", j)
	}
	lastLobby(t, host.p, 0)
	lastLobby(t, late.p, 0)
	var pj protocol.PeerInfo
	host.p.expect(t, protocol.TypePeerJoined, &pj)
	if pj.ID != j.PeerID {
		t.Fatalf("host told of %+v", pj)
	}
	if got, _ := w.st.LinkByHash(ctx, l.Hash); got.Uses != 1 {
		t.Fatalf("uses %d, want 1", got.Uses)
	}

	// Revoked on a: the guest's instance b kicks it, and everyone sees it go.
	start := time.Now()
	if err := a.m.RevokeLink(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 5*time.Second, "the guest is kicked on b", func() bool { return gp.closeCode() == protocol.CloseRevoked })
	t.Logf("guest on another instance kicked %s after the revocation (%s in all)", took, time.Since(start))
	var left protocol.PeerLeft
	host.p.expect(t, protocol.TypePeerLeft, &left)
	if left.ID != j.PeerID {
		t.Fatalf("host saw %+v leave", left)
	}
	if _, _, err := b.m.Resume(j.ResumeToken, "", newPeer()); err == nil {
		t.Fatal("a kicked guest resumed")
	}
}

// TestLobbyRefusedAcrossInstances: refusing from another instance closes
// the guest's socket where it waits; a guest whose instance dies leaves
// the others' lists.
func TestLobbyRefusedAcrossInstances(t *testing.T) {
	w := newWorld(t, 4)
	a, b := w.start("a"), w.start("b")
	host := w.join(a, "host")
	ctx := context.Background()
	token, _, err := rooms.CreateGuestLink(ctx, w.st, rooms.GuestLink{Room: "main", Label: "ARS", TTL: time.Hour, MaxUses: 2, Lobby: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, w1, p1 := guestEnter(t, b, token, "Un")
	lastLobby(t, host.p, 1)
	if err := host.Admit(ctx, w1.ID, false); err != nil {
		t.Fatal(err)
	}
	var e protocol.Error
	p1.expect(t, protocol.TypeError, &e)
	if e.Code != protocol.ErrRefused {
		t.Fatalf("refused guest got %+v", e)
	}
	eventually(t, 5*time.Second, "refused guest closed", func() bool { return p1.closeCode() == protocol.CloseRefused })
	lastLobby(t, host.p, 0)

	_, _, _ = guestEnter(t, b, token, "Deux")
	lastLobby(t, host.p, 1)
	b.link.setDown(true) // b falls silent: after the TTL, its guest leaves a's list
	lastLobby(t, host.p, 0)
}
