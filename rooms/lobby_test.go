package rooms_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"crisisroom/access"
	"crisisroom/protocol"
	"crisisroom/rooms"
)

// hooks records what the rooms tell the audit log and the main courante.
type hooks struct {
	mu         sync.Mutex
	admissions []string
	kicks      []string
}

func (h *hooks) config(cfg rooms.Config) rooms.Config {
	cfg.OnAdmission = func(room, guest, linkID, by string, admitted bool) {
		h.mu.Lock()
		defer h.mu.Unlock()
		verdict := "refused"
		if admitted {
			verdict = "admitted"
		}
		h.admissions = append(h.admissions, room+" "+guest+" "+linkID+" "+by+" "+verdict)
	}
	cfg.OnKicked = func(room, name, kind, id string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.kicks = append(h.kicks, room+" "+name+" "+kind+" "+id)
	}
	return cfg
}

func (h *hooks) take() (admissions, kicks []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	admissions, kicks, h.admissions, h.kicks = h.admissions, h.kicks, nil, nil
	return admissions, kicks
}

func (fx *fixture) guestLink(t *testing.T, g rooms.GuestLink) (string, rooms.Link) {
	t.Helper()
	if g.Room == "" {
		g.Room = "main"
	}
	if g.TTL == 0 {
		g.TTL = time.Hour
	}
	plain, l, err := rooms.CreateGuestLink(context.Background(), fx.st, g, fx.now)
	if err != nil {
		t.Fatal(err)
	}
	return plain, l
}

// enter resolves a link and enters with it, deciding its rights in the
// link's room as signaling does.
func (fx *fixture) enter(t *testing.T, token, name string) (*rooms.Member, *rooms.Waiter, *fakePeer, error) {
	t.Helper()
	ctx := context.Background()
	p := newFakePeer()
	l, pr, err := fx.m.LinkCredential(ctx, token)
	if err != nil {
		return nil, nil, p, err
	}
	chain := []string{l.Scope}
	mem, w, err := fx.m.Enter(ctx, rooms.Entry{Room: l.Scope, Name: name, ReqID: "j-" + name, Peer: p, Principal: pr, Link: &l,
		Role: l.Role, Admitter: access.Decide(pr, access.RoomAdmit, chain) == nil, Can: rooms.Can(pr, chain), WatchOnly: pr.WatchOnly})
	return mem, w, p, err
}

// hostJoin seats a host (who may admit).
func (fx *fixture) hostJoin(t *testing.T, name string) (*rooms.Member, *fakePeer) {
	t.Helper()
	plain, _, err := rooms.CreateLink(context.Background(), fx.st, "main", rooms.RoleHost, "host", time.Hour, fx.now)
	if err != nil {
		t.Fatal(err)
	}
	mem, w, p, err := fx.enter(t, plain, name)
	if err != nil || w != nil {
		t.Fatalf("host join: %v (waiter %v)", err, w)
	}
	decode(t, p.next(t), protocol.TypeJoined, nil)
	return mem, p
}

func lobbyList(t *testing.T, p *fakePeer) []protocol.LobbyEntry {
	t.Helper()
	f := p.next(t)
	if f.Coalesce != "lobby-list" {
		t.Fatalf("lobby-list frame coalesce key %q", f.Coalesce)
	}
	var l protocol.LobbyList
	decode(t, f, protocol.TypeLobbyList, &l)
	return l.Waiting
}

