package signaling_test

// Access on the socket: guest links (expiry, uses, lobby, watch-only),
// revocation kicking a connected guest, and every message decided by
// access.Decide. Real server on loopback (biStart), raw clients, and pion
// peers where media matters.

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"crisisroom/app"
	"crisisroom/protocol"
	"crisisroom/rooms"
	"crisisroom/rtcpeer"
)

// guestToken mints a guest link of the main room (an hour, unless g says).
func (e *biEnv) guestToken(g rooms.GuestLink, at time.Time) (string, rooms.Link) {
	e.t.Helper()
	if g.Room == "" {
		g.Room = app.MainRoom
	}
	if g.TTL == 0 {
		g.TTL = time.Hour
	}
	if g.MaxUses == 0 {
		g.MaxUses = 1
	}
	plain, l, err := rooms.CreateGuestLink(context.Background(), e.be.Store, g, at)
	if err != nil {
		e.t.Fatal(err)
	}
	return plain, l
}

// expectRefused reads the answer to a refused request: an error with
// code, echoing ref, then the bye and the final close.
func (c *biClient) expectRefused(code, ref string, closeCode int) {
	c.t.Helper()
	frames, got := c.readToClose()
	if got != closeCode || len(frames) != 2 || frames[0].Type != protocol.TypeError || frames[1].Type != protocol.TypeBye {
		c.t.Fatalf("%s: closed with %d after %v, want an error, a bye and %d", c.name, got, frames, closeCode)
	}
	var e protocol.Error
	if err := json.Unmarshal(frames[0].Data, &e); err != nil || e.Code != code || e.Ref != ref || frames[0].ID != ref {
		c.t.Fatalf("%s: error %s (id %q), want %s for %q", c.name, frames[0].Data, frames[0].ID, code, ref)
	}
	if protocol.ShouldReconnect(got) {
		c.t.Fatalf("%s: close %d invites a reconnection", c.name, got)
	}
}

func TestGuestLinkExpiry(t *testing.T) {
	e := biStart(t, nil)
	host := e.dial()
	host.join(e.hostToken(app.MainRoom), "Préfète")
	expired, _ := e.guestToken(rooms.GuestLink{Label: "old", TTL: time.Hour}, time.Now().Add(-time.Hour-time.Second))
	live, _ := e.guestToken(rooms.GuestLink{Label: "new", TTL: time.Hour}, time.Now())

	g := e.dial()
	g.name = "late guest"
	id := g.send(protocol.TypeJoin, protocol.Join{Token: expired, Name: "late guest"})
	g.expectRefused(protocol.ErrTokenExpired, id, protocol.CloseTokenExpired)

	ok := e.dial()
	j := ok.join(live, "guest")
	if j.Role != rooms.RoleGuest || slices.Contains(j.Can, "room.admit") || slices.Contains(j.Can, "room.present") ||
		!slices.Contains(j.Can, "room.send") || j.WatchOnly {
		t.Fatalf("guest joined as %+v", j)
	}
	host.expect(protocol.TypePeerJoined, nil)
	biAlive(t, host, ok)
}

func TestGuestLinkMaxUses(t *testing.T) {
	e := biStart(t, nil)
	tok, l := e.guestToken(rooms.GuestLink{Label: "ARS", MaxUses: 2}, time.Now())
	a, b := e.dial(), e.dial()
	a.join(tok, "one")
	b.join(tok, "two")
	a.expect(protocol.TypePeerJoined, nil)
	b.send(protocol.TypeLeave, nil) // leaving gives no use back
	b.expectClose(protocol.CloseLeft)
	a.expect(protocol.TypePeerLeft, nil)

	c := e.dial()
	c.name = "three"
	id := c.send(protocol.TypeJoin, protocol.Join{Token: tok, Name: "three"})
	c.expectRefused(protocol.ErrLinkUsedUp, id, protocol.CloseBadToken)
	links, err := e.be.Store.Links(context.Background(), app.MainRoom)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(links, func(got rooms.Link) bool { return got.ID == l.ID && got.Uses == 2 }) {
		t.Fatalf("links %+v: want %s used twice", links, l.ID)
	}
	biAlive(t, a)
}

