package signaling_test

// Hardening tests: bad, hostile or merely unlucky clients against the real
// server (app.OpenBackends + app.New + httptest), with raw WebSocket
// clients. Every case checks the exact error and close code, then that the
// rest of the room still works.
//
// Helper names carry a "bi" prefix: other test files of this package are
// written in parallel and must not collide with them.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"crisisroom/app"
	"crisisroom/protocol"
	"crisisroom/rooms"
	"crisisroom/signaling"
	"crisisroom/store/sqlite"
)

const biWait = 5 * time.Second // any single expected frame comes well within this

type biEnv struct {
	t   *testing.T
	a   *app.App
	be  *app.Backends
	srv *httptest.Server
	ws  string // ws:// URL of the endpoint
}

// biStart builds and serves the whole application on loopback; mod adjusts
// the configuration before app.New.
func biStart(t *testing.T, mod func(*app.Config)) *biEnv {
	t.Helper()
	ctx := context.Background()
	cfg := app.DefaultConfig()
	cfg.SFUUDP, cfg.SFUTCP = "127.0.0.1:0", "" // no fixed port: test processes run side by side
	cfg.RoomMode = "mesh"                      // these tests are about the mesh's signaling; the SFU has its own (app, e2e)
	cfg.DataDir = t.TempDir()
	if mod != nil {
		mod(&cfg)
	}
	be, err := app.OpenBackends(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	a, err := app.New(ctx, cfg, be, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := be.Store.CreateRoom(ctx, rooms.RoomInfo{Name: "other", Title: "Autre salle", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		// Ends every server-side socket before the store closes.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &biEnv{t: t, a: a, be: be, srv: srv, ws: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"}
}

// token mints a room link the way operators do and returns its secret.
func (e *biEnv) token(room string) string {
	e.t.Helper()
	u, err := e.a.NewRoomLink(context.Background(), room, rooms.RoleParticipant, "test", time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	_, tok, ok := strings.Cut(u, "#t=")
	if !ok || tok == "" {
		e.t.Fatalf("link %q has no token", u)
	}
	return tok
}

type biClient struct {
	t      *testing.T
	ws     *websocket.Conn
	name   string
	id     string // peer id once joined
	resume string
	seq    int
}

func (e *biEnv) dialWith(d *websocket.Dialer, hdr http.Header) (*biClient, *http.Response, error) {
	ws, resp, err := d.Dial(e.ws, hdr)
	if err != nil {
		return nil, resp, err
	}
	c := &biClient{t: e.t, ws: ws}
	e.t.Cleanup(func() { ws.Close() })
	return c, resp, nil
}

func (e *biEnv) dial() *biClient {
	e.t.Helper()
	c, _, err := e.dialWith(websocket.DefaultDialer, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// joinRoom connects n members to room; each earlier member sees each later
// one's peer-joined, so all queues are empty on return.
func (e *biEnv) joinRoom(room string, names ...string) []*biClient {
	e.t.Helper()
	var cs []*biClient
	for _, n := range names {
		c := e.dial()
		c.join(e.token(room), n)
		for _, o := range cs {
			var pi protocol.PeerInfo
			o.expect(protocol.TypePeerJoined, &pi)
			if pi.ID != c.id || pi.Name != n {
				e.t.Fatalf("%s saw peer-joined %+v, want %s", o.name, pi, n)
			}
		}
		cs = append(cs, c)
	}
	return cs
}

func (c *biClient) raw(kind int, b []byte) {
	c.t.Helper()
	if err := c.ws.WriteMessage(kind, b); err != nil {
		c.t.Fatalf("%s: write: %v", c.name, err)
	}
}

// send writes one envelope and returns its id.
func (c *biClient) send(typ string, data any) string {
	c.t.Helper()
	c.seq++
	id := fmt.Sprintf("%s-%d", typ, c.seq)
	raw, err := json.Marshal(data)
	if err != nil {
		c.t.Fatal(err)
	}
	b, _ := json.Marshal(protocol.Envelope{V: protocol.Version, Type: typ, ID: id, Data: raw})
	c.raw(websocket.TextMessage, b)
	return id
}

func (c *biClient) next() protocol.Envelope {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(biWait))
	kind, b, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatalf("%s: read: %v", c.name, err)
	}
	var env protocol.Envelope
	if kind != websocket.TextMessage || json.Unmarshal(b, &env) != nil || env.V != protocol.Version {
		c.t.Fatalf("%s: bad frame %d %q", c.name, kind, b)
	}
	return env
}

// expect reads the next frame, which must be of type typ, into data.
func (c *biClient) expect(typ string, data any) protocol.Envelope {
	c.t.Helper()
	env := c.next()
	if env.Type != typ {
		c.t.Fatalf("%s: got %s %s, want %s", c.name, env.Type, env.Data, typ)
	}
	if data != nil {
		if err := json.Unmarshal(env.Data, data); err != nil {
			c.t.Fatalf("%s: %s data %s: %v", c.name, typ, env.Data, err)
		}
	}
	return env
}

func (c *biClient) expectError(code, ref string) (message string) {
	c.t.Helper()
	var e protocol.Error
	env := c.expect(protocol.TypeError, &e)
	if e.Code != code || e.Ref != ref || env.ID != ref || e.Message == "" {
		c.t.Fatalf("%s: error %+v (id %q), want code %q ref %q", c.name, e, env.ID, code, ref)
	}
	return e.Message
}

// readToClose reads until the socket closes and returns the frames read
// and the close code (0 if the socket ended without a close frame).
func (c *biClient) readToClose() ([]protocol.Envelope, int) {
	c.t.Helper()
	var frames []protocol.Envelope
	_ = c.ws.SetReadDeadline(time.Now().Add(biWait))
	for {
		_, b, err := c.ws.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return frames, ce.Code
		}
		if err != nil {
			c.t.Logf("%s: socket ended without close frame: %v", c.name, err)
			return frames, 0
		}
		var env protocol.Envelope
		if err := json.Unmarshal(b, &env); err != nil {
			c.t.Fatalf("%s: bad frame %q", c.name, b)
		}
		frames = append(frames, env)
	}
}

// expectClose asserts that the next frames are a bye and a close frame,
// both with code.
func (c *biClient) expectClose(code int) {
	c.t.Helper()
	frames, got := c.readToClose()
	if got != code {
		c.t.Fatalf("%s: closed with %d, want %d (frames %v)", c.name, got, code, frames)
	}
	if len(frames) != 1 || frames[0].Type != protocol.TypeBye {
		c.t.Fatalf("%s: frames before close %v, want one bye", c.name, frames)
	}
	var bye protocol.Bye
	if err := json.Unmarshal(frames[0].Data, &bye); err != nil || bye.Code != code ||
		bye.Reconnect != protocol.ShouldReconnect(code) || bye.Reason == "" {
		c.t.Fatalf("%s: bye %s, want code %d", c.name, frames[0].Data, code)
	}
}

func (c *biClient) join(token, name string) protocol.Joined {
	c.t.Helper()
	c.name = name
	id := c.send(protocol.TypeJoin, protocol.Join{Token: token, Name: name})
	var j protocol.Joined
	env := c.expect(protocol.TypeJoined, &j)
	if env.ID != id || j.PeerID == "" || j.ResumeToken == "" || j.Resumed {
		c.t.Fatalf("%s: joined %+v (id %q)", name, j, env.ID)
	}
	c.id, c.resume = j.PeerID, j.ResumeToken
	return j
}

// alive proves the room works: from's chat is echoed to it and is the very
// next frame each of to receives (so nothing stray was queued before it).
func biAlive(t *testing.T, from *biClient, to ...*biClient) {
	t.Helper()
	text := fmt.Sprintf("still here %d", time.Now().UnixNano())
	id := from.send(protocol.TypeChat, protocol.Chat{Text: text})
	var echo protocol.Chat
	env := from.expect(protocol.TypeChat, &echo)
	if env.ID != id || echo.Text != text || echo.From != from.id || echo.Name != from.name || echo.At == 0 {
		t.Fatalf("%s: echo %+v (id %q)", from.name, echo, env.ID)
	}
	for _, c := range to {
		var got protocol.Chat
		env := c.expect(protocol.TypeChat, &got)
		if env.ID != "" || got != (protocol.Chat{From: from.id, Name: from.name, Text: text, At: echo.At}) {
			t.Fatalf("%s: chat %+v, want %+v", c.name, got, echo)
		}
	}
}

// expectLeft asserts that each witness hears that gone left.
func biExpectLeft(t *testing.T, gone *biClient, witnesses ...*biClient) {
	t.Helper()
	for _, w := range witnesses {
		var pl protocol.PeerLeft
		w.expect(protocol.TypePeerLeft, &pl)
		if pl.ID != gone.id {
			t.Fatalf("%s: peer-left %+v, want %s", w.name, pl, gone.id)
		}
	}
}

// TestBadMessagesAreAnswered: a joined member's mistakes get an error with
// the exact code and ref, and neither it nor the room is disturbed.
func TestBadMessagesAreAnswered(t *testing.T) {
	e := biStart(t, nil)
	cs := e.joinRoom(app.MainRoom, "A", "B")
	a, b := cs[0], cs[1]
	o := e.joinRoom("other", "O")[0]

	cases := []struct {
		name string
		kind int
		msg  string
		code string
		ref  string
	}{
		{"malformed JSON", websocket.TextMessage, `{"v":1,"type":"chat","data":`, protocol.ErrBadJSON, ""},
		{"not an object", websocket.TextMessage, `"hello"`, protocol.ErrBadJSON, ""},
		{"unknown type", websocket.TextMessage, `{"v":1,"type":"teleport","id":"u1"}`, protocol.ErrUnknownType, "u1"},
		{"server-only type", websocket.TextMessage, `{"v":1,"type":"peer-left","id":"u2","data":{"id":"x"}}`, protocol.ErrUnknownType, "u2"},
		{"wrong data type", websocket.TextMessage, `{"v":1,"type":"chat","id":"d1","data":{"text":7}}`, protocol.ErrBadJSON, "d1"},
		{"invalid payload", websocket.TextMessage, `{"v":1,"type":"chat","id":"i1","data":{"text":""}}`, protocol.ErrInvalid, "i1"},
		{"binary frame", websocket.BinaryMessage, `{"v":1,"type":"chat","data":{"text":"x"}}`, protocol.ErrInvalid, ""},
		{"join twice", websocket.TextMessage, `{"v":1,"type":"join","id":"j2","data":{"token":"` + e.token(app.MainRoom) + `","name":"A"}}`, protocol.ErrAlreadyJoined, "j2"},
		{"resume while joined", websocket.TextMessage, `{"v":1,"type":"resume","id":"r2","data":{"resume_token":"` + a.resume + `"}}`, protocol.ErrAlreadyJoined, "r2"},
		{"offer to unknown id", websocket.TextMessage, `{"v":1,"type":"offer","id":"o1","data":{"to":"nobody","sdp":"v=0"}}`, protocol.ErrUnknownPeer, "o1"},
		{"offer to self", websocket.TextMessage, `{"v":1,"type":"offer","id":"o2","data":{"to":"` + a.id + `","sdp":"v=0"}}`, protocol.ErrUnknownPeer, "o2"},
		{"offer to another room", websocket.TextMessage, `{"v":1,"type":"offer","id":"o3","data":{"to":"` + o.id + `","sdp":"v=0"}}`, protocol.ErrUnknownPeer, "o3"},
		{"candidate to another room", websocket.TextMessage, `{"v":1,"type":"candidate","id":"o4","data":{"to":"` + o.id + `","candidate":"c"}}`, protocol.ErrUnknownPeer, "o4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a.raw(tc.kind, []byte(tc.msg))
			a.expectError(tc.code, tc.ref)
			biAlive(t, a, b)
			biAlive(t, b, a)
		})
	}
	// The member of the other room received none of what was aimed at it:
	// had anything been relayed, it would be queued before this echo.
	biAlive(t, o)
	if got := len(e.a.Rooms.Members(app.MainRoom)); got != 2 {
		t.Fatalf("%d members in main, want 2", got)
	}
}

func TestNotJoined(t *testing.T) {
	e := biStart(t, nil)
	cs := e.joinRoom(app.MainRoom, "A", "B")
	x := e.dial()
	x.name = "X"
	id := x.send(protocol.TypeChat, protocol.Chat{Text: "hello?"})
	x.expectError(protocol.ErrNotJoined, id)
	id = x.send(protocol.TypeOffer, protocol.SDP{To: cs[0].id, SDP: "v=0"})
	x.expectError(protocol.ErrNotJoined, id)
	x.send(protocol.TypeLeave, nil)
	x.expectError(protocol.ErrNotJoined, "leave-3")
	// The socket is still good: it may join now.
	x.join(e.token(app.MainRoom), "X")
	for _, c := range cs {
		var pi protocol.PeerInfo
		c.expect(protocol.TypePeerJoined, &pi)
	}
	biAlive(t, cs[0], cs[1], x)
}

func TestWrongVersionCloses(t *testing.T) {
	e := biStart(t, nil)
	cs := e.joinRoom(app.MainRoom, "A", "B", "C")
	a, b, c := cs[0], cs[1], cs[2]
	a.raw(websocket.TextMessage, []byte(`{"v":2,"type":"chat","id":"v2","data":{"text":"x"}}`))
	a.expectError(protocol.ErrBadVersion, "v2")
	a.expectClose(protocol.CloseBadVersion)
	biExpectLeft(t, a, b, c) // a final close frees the seat at once
	biAlive(t, b, c)

	// A stale page whose very first message has another version.
	x := e.dial()
	x.raw(websocket.TextMessage, []byte(`{"type":"join","id":"1","data":{"token":"`+e.token(app.MainRoom)+`","name":"X"}}`))
	x.expectError(protocol.ErrBadVersion, "1")
	x.expectClose(protocol.CloseBadVersion)
	biAlive(t, c, b)
}

// TestOversizeFrame: over 64 KiB the socket is closed with 1009 by the
// WebSocket layer. That is not a final protocol close, so the seat is kept
// for the resume window and the member can come back.
func TestOversizeFrame(t *testing.T) {
	e := biStart(t, nil)
	cs := e.joinRoom(app.MainRoom, "A", "B", "C")
	a, b, c := cs[0], cs[1], cs[2]
	big := `{"v":1,"type":"chat","data":{"text":"` + strings.Repeat("x", protocol.MaxMessageBytes) + `"}}`
	a.raw(websocket.TextMessage, []byte(big))
	frames, code := a.readToClose()
	if code != websocket.CloseMessageTooBig || len(frames) != 0 {
		t.Fatalf("closed with %d after %v, want %d", code, frames, websocket.CloseMessageTooBig)
	}
	biAlive(t, b, c) // strict: b and c got no peer-left

	a2 := e.dial()
	a2.name = "A"
	id := a2.send(protocol.TypeResume, protocol.Resume{ResumeToken: a.resume})
	var j protocol.Joined
	if env := a2.expect(protocol.TypeJoined, &j); env.ID != id || !j.Resumed || j.PeerID != a.id || len(j.Peers) != 2 {
		t.Fatalf("resume after 1009: %+v", j)
	}
	a2.id = j.PeerID
	biAlive(t, a2, b, c)
}

// TestRefusedEntry: each way a join or resume can be refused gives its
// error, a bye and the matching final close; the room hears nothing.
func TestRefusedEntry(t *testing.T) {
	e := biStart(t, func(c *app.Config) { c.RoomCapacity = 3 })
	ctx := context.Background()
	cs := e.joinRoom(app.MainRoom, "A", "B")
	a, b := cs[0], cs[1]

	expired, _, err := rooms.CreateLink(ctx, e.be.Store, app.MainRoom, rooms.RoleParticipant, "old", time.Minute, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	revoked, l, err := rooms.CreateLink(ctx, e.be.Store, app.MainRoom, rooms.RoleParticipant, "revoked", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.be.Store.RevokeLink(ctx, l.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	forged := []byte(e.token(app.MainRoom))
	forged[len(forged)-1] ^= 1 // still base64url, another secret

	cases := []struct {
		name, typ string
		data      any
		code      string
		close     int
	}{
		{"expired token", protocol.TypeJoin, protocol.Join{Token: expired, Name: "X"}, protocol.ErrTokenExpired, protocol.CloseTokenExpired},
		{"forged token", protocol.TypeJoin, protocol.Join{Token: string(forged), Name: "X"}, protocol.ErrBadToken, protocol.CloseBadToken},
		{"revoked token", protocol.TypeJoin, protocol.Join{Token: revoked, Name: "X"}, protocol.ErrBadToken, protocol.CloseBadToken},
		{"unknown resume token", protocol.TypeResume, protocol.Resume{ResumeToken: string(forged)}, protocol.ErrResumeFailed, protocol.CloseSessionGone},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := e.dial()
			x.name = "X"
			id := x.send(tc.typ, tc.data)
			x.expectError(tc.code, id)
			x.expectClose(tc.close)
			biAlive(t, a, b)
		})
	}

	t.Run("full room", func(t *testing.T) {
		c := e.dial()
		c.join(e.token(app.MainRoom), "C")
		for _, o := range cs {
			o.expect(protocol.TypePeerJoined, nil)
		}
		x := e.dial()
		x.name = "X"
		id := x.send(protocol.TypeJoin, protocol.Join{Token: e.token(app.MainRoom), Name: "X"})
		x.expectError(protocol.ErrRoomFull, id)
		x.expectClose(protocol.CloseRoomFull)
		biAlive(t, c, a, b)
		// Capacity is per room.
		e.joinRoom("other", "O")
	})
}

// TestFloodIsRefusedThenClosed: past the burst, messages are refused with
// rate_limited; MaxViolations (50) refusals close the socket with 4504, and
// the rest of the room carries on.
func TestFloodIsRefusedThenClosed(t *testing.T) {
	e := biStart(t, nil)
	cs := e.joinRoom(app.MainRoom, "A", "B", "C")
	a, b, c := cs[0], cs[1], cs[2]

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the only writer of a's socket from now on
		defer wg.Done()
		frame := []byte(`{"v":1,"type":"state","data":{"audio":true,"hand":true}}`)
		for i := 0; i < 2000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if a.ws.WriteMessage(websocket.TextMessage, frame) != nil {
				return
			}
		}
	}()
	limited := 0
	var bye protocol.Bye
	var closeCode int
	_ = a.ws.SetReadDeadline(time.Now().Add(biWait))
	for closeCode == 0 {
		_, msg, err := a.ws.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			closeCode = ce.Code
			break
		}
		if err != nil {
			t.Fatalf("read: %v (after %d rate_limited)", err, limited)
		}
		var env protocol.Envelope
		_ = json.Unmarshal(msg, &env)
		switch env.Type {
		case protocol.TypeError:
			var pe protocol.Error
			_ = json.Unmarshal(env.Data, &pe)
			if pe.Code != protocol.ErrRateLimited {
				t.Fatalf("error %+v, want rate_limited", pe)
			}
			limited++
		case protocol.TypeBye:
			_ = json.Unmarshal(env.Data, &bye)
		default:
			t.Fatalf("unexpected %s", msg)
		}
	}
	close(stop)
	wg.Wait()
	if limited != 50 || closeCode != protocol.CloseProtocol || bye.Code != protocol.CloseProtocol || bye.Reconnect {
		t.Fatalf("%d rate_limited, bye %+v, close %d; want 50, then 4504", limited, bye, closeCode)
	}
	// The others saw a's (coalesced) states, then it left.
	for _, w := range []*biClient{b, c} {
		for {
			env := w.next()
			if env.Type == protocol.TypePeerLeft {
				var pl protocol.PeerLeft
				_ = json.Unmarshal(env.Data, &pl)
				if pl.ID != a.id {
					t.Fatalf("%s: peer-left %+v", w.name, pl)
				}
				break
			}
			var s protocol.PeerState
			if env.Type != protocol.TypeState || json.Unmarshal(env.Data, &s) != nil || s.From != a.id || !s.Hand {
				t.Fatalf("%s: got %s %s while a flooded", w.name, env.Type, env.Data)
			}
		}
	}
	biAlive(t, b, c)
	biAlive(t, c, b)
}

// smallRecvBuf keeps the kernel from absorbing megabytes on behalf of a
// client that does not read, so that the server's send queue is what fills.
func smallRecvBuf(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = errors.Join(
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096),
			// A small MSS keeps the server's autotuned send buffer small too
			// (on loopback it is sized from a 64 KiB MSS otherwise).
			syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 536))
	})
	return errors.Join(err, serr)
}

