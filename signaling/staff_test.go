package signaling_test

// Staff on the socket: a principal resolved at the upgrade (the lead's
// session cookie; here a test header) joins a room by name, with the
// roles it holds in the room's event or its ancestors (EventChain); a
// logout everywhere closes its sockets.

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"crisisroom/access"
	"crisisroom/protocol"
	"crisisroom/rooms"
	"crisisroom/signaling"
	"crisisroom/store/sqlite"
)

type staffEnv struct {
	t  *testing.T
	m  *rooms.Manager
	ws string
}

var staff = map[string]*access.Principal{
	"op":   {Kind: access.KindSession, ID: "u-op", Name: "Préfète", Roles: map[string]access.Role{"main": access.Operator}},
	"part": {Kind: access.KindSession, ID: "u-part", Name: "SDIS", Roles: map[string]access.Role{"main": access.Participant}},
	"obs":  {Kind: access.KindSession, ID: "u-obs", Name: "Écran", Roles: map[string]access.Role{"main": access.Observer}},
}

func staffStart(t *testing.T) *staffEnv {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "staff.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, r := range []string{"main", "crue-tactique"} {
		if _, err := st.CreateRoom(ctx, rooms.RoomInfo{Name: r, Title: r, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.DiscardHandler)
	m := rooms.NewManager(rooms.Config{}, st, log)
	s := signaling.New(signaling.Config{
		Authenticate: func(r *http.Request) *access.Principal { return staff[r.Header.Get("X-Test-User")] },
		EventChain: func(room string) []string {
			if room == "crue-tactique" {
				return []string{room, "main"}
			}
			return []string{room}
		},
	}, m, log)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		m.Shutdown()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return &staffEnv{t: t, m: m, ws: "ws" + strings.TrimPrefix(srv.URL, "http")}
}

func (e *staffEnv) dial(user string) *biClient {
	e.t.Helper()
	hdr := http.Header{}
	if user != "" {
		hdr.Set("X-Test-User", user)
	}
	ws, _, err := websocket.DefaultDialer.Dial(e.ws, hdr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { ws.Close() })
	return &biClient{t: e.t, ws: ws, name: user}
}

// joinRoom joins room with the socket's session.
func (c *biClient) joinRoom(room, name string) protocol.Joined {
	c.t.Helper()
	c.name = name
	id := c.send(protocol.TypeJoin, protocol.Join{Room: room, Name: name})
	var j protocol.Joined
	if env := c.expect(protocol.TypeJoined, &j); env.ID != id || j.Room != room || j.ResumeToken == "" {
		c.t.Fatalf("%s: joined %+v (id %q)", name, j, env.ID)
	}
	c.id, c.resume = j.PeerID, j.ResumeToken
	return j
}

func TestStaffJoinWithSession(t *testing.T) {
	e := staffStart(t)
	op := e.dial("op")
	// An operator of main is one in its sub-event's room too.
	j := op.joinRoom("crue-tactique", "Préfète")
	if j.Role != string(access.Operator) || !slices.Contains(j.Can, "room.admit") || !slices.Contains(j.Can, "room.present") {
		t.Fatalf("operator joined as %+v", j)
	}
	part := e.dial("part")
	jp := part.joinRoom("crue-tactique", "SDIS")
	if jp.Role != string(access.Participant) || slices.Contains(jp.Can, "room.admit") {
		t.Fatalf("participant joined as %+v", jp)
	}
	op.expect(protocol.TypePeerJoined, nil)
	part.expectError(protocol.ErrForbidden, part.send(protocol.TypePresenter, protocol.Presenter{Take: true}))
	op.send(protocol.TypePresenter, protocol.Presenter{Take: true})
	op.expect(protocol.TypePresenter, nil)
	part.expect(protocol.TypePresenter, nil)
	biAlive(t, op, part)

	// An observer may not take a seat: told so, its socket stays open for
	// what it may do (the map; the log it may not read).
	obs := e.dial("obs")
	obs.name = "obs"
	obs.expectError(protocol.ErrForbidden, obs.send(protocol.TypeJoin, protocol.Join{Room: "main", Name: "Écran"}))
	obs.expectError(protocol.ErrUnavailable, obs.send(protocol.TypeSubscribe, protocol.Subscribe{Topic: protocol.TopicMap})) // allowed; this server has no map
	obs.expectError(protocol.ErrForbidden, obs.send(protocol.TypeSubscribe, protocol.Subscribe{Topic: protocol.TopicLog, Room: "main"}))

	// Nobody: no session, no token.
	anon := e.dial("")
	anon.name = "anonymous"
	id := anon.send(protocol.TypeJoin, protocol.Join{Room: "main", Name: "x"})
	anon.expectRefused(protocol.ErrBadToken, id, protocol.CloseBadToken)
	// A room that does not exist.
	ghost := e.dial("op")
	ghost.name = "ghost"
	ghost.expectError(protocol.ErrForbidden, ghost.send(protocol.TypeJoin, protocol.Join{Room: "nowhere", Name: "x"}))
}

// TestLogoutEverywhereClosesSockets: kicking a user's sessions ends its
// seat and its other sockets, with 4508; others carry on.
func TestLogoutEverywhereClosesSockets(t *testing.T) {
	e := staffStart(t)
	op, part := e.dial("op"), e.dial("part")
	op.joinRoom("main", "Préfète")
	part.joinRoom("main", "SDIS")
	op.expect(protocol.TypePeerJoined, nil)
	idle := e.dial("op") // the same user's other tab, in no room
	idle.name = "idle tab"
	idle.expectError(protocol.ErrNotJoined, idle.send(protocol.TypeChat, protocol.Chat{Text: "x"}))

	start := time.Now()
	if n := e.m.KickPrincipal(access.KindSession, "u-op"); n != 1 {
		t.Fatalf("kicked %d seats, want 1", n)
	}
	for _, c := range []*biClient{op, idle} {
		frames, code := c.readToClose()
		if code != protocol.CloseRevoked || len(frames) != 2 || frames[0].Type != protocol.TypeError || frames[1].Type != protocol.TypeBye {
			t.Fatalf("%s: %v then %d, want revoked, bye, 4508", c.name, frames, code)
		}
	}
	t.Logf("sockets closed %s after the logout", time.Since(start))
	var left protocol.PeerLeft
	part.expect(protocol.TypePeerLeft, &left)
	if left.ID != op.id {
		t.Fatalf("peer-left %+v", left)
	}
	biAlive(t, part)
}