func TestLobbyAdmit(t *testing.T) {
	var h hooks
	fx := newFixture(t, h.config(rooms.Config{}))
	ctx := context.Background()
	host, ph := fx.hostJoin(t, "Préfète")
	part, _, pp := fx.join(t, "main", "SDIS")
	ph.take()
	token, l := fx.guestLink(t, rooms.GuestLink{Label: "ARS", MaxUses: 1, Lobby: true, WatchOnly: true, CreatedBy: "Préfète"})

	mem, w, pg, err := fx.enter(t, token, "Dr Martin")
	if err != nil || mem != nil || w == nil {
		t.Fatalf("guest with a lobby link: member %v waiter %v err %v", mem, w, err)
	}
	var lobby protocol.Lobby
	if env := decode(t, pg.next(t), protocol.TypeLobby, &lobby); env.ID != "j-Dr Martin" || lobby.State != protocol.LobbyWaiting {
		t.Fatalf("guest got %+v (id %q)", lobby, env.ID)
	}
	pg.none(t) // nothing of the room: no members, no resume token
	list := lobbyList(t, ph)
	if len(list) != 1 || list[0].ID != w.ID || list[0].Name != "Dr Martin" || list[0].Label != "ARS" || !list[0].WatchOnly || list[0].Since == 0 {
		t.Fatalf("host's lobby list %+v", list)
	}
	pp.none(t) // a participant may not admit: it is not told
	if got, err := fx.st.LinkByHash(ctx, l.Hash); err != nil || got.Uses != 0 {
		t.Fatalf("waiting counted a use: %d, %v", got.Uses, err)
	}
	if n := len(fx.m.Members("main")); n != 2 {
		t.Fatalf("%d members while the guest waits", n)
	}
	if err := host.Admit(ctx, "nobody", true); !errors.Is(err, rooms.ErrNoWaiter) {
		t.Fatalf("admit an unknown guest: %v", err)
	}

	if err := host.Admit(ctx, w.ID, true); err != nil {
		t.Fatal(err)
	}
	var j protocol.Joined
	if env := decode(t, pg.next(t), protocol.TypeJoined, &j); env.ID != "j-Dr Martin" || j.ResumeToken == "" || j.Role != rooms.RoleGuest ||
		!j.WatchOnly || len(j.Peers) != 2 {
		t.Fatalf("admitted guest got %+v (id %q)", j, env.ID)
	}
	seat := w.Member()
	if seat == nil || seat.ID != j.PeerID || seat.LinkID != l.ID || seat.Principal.Kind != access.KindLink {
		t.Fatalf("waiter's seat %+v", seat)
	}
	if list := lobbyList(t, ph); len(list) != 0 {
		t.Fatalf("lobby after admission %+v", list)
	}
	var pi protocol.PeerInfo
	decode(t, ph.next(t), protocol.TypePeerJoined, &pi)
	if pi.ID != seat.ID || pi.State.Audio || pi.State.Video {
		t.Fatalf("peer-joined %+v: a watch-only guest starts without camera or microphone", pi)
	}
	decode(t, pp.next(t), protocol.TypePeerJoined, nil)
	if got, _ := fx.st.LinkByHash(ctx, l.Hash); got.Uses != 1 {
		t.Fatalf("admission counted %d uses, want 1", got.Uses)
	}
	if adm, _ := h.take(); len(adm) != 1 || adm[0] != "main Dr Martin "+l.ID+" Préfète admitted" {
		t.Fatalf("admission hook %q", adm)
	}
	if w.End() != seat {
		t.Fatal("End after admission must hand the seat over")
	}
	_ = part
}