// TestSlowConsumer: a member that stops reading while others chat is cut
// off with 4001 (reconnect) once its send queue overflows; the others get
// every message without stalling, and the slow one can resume.
func TestSlowConsumer(t *testing.T) {
	e := biStart(t, nil)
	slowDialer := &websocket.Dialer{NetDialContext: (&net.Dialer{Control: smallRecvBuf}).DialContext}
	s, _, err := e.dialWith(slowDialer, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.join(e.token(app.MainRoom), "S")
	cs := e.joinRoom(app.MainRoom, "W", "P1", "P2", "P3")
	_ = cs // s has peer-joined frames queued: it is not reading, on purpose
	w, spammers := cs[0], cs[1:]

	const perSpammer = 190 // under the burst: no rate_limited in this test
	text := strings.Repeat("x", 1900)
	frame, _ := json.Marshal(protocol.Envelope{V: protocol.Version, Type: protocol.TypeChat,
		Data: json.RawMessage(`{"text":"` + text + `"}`)})
	total := perSpammer * len(spammers)

	errs := make(chan error, 2*len(cs))
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func(c *biClient) { // readers: every active member gets every chat
			defer wg.Done()
			_ = c.ws.SetReadDeadline(time.Now().Add(4 * biWait))
			for n := 0; n < total; {
				_, b, err := c.ws.ReadMessage()
				if err != nil {
					errs <- fmt.Errorf("%s after %d chats: %w", c.name, n, err)
					return
				}
				if strings.Contains(string(b), `"type":"chat"`) {
					n++
				}
			}
		}(c)
	}
	for _, p := range spammers {
		wg.Add(1)
		go func(p *biClient) {
			defer wg.Done()
			for i := 0; i < perSpammer; i++ {
				if err := p.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
					errs <- fmt.Errorf("%s: %w", p.name, err)
					return
				}
			}
		}(p)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// Now the slow member reads what it was sent: part of the chat, then
	// the reason it was cut off.
	frames, code := s.readToClose()
	chats := 0
	for _, f := range frames {
		if f.Type == protocol.TypeChat {
			chats++
		}
	}
	last := protocol.Envelope{}
	if len(frames) > 0 {
		last = frames[len(frames)-1]
	}
	var bye protocol.Bye
	_ = json.Unmarshal(last.Data, &bye)
	if code != protocol.CloseSlowConsumer || last.Type != protocol.TypeBye || bye.Code != protocol.CloseSlowConsumer || !bye.Reconnect {
		t.Fatalf("slow member: close %d, last frame %s %s; want bye and close 4001", code, last.Type, last.Data)
	}
	if chats >= total {
		t.Fatalf("slow member got all %d chats: its queue never overflowed", chats)
	}
	t.Logf("slow member got %d of %d chats before 4001", chats, total)

	// 4001 invites a resume: the seat is still there.
	s2 := e.dial()
	s2.name = "S"
	s2.send(protocol.TypeResume, protocol.Resume{ResumeToken: s.resume})
	var j protocol.Joined
	if s2.expect(protocol.TypeJoined, &j); !j.Resumed || j.PeerID != s.id {
		t.Fatalf("resume after 4001: %+v", j)
	}
	s2.id = j.PeerID
	biAlive(t, w, append([]*biClient{s2}, spammers...)...)
}