func TestGuestLobbyAdmit(t *testing.T) {
	e := biStart(t, nil)
	host, part := e.dial(), e.dial()
	host.join(e.hostToken(app.MainRoom), "Préfète")
	part.join(e.token(app.MainRoom), "SDIS")
	host.expect(protocol.TypePeerJoined, nil)
	tok, l := e.guestToken(rooms.GuestLink{Label: "ARS Bretagne", MaxUses: 1, Lobby: true}, time.Now())

	g := e.dial()
	g.name = "Dr Martin"
	jid := g.send(protocol.TypeJoin, protocol.Join{Token: tok, Name: "Dr Martin"})
	var lob protocol.Lobby
	if env := g.expect(protocol.TypeLobby, &lob); env.ID != jid || lob.State != protocol.LobbyWaiting {
		t.Fatalf("guest got lobby %+v (id %q)", lob, env.ID)
	}
	var list protocol.LobbyList
	host.expect(protocol.TypeLobbyList, &list)
	if len(list.Waiting) != 1 || list.Waiting[0].Name != "Dr Martin" || list.Waiting[0].Label != "ARS Bretagne" || list.Waiting[0].Since == 0 {
		t.Fatalf("host's lobby %+v", list)
	}
	waiting := list.Waiting[0].ID

	// While it waits the guest gets nothing of the room and can do nothing.
	biAlive(t, part, host) // the chat does not reach the guest
	for _, try := range []struct {
		typ  string
		data any
		code string
	}{
		{protocol.TypeChat, protocol.Chat{Text: "hello?"}, protocol.ErrNotJoined},
		{protocol.TypeSubscribe, protocol.Subscribe{Topic: protocol.TopicMap, Token: tok}, protocol.ErrBadToken},
		{protocol.TypeSubscribe, protocol.Subscribe{Topic: protocol.TopicLog, Token: tok}, protocol.ErrBadToken},
		{protocol.TypeJoin, protocol.Join{Token: tok, Name: "again"}, protocol.ErrAlreadyJoined},
		{protocol.TypeAdmit, protocol.Admit{ID: waiting, Allow: true}, protocol.ErrNotJoined},
	} {
		g.expectError(try.code, g.send(try.typ, try.data))
	}
	// A participant may not admit.
	part.expectError(protocol.ErrForbidden, part.send(protocol.TypeAdmit, protocol.Admit{ID: waiting, Allow: true}))
	host.expectError(protocol.ErrNotFound, host.send(protocol.TypeAdmit, protocol.Admit{ID: "nobody", Allow: true}))

	host.send(protocol.TypeAdmit, protocol.Admit{ID: waiting, Allow: true})
	var j protocol.Joined
	if env := g.expect(protocol.TypeJoined, &j); env.ID != jid || j.ResumeToken == "" || j.Resumed || len(j.Peers) != 2 || j.Role != rooms.RoleGuest {
		t.Fatalf("admitted guest got %+v (id %q)", j, env.ID)
	}
	g.id, g.resume = j.PeerID, j.ResumeToken
	host.expect(protocol.TypeLobbyList, &list)
	if len(list.Waiting) != 0 {
		t.Fatalf("lobby after admission %+v", list)
	}
	host.expect(protocol.TypePeerJoined, nil)
	part.expect(protocol.TypePeerJoined, nil)
	biAlive(t, g, host, part)
	biAlive(t, host, part, g)
	if links, _ := e.be.Store.Links(context.Background(), app.MainRoom); !slices.ContainsFunc(links, func(x rooms.Link) bool { return x.ID == l.ID && x.Uses == 1 }) {
		t.Fatalf("admission did not count one use: %+v", links)
	}

	// The link's one use is spent: the next guest is refused at once.
	g2 := e.dial()
	g2.name = "second"
	id := g2.send(protocol.TypeJoin, protocol.Join{Token: tok, Name: "second"})
	g2.expectRefused(protocol.ErrLinkUsedUp, id, protocol.CloseBadToken)
}

func TestGuestLobbyRefuseAndLeave(t *testing.T) {
	e := biStart(t, nil)
	host := e.dial()
	host.join(e.hostToken(app.MainRoom), "Préfète")
	tok, _ := e.guestToken(rooms.GuestLink{Label: "mairie", MaxUses: 5, Lobby: true}, time.Now())

	g := e.dial()
	g.name = "refused"
	jid := g.send(protocol.TypeJoin, protocol.Join{Token: tok, Name: "refused"})
	g.expect(protocol.TypeLobby, nil)
	var list protocol.LobbyList
	host.expect(protocol.TypeLobbyList, &list)
	host.send(protocol.TypeAdmit, protocol.Admit{ID: list.Waiting[0].ID, Allow: false})
	g.expectRefused(protocol.ErrRefused, jid, protocol.CloseRefused)
	host.expect(protocol.TypeLobbyList, &list)
	if len(list.Waiting) != 0 {
		t.Fatalf("lobby after a refusal %+v", list)
	}

	// A guest who closes its page leaves the list.
	q := e.dial()
	q.send(protocol.TypeJoin, protocol.Join{Token: tok, Name: "quitter"})
	q.expect(protocol.TypeLobby, nil)
	host.expect(protocol.TypeLobbyList, &list)
	if len(list.Waiting) != 1 {
		t.Fatalf("lobby %+v", list)
	}
	q.ws.Close()
	host.expect(protocol.TypeLobbyList, &list)
	if len(list.Waiting) != 0 {
		t.Fatalf("lobby after the guest left %+v", list)
	}
	// One who says leave too.
	l := e.dial()
	l.send(protocol.TypeJoin, protocol.Join{Token: tok, Name: "leaver"})
	l.expect(protocol.TypeLobby, nil)
	host.expect(protocol.TypeLobbyList, &list)
	l.send(protocol.TypeLeave, nil)
	l.expectClose(protocol.CloseLeft)
	host.expect(protocol.TypeLobbyList, &list)
	if len(list.Waiting) != 0 {
		t.Fatalf("lobby after leave %+v", list)
	}
	biAlive(t, host)
}