func TestLobbyRefuseLeaveAndUsedUp(t *testing.T) {
	var h hooks
	fx := newFixture(t, h.config(rooms.Config{}))
	ctx := context.Background()
	host, ph := fx.hostJoin(t, "Préfète")
	token, l := fx.guestLink(t, rooms.GuestLink{Label: "mairie", MaxUses: 1, Lobby: true})

	_, w1, p1, _ := fx.enter(t, token, "Un")
	_, w2, p2, _ := fx.enter(t, token, "Deux")
	_, w3, p3, _ := fx.enter(t, token, "Trois")
	for _, p := range []*fakePeer{p1, p2, p3} {
		decode(t, p.next(t), protocol.TypeLobby, nil)
	}
	for n := 1; n <= 3; n++ {
		if got := lobbyList(t, ph); len(got) != n {
			t.Fatalf("lobby list %+v, want %d waiting", got, n)
		}
	}

	// Refused: error refused answering its join, final close 4507.
	if err := host.Admit(ctx, w1.ID, false); err != nil {
		t.Fatal(err)
	}
	var e protocol.Error
	if env := decode(t, p1.next(t), protocol.TypeError, &e); e.Code != protocol.ErrRefused || env.ID != "j-Un" {
		t.Fatalf("refused guest got %+v", e)
	}
	if p1.closeCode() != protocol.CloseRefused || protocol.ShouldReconnect(protocol.CloseRefused) {
		t.Fatalf("refused guest closed with %d", p1.closeCode())
	}
	if got := lobbyList(t, ph); len(got) != 2 {
		t.Fatalf("lobby after a refusal %+v", got)
	}
	// A guest who gives up disappears from the list.
	if w2.End() != nil {
		t.Fatal("a guest that left has no seat")
	}
	if got := lobbyList(t, ph); len(got) != 1 || got[0].ID != w3.ID {
		t.Fatalf("lobby after a guest left %+v", got)
	}
	if err := host.Admit(ctx, w2.ID, true); !errors.Is(err, rooms.ErrNoWaiter) {
		t.Fatalf("admit a guest that left: %v", err)
	}
	// Admitted once: the link's one use is gone, the next admission fails
	// and tells the guest.
	if err := host.Admit(ctx, w3.ID, true); err != nil {
		t.Fatal(err)
	}
	decode(t, p3.next(t), protocol.TypeJoined, nil)
	lobbyList(t, ph)
	decode(t, ph.next(t), protocol.TypePeerJoined, nil)
	_, w4, p4, err := fx.enter(t, token, "Quatre")
	if !errors.Is(err, rooms.ErrLinkUsedUp) || w4 != nil {
		t.Fatalf("a used-up link still waits: %v", err)
	}
	p4.none(t)
	adm, _ := h.take()
	if len(adm) != 2 || adm[0] != "main Un "+l.ID+" Préfète refused" || adm[1] != "main Trois "+l.ID+" Préfète admitted" {
		t.Fatalf("admission hook %q", adm)
	}

	// Two waiting on a link of one use: the second admission fails.
	token2, _ := fx.guestLink(t, rooms.GuestLink{Label: "x", MaxUses: 1, Lobby: true})
	_, wa, pa, _ := fx.enter(t, token2, "A")
	_, wb, pb, _ := fx.enter(t, token2, "B")
	lobbyList(t, ph)
	lobbyList(t, ph)
	if err := host.Admit(ctx, wa.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := host.Admit(ctx, wb.ID, true); !errors.Is(err, rooms.ErrLinkUsedUp) {
		t.Fatalf("second admission on a one-use link: %v", err)
	}
	decode(t, pa.next(t), protocol.TypeLobby, nil)
	decode(t, pa.next(t), protocol.TypeJoined, nil)
	decode(t, pb.next(t), protocol.TypeLobby, nil)
	if env := decode(t, pb.next(t), protocol.TypeError, &e); e.Code != protocol.ErrLinkUsedUp || env.ID != "j-B" || pb.closeCode() != protocol.CloseBadToken {
		t.Fatalf("guest of a used-up link got %+v, close %d", e, pb.closeCode())
	}
}

func TestRevokeLinkKicks(t *testing.T) {
	var h hooks
	fx := newFixture(t, h.config(rooms.Config{ResumeWindow: time.Minute}))
	ctx := context.Background()
	host, ph := fx.hostJoin(t, "Préfète")
	token, l := fx.guestLink(t, rooms.GuestLink{Label: "ARS", MaxUses: 5})
	guest, _, pg, err := fx.enter(t, token, "Dr Martin")
	if err != nil {
		t.Fatal(err)
	}
	var j protocol.Joined
	decode(t, pg.next(t), protocol.TypeJoined, &j)
	decode(t, ph.next(t), protocol.TypePeerJoined, nil)
	lobbyToken, lobbyLink := fx.guestLink(t, rooms.GuestLink{Label: "ARS", MaxUses: 5, Lobby: true})
	_, _, pw, _ := fx.enter(t, lobbyToken, "waiting")
	decode(t, pw.next(t), protocol.TypeLobby, nil)
	lobbyList(t, ph)
	// Another guest of the same link, away within its resume window.
	away, _, pa, err := fx.enter(t, token, "away")
	if err != nil {
		t.Fatal(err)
	}
	var ja protocol.Joined
	decode(t, pa.next(t), protocol.TypeJoined, &ja)
	decode(t, ph.next(t), protocol.TypePeerJoined, nil)
	decode(t, pg.next(t), protocol.TypePeerJoined, nil)
	away.Detach(pa)

	start := time.Now()
	if err := fx.m.RevokeLink(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	var e protocol.Error
	f := pg.next(t)
	// The other guest of the link may be sent away first (the kicks go
	// in map order): its departure may reach this one before its own end.
	for strings.Contains(string(f.Data), `"type":"peer-left"`) {
		f = pg.next(t)
	}
	decode(t, f, protocol.TypeError, &e)
	if e.Code != protocol.ErrRevoked || pg.closeCode() != protocol.CloseRevoked {
		t.Fatalf("revoked guest got %+v, close %d", e, pg.closeCode())
	}
	t.Logf("kicked %s after the revocation began", time.Since(start))
	gone := map[string]bool{}
	for range 2 {
		var left protocol.PeerLeft
		decode(t, ph.next(t), protocol.TypePeerLeft, &left)
		gone[left.ID] = true
	}
	if !gone[guest.ID] || !gone[away.ID] {
		t.Fatalf("host saw %v leave, want the guest and the away one", gone)
	}
	for _, tok := range []string{j.ResumeToken, ja.ResumeToken} {
		if _, _, err := fx.m.Resume(tok, "", newFakePeer()); !errors.Is(err, rooms.ErrSessionGone) {
			t.Fatalf("resume after revocation: %v", err)
		}
	}
	if _, _, p, err := fx.enter(t, token, "again"); !errors.Is(err, rooms.ErrTokenInvalid) {
		t.Fatalf("join with a revoked link: %v", err)
	} else {
		p.none(t)
	}
	if _, kicks := h.take(); len(kicks) != 2 {
		t.Fatalf("kick hook %q, want the two guests", kicks)
	}
	pw.none(t) // another link's guest waits on
	if len(fx.m.Members("main")) != 1 {
		t.Fatalf("members %+v", fx.m.Members("main"))
	}

	// A waiter is kicked too, and leaves the list.
	if err := fx.m.RevokeLink(ctx, lobbyLink.ID); err != nil {
		t.Fatal(err)
	}
	if env := decode(t, pw.next(t), protocol.TypeError, &e); e.Code != protocol.ErrRevoked || env.ID != "j-waiting" || pw.closeCode() != protocol.CloseRevoked {
		t.Fatalf("revoked waiter got %+v, close %d", e, pw.closeCode())
	}
	if got := lobbyList(t, ph); len(got) != 0 {
		t.Fatalf("lobby after revocation %+v", got)
	}
	if err := fx.m.RevokeLink(ctx, "unknown"); !errors.Is(err, rooms.ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	_ = host
}

func TestKickPrincipal(t *testing.T) {
	fx := newFixture(t, rooms.Config{})
	ctx := context.Background()
	staff := &access.Principal{Kind: access.KindSession, ID: "u1", Name: "Préfète", Roles: map[string]access.Role{"main": access.Operator}}
	p := newFakePeer()
	mem, _, err := fx.m.Enter(ctx, rooms.Entry{Room: "main", Name: "Préfète", Peer: p, Principal: staff, Role: "operator"})
	if err != nil {
		t.Fatal(err)
	}
	decode(t, p.next(t), protocol.TypeJoined, nil)
	other, _, po := fx.join(t, "main", "SDIS")
	decode(t, p.next(t), protocol.TypePeerJoined, nil)
	var heard []string
	fx.m.WatchKicks(func(kind, id string) { heard = append(heard, kind+":"+id) })

	if n := fx.m.KickPrincipal(access.KindSession, "u2"); n != 0 {
		t.Fatalf("kicked %d for another user", n)
	}
	if n := fx.m.KickPrincipal(access.KindSession, "u1"); n != 1 || p.closeCode() != protocol.CloseRevoked {
		t.Fatalf("kicked %d, close %d", n, p.closeCode())
	}
	var left protocol.PeerLeft
	decode(t, po.next(t), protocol.TypePeerLeft, &left)
	if left.ID != mem.ID || len(heard) != 2 || heard[1] != "session:u1" {
		t.Fatalf("left %+v, hooks heard %v", left, heard)
	}
	// A user logged out may log in and join again at once.
	p2 := newFakePeer()
	if _, _, err := fx.m.Enter(ctx, rooms.Entry{Room: "main", Name: "Préfète", Peer: p2, Principal: staff, Role: "operator"}); err != nil {
		t.Fatalf("join after a logout everywhere: %v", err)
	}
	_ = other
}

func TestLinkCredential(t *testing.T) {
	fx := newFixture(t, rooms.Config{})
	ctx := context.Background()
	token, l := fx.guestLink(t, rooms.GuestLink{Label: "ARS", MaxUses: 1, WatchOnly: true})
	got, p, err := fx.m.LinkCredential(ctx, token)
	if err != nil || got.ID != l.ID || p.Kind != access.KindLink || p.ID != l.ID || !p.WatchOnly || p.Roles["main"] != access.Guest {
		t.Fatalf("credential %+v %+v %v", got, p, err)
	}
	if access.Decide(p, access.RoomJoin, []string{"main"}) != nil || access.Decide(p, access.RoomSend, []string{"main"}) == nil ||
		access.Decide(p, access.RoomJoin, []string{"other"}) == nil {
		t.Fatal("a watch-only guest joins its room only, without sending")
	}
	if _, _, err := fx.m.LinkCredential(ctx, token+"x"); !errors.Is(err, rooms.ErrTokenInvalid) {
		t.Fatalf("forged: %v", err)
	}
	if _, _, _, err := fx.enter(t, token, "one"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := fx.m.LinkCredential(ctx, token); !errors.Is(err, rooms.ErrLinkUsedUp) {
		t.Fatalf("used up: %v", err)
	}
}