func TestOrigin(t *testing.T) {
	e := biStart(t, func(c *app.Config) {
		c.PublicURL = "https://salle.example.gouv.fr"
		c.AllowedOrigins = []string{"https://portail.example.gouv.fr/"}
	})
	for origin, ok := range map[string]bool{
		"":                                true, // native and test clients
		e.srv.URL:                         true, // the page's own origin
		"https://salle.example.gouv.fr":   true, // the public URL
		"https://portail.example.gouv.fr": true,
		"http://salle.example.gouv.fr":    false, // same host, other scheme
		"https://evil.example":            false,
		"null":                            false, // sandboxed frame
	} {
		hdr := http.Header{}
		if origin != "" {
			hdr.Set("Origin", origin)
		}
		c, resp, err := e.dialWith(websocket.DefaultDialer, hdr)
		if !ok {
			if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("origin %q: err %v, resp %v; want 403", origin, err, resp)
			}
			continue
		}
		if err != nil {
			t.Fatalf("origin %q refused: %v", origin, err)
		}
		c.join(e.token(app.MainRoom), "N")
		c.send(protocol.TypeLeave, nil)
		c.expectClose(protocol.CloseLeft)
	}
}

// TestShutdown: every client, joined or not, is told to reconnect with a
// bye and a 4000 close; sockets opened during shutdown get the same.
func TestShutdown(t *testing.T) {
	e := biStart(t, nil)
	cs := e.joinRoom(app.MainRoom, "A", "B")
	x := e.dial()
	x.name = "X"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- e.a.Shutdown(ctx) }()
	for _, c := range append(cs, x) {
		c.expectClose(protocol.CloseShutdown)
	}
	// Clients that answer the close let Shutdown return at once, well
	// before the server would give up waiting for their reply.
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("shutdown took %v", d)
	}
	late := e.dial()
	late.name = "late"
	late.expectClose(protocol.CloseShutdown)
}