// TestRevocationKicksConnectedGuest: a pion guest in a call with a pion
// host; revoking its link closes its socket with 4508 (measured), the host
// sees it leave, and its resume token is dead.
func TestRevocationKicksConnectedGuest(t *testing.T) {
	e := biStart(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), itTimeout)
	defer cancel()
	tok, l := e.guestToken(rooms.GuestLink{Label: "ARS", MaxUses: 1}, time.Now())
	dial := func(token, name string) *rtcpeer.Client {
		c, err := rtcpeer.Dial(ctx, rtcpeer.Options{URL: e.srv.URL, Token: token, Name: name, Config: rtcpeer.Config{Settings: itSettings()}})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	host := dial(e.hostToken(app.MainRoom), "Préfète")
	guest := dial(tok, "Dr Martin")
	itMeshUp(ctx, t, []*rtcpeer.Client{host, guest})

	start := time.Now()
	if err := e.a.Rooms.RevokeLink(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	closed, err := guest.WaitEvent(ctx, rtcpeer.EventSocketClosed, "", "4508")
	if err != nil {
		t.Fatalf("%v\n%s", err, itTimeline(guest))
	}
	t.Logf("revocation kicked the connected guest in %s", closed.At.Sub(start))
	if ev, ok := guest.Last(rtcpeer.EventError, ""); !ok || ev.Detail != protocol.ErrRevoked {
		t.Fatalf("guest's last error %+v, want revoked", ev)
	}
	if _, err := host.WaitEvent(ctx, rtcpeer.EventPeerLeft, guest.PeerID(), ""); err != nil {
		t.Fatal(err)
	}
	err = guest.Resume(ctx)
	if re, ok := err.(*rtcpeer.RefusedError); !ok || re.Code != protocol.ErrResumeFailed {
		t.Fatalf("resume after revocation: %v", err)
	}
	if n := len(e.a.Rooms.Members(app.MainRoom)); n != 1 {
		t.Fatalf("%d members after the kick, want the host", n)
	}
}

// TestRevocationKicksLobbyGuest: a guest waiting in the lobby is sent away
// too, and leaves the host's list.
func TestRevocationKicksLobbyGuest(t *testing.T) {
	e := biStart(t, nil)
	host := e.dial()
	host.join(e.hostToken(app.MainRoom), "Préfète")
	tok, l := e.guestToken(rooms.GuestLink{Label: "ARS", MaxUses: 1, Lobby: true}, time.Now())
	g := e.dial()
	g.name = "waiting"
	jid := g.send(protocol.TypeJoin, protocol.Join{Token: tok, Name: "waiting"})
	g.expect(protocol.TypeLobby, nil)
	host.expect(protocol.TypeLobbyList, nil)
	if err := e.a.Rooms.RevokeLink(context.Background(), l.ID); err != nil {
		t.Fatal(err)
	}
	g.expectRefused(protocol.ErrRevoked, jid, protocol.CloseRevoked)
	var list protocol.LobbyList
	host.expect(protocol.TypeLobbyList, &list)
	if len(list.Waiting) != 0 {
		t.Fatalf("lobby after revocation %+v", list)
	}
	biAlive(t, host)
}

// A watch-only guest's SDP must not send media.
func TestWatchOnlyGuestMaySendNoMedia(t *testing.T) {
	e := biStart(t, nil)
	host := e.dial()
	host.join(e.hostToken(app.MainRoom), "Préfète")
	tok, _ := e.guestToken(rooms.GuestLink{Label: "observateur ARS", WatchOnly: true}, time.Now())
	g := e.dial()
	j := g.join(tok, "watcher")
	if !j.WatchOnly || slices.Contains(j.Can, "room.send") || slices.Contains(j.Can, "room.annotate") || !slices.Contains(j.Can, "room.chat") {
		t.Fatalf("watch-only guest joined with %+v", j)
	}
	var pi protocol.PeerInfo
	host.expect(protocol.TypePeerJoined, &pi)
	if pi.State.Audio || pi.State.Video {
		t.Fatalf("a watch-only guest shows as %+v", pi.State)
	}
	head := "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
	sends := head + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=recvonly\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=sendrecv\r\n"
	id := g.send(protocol.TypeOffer, protocol.SDP{To: host.id, SDP: sends})
	var pe protocol.Error
	g.expect(protocol.TypeError, &pe)
	if pe.Code != protocol.ErrForbidden || pe.Ref != id || !strings.Contains(pe.Message, "watch-only") || !strings.Contains(pe.Message, "video") {
		t.Fatalf("sending offer answered %+v", pe)
	}
	id = g.send(protocol.TypeAnswer, protocol.SDP{To: host.id, SDP: head + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendonly\r\n"})
	g.expectError(protocol.ErrForbidden, id)
	// What a line matcher read as receive-only is refused, and says why.
	video := "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n"
	for name, bad := range map[string]string{
		"two directions":       head + video + "a=sendrecv\r\na=recvonly\r\n",
		"upper-case direction": head + video + "a=recvonly\r\na=SENDRECV\r\n",
		"CR-only line ends":    strings.ReplaceAll(head+video+"a=sendrecv\r\n", "\r\n", "\r"),
	} {
		id := g.send(protocol.TypeOffer, protocol.SDP{To: host.id, SDP: bad})
		var pe protocol.Error
		g.expect(protocol.TypeError, &pe)
		if pe.Ref != id || pe.Code != protocol.ErrInvalid || !strings.Contains(pe.Message, "watch-only") {
			t.Fatalf("%s: answered %+v", name, pe)
		}
	}
	// Receiving only is fine, and reaches the host.
	recv := head + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=recvonly\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=inactive\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
	g.send(protocol.TypeOffer, protocol.SDP{To: host.id, SDP: recv})
	var sdp protocol.SDP
	host.expect(protocol.TypeOffer, &sdp)
	if sdp.From != g.id || sdp.SDP != recv {
		t.Fatalf("host got %+v", sdp)
	}
	// The host, who may send, is not checked.
	host.send(protocol.TypeAnswer, protocol.SDP{To: g.id, SDP: sends})
	g.expect(protocol.TypeAnswer, nil)
	biAlive(t, g, host)
}

// TestParticipantDenied: rights the participant's role lacks are refused
// with forbidden, and the socket stays open.
func TestParticipantDenied(t *testing.T) {
	e := biStart(t, nil)
	cs := e.joinRoom(app.MainRoom, "SDIS", "Gendarmerie")
	a, b := cs[0], cs[1]
	for _, try := range []struct {
		typ  string
		data any
	}{
		{protocol.TypePresenter, protocol.Presenter{Take: true}},
		{protocol.TypeAdmit, protocol.Admit{ID: "anyone", Allow: true}},
		{protocol.TypeMapView, protocol.MapView{Zoom: 3}},
	} {
		// From the access rule itself, not from the handler's own checks
		// (a participant's map-view would be refused as "not the presenter").
		if msg := a.expectError(protocol.ErrForbidden, a.send(try.typ, try.data)); !strings.Contains(msg, "not allowed for your role") {
			t.Errorf("%s refused with %q, want the access rule's refusal", try.typ, msg)
		}
	}
	biAlive(t, a, b)
}

// TestMapWatchWithoutJoining: a socket that has not joined watches the map
// only with a live room link; a guest link (whose lobby it would skip) and
// forged tokens are refused.
func TestMapWatchWithoutJoining(t *testing.T) {
	e := mapEnv(t)
	w := e.dial()
	w.name = "wall"
	guest, _ := e.guestToken(rooms.GuestLink{Label: "ARS", Lobby: true}, time.Now())
	for _, tok := range []string{"", "forged-token", guest} {
		w.expectError(protocol.ErrBadToken, w.send(protocol.TypeSubscribe, protocol.Subscribe{Topic: protocol.TopicMap, Token: tok}))
	}
	w.expectError(protocol.ErrUnknownTopic, w.send(protocol.TypeSubscribe, protocol.Subscribe{Topic: "weather", Token: e.token(app.MainRoom)}))
	w.send(protocol.TypeSubscribe, protocol.Subscribe{Topic: protocol.TopicMap, Token: e.token(app.MainRoom)})
	w.expect("map-snapshot", nil)
}