// TestPingTimeout runs the endpoint alone (signaling.New, fast pings): a
// member whose socket neither pongs nor sends within PongWait is told 4002
// (reconnect) and loses its seat after the resume window, while a member
// that only answers pings stays. The deaf member reads its frames only at
// the end, and never answers pings.
func TestPingTimeout(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.CreateRoom(ctx, rooms.RoomInfo{Name: "main", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rm := rooms.NewManager(rooms.Config{ResumeWindow: 100 * time.Millisecond}, st, log)
	sig := signaling.New(signaling.Config{PingInterval: 50 * time.Millisecond, PongWait: 300 * time.Millisecond}, rm, log)
	hs := httptest.NewServer(sig)
	t.Cleanup(hs.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = sig.Shutdown(ctx)
	})
	e := &biEnv{t: t, srv: hs, ws: "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"}
	token := func() string {
		plain, _, err := rooms.CreateLink(ctx, st, "main", rooms.RoleParticipant, "", time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return plain
	}
	live, deaf := e.dial(), e.dial()
	live.join(token(), "live")
	deaf.join(token(), "deaf")
	deaf.ws.SetPingHandler(func(string) error { return nil }) // never pongs
	live.expect(protocol.TypePeerJoined, nil)

	frames := make(chan protocol.Envelope, 16)
	go func() { // reading makes gorilla answer the server's pings
		defer close(frames)
		for {
			_, b, err := live.ws.ReadMessage()
			if err != nil {
				return
			}
			var env protocol.Envelope
			_ = json.Unmarshal(b, &env)
			frames <- env
		}
	}()
	recv := func() protocol.Envelope {
		select {
		case env := <-frames:
			return env
		case <-time.After(biWait):
			t.Fatal("live member: no frame")
		}
		return protocol.Envelope{}
	}
	// PongWait, then the resume window: the deaf member is gone.
	var pl protocol.PeerLeft
	if env := recv(); env.Type != protocol.TypePeerLeft || json.Unmarshal(env.Data, &pl) != nil || pl.ID != deaf.id {
		t.Fatalf("live member got %s %s, want peer-left of deaf", env.Type, env.Data)
	}
	deaf.expectClose(protocol.ClosePingTimeout)

	// The live member, silent but ponging all along, still works.
	id := live.send(protocol.TypeChat, protocol.Chat{Text: "toujours là"})
	if env := recv(); env.Type != protocol.TypeChat || env.ID != id {
		t.Fatalf("live member got %s %s, want its chat echo", env.Type, env.Data)
	}
	if ms := rm.Members("main"); len(ms) != 1 || ms[0].ID != live.id {
		t.Fatalf("members = %+v, want live only", ms)
	}
}
