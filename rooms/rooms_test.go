package rooms_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"crisisroom/protocol"
	"crisisroom/rooms"
	"crisisroom/store/sqlite"
)

// fakePeer is an in-memory rooms.Peer: it records what the room sends and
// signals each frame on a channel so tests wait without sleeping.
type fakePeer struct {
	mu     sync.Mutex
	frames []rooms.Frame
	code   int
	reason string
	got    chan struct{} // one token per Send
	closed chan struct{} // closed on the first Close
}

func newFakePeer() *fakePeer {
	return &fakePeer{got: make(chan struct{}, 1024), closed: make(chan struct{})}
}

func (p *fakePeer) Send(f rooms.Frame) {
	p.mu.Lock()
	p.frames = append(p.frames, f)
	p.mu.Unlock()
	p.got <- struct{}{}
}

func (p *fakePeer) Close(code int, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.code == 0 {
		p.code, p.reason = code, reason
		close(p.closed)
	}
}

// take returns and forgets every frame received so far.
func (p *fakePeer) take() []rooms.Frame {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.frames
	p.frames = nil
	for range out {
		<-p.got
	}
	return out
}

// next waits for one more frame and returns it.
func (p *fakePeer) next(t *testing.T) rooms.Frame {
	t.Helper()
	select {
	case <-p.got:
	case <-time.After(5 * time.Second):
		t.Fatal("no frame within 5s")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.frames[0]
	p.frames = p.frames[1:]
	return f
}

// none asserts that nothing was received.
func (p *fakePeer) none(t *testing.T) {
	t.Helper()
	if fs := p.take(); len(fs) != 0 {
		t.Fatalf("unexpected frames: %s", fs[0].Data)
	}
}

func (p *fakePeer) closeCode() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.code
}

// decode parses a frame, checks its type and fills data.
func decode(t *testing.T, f rooms.Frame, typ string, data any) protocol.Envelope {
	t.Helper()
	var env protocol.Envelope
	if err := json.Unmarshal(f.Data, &env); err != nil {
		t.Fatalf("frame %s: %v", f.Data, err)
	}
	if env.Type != typ || env.V != protocol.Version {
		t.Fatalf("frame %s: want type %s", f.Data, typ)
	}
	if data != nil {
		if err := json.Unmarshal(env.Data, data); err != nil {
			t.Fatalf("frame %s: %v", f.Data, err)
		}
	}
	return env
}

type fixture struct {
	st  *sqlite.Store
	m   *rooms.Manager
	now time.Time
}

// newFixture opens a SQLite store with rooms "main" and "other" and a
// manager over it.
func newFixture(t *testing.T, cfg rooms.Config) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rooms.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now()
	for _, name := range []string{"main", "other"} {
		if _, err := st.CreateRoom(ctx, rooms.RoomInfo{Name: name, Title: name, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return &fixture{st: st, m: rooms.NewManager(cfg, st, log), now: now}
}

func (fx *fixture) link(t *testing.T, room string) string {
	t.Helper()
	plain, _, err := rooms.CreateLink(context.Background(), fx.st, room, rooms.RoleParticipant, "test", time.Hour, fx.now)
	if err != nil {
		t.Fatal(err)
	}
	return plain
}

// join seats a member named name in room and checks its joined frame.
func (fx *fixture) join(t *testing.T, room, name string) (*rooms.Member, protocol.Joined, *fakePeer) {
	t.Helper()
	p := newFakePeer()
	mem, joined, err := fx.m.Join(context.Background(), fx.link(t, room), name, "j-"+name, p)
	if err != nil {
		t.Fatalf("join %s: %v", name, err)
	}
	var got protocol.Joined
	env := decode(t, p.next(t), protocol.TypeJoined, &got)
	if env.ID != "j-"+name || got.PeerID != mem.ID || got.ResumeToken != joined.ResumeToken || got.Room != room || got.Resumed {
		t.Fatalf("joined frame %+v (id %q), want member %s of %s", got, env.ID, mem.ID, room)
	}
	return mem, joined, p
}

func TestCapacity(t *testing.T) {
	fx := newFixture(t, rooms.Config{Capacity: 2})
	_, _, pa := fx.join(t, "main", "A")
	_, joinedB, _ := fx.join(t, "main", "B")
	if joinedB.Capacity != 2 {
		t.Fatalf("capacity in joined = %d", joinedB.Capacity)
	}
	pa.take()
	pc := newFakePeer()
	if _, _, err := fx.m.Join(context.Background(), fx.link(t, "main"), "C", "", pc); !errors.Is(err, rooms.ErrRoomFull) {
		t.Fatalf("third join: %v, want ErrRoomFull", err)
	}
	pc.none(t)
	pa.none(t)
	if n := len(fx.m.Members("main")); n != 2 {
		t.Fatalf("%d members, want 2", n)
	}
	// Capacity is per room.
	fx.join(t, "other", "D")
}

func TestJoinRefusesBadLinks(t *testing.T) {
	fx := newFixture(t, rooms.Config{})
	ctx := context.Background()
	expired, _, err := rooms.CreateLink(ctx, fx.st, "main", rooms.RoleParticipant, "", time.Minute, fx.now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	revoked, l, err := rooms.CreateLink(ctx, fx.st, "main", rooms.RoleParticipant, "", time.Hour, fx.now)
	if err != nil {
		t.Fatal(err)
	}
	if err := fx.st.RevokeLink(ctx, l.ID, fx.now); err != nil {
		t.Fatal(err)
	}
	for token, want := range map[string]error{
		expired:                  rooms.ErrTokenExpired,
		revoked:                  rooms.ErrTokenInvalid,
		fx.link(t, "main") + "x": rooms.ErrTokenInvalid,
	} {
		p := newFakePeer()
		if _, _, err := fx.m.Join(ctx, token, "A", "", p); !errors.Is(err, want) {
			t.Errorf("join: %v, want %v", err, want)
		}
		p.none(t)
	}
	if n := len(fx.m.Members("main")); n != 0 {
		t.Fatalf("%d members after refused joins", n)
	}
}

func TestPresenceBroadcast(t *testing.T) {
	fx := newFixture(t, rooms.Config{})
	a, _, pa := fx.join(t, "main", "A")
	b, joinedB, pb := fx.join(t, "main", "B")
	_, _, po := fx.join(t, "other", "O")

	if len(joinedB.Peers) != 1 || joinedB.Peers[0].ID != a.ID || joinedB.Peers[0].Name != "A" ||
		joinedB.Peers[0].Role != rooms.RoleParticipant || !joinedB.Peers[0].State.Audio || !joinedB.Peers[0].State.Video {
		t.Fatalf("B's peers = %+v, want A with audio and video on", joinedB.Peers)
	}
	var info protocol.PeerInfo
	decode(t, pa.next(t), protocol.TypePeerJoined, &info)
	if info.ID != b.ID || info.Name != "B" {
		t.Fatalf("peer-joined = %+v, want B", info)
	}

	b.Leave()
	var left protocol.PeerLeft
	decode(t, pa.next(t), protocol.TypePeerLeft, &left)
	if left.ID != b.ID {
		t.Fatalf("peer-left = %+v, want %s", left, b.ID)
	}
	pb.none(t)
	po.none(t) // another room hears nothing
	if err := b.Broadcast(rooms.Frame{Data: []byte("x")}); !errors.Is(err, rooms.ErrLeft) {
		t.Fatalf("broadcast after leave: %v", err)
	}
	b.Leave() // a second leave is a no-op
	pa.none(t)
}

func TestRelayStaysInRoom(t *testing.T) {
	fx := newFixture(t, rooms.Config{})
	a, _, pa := fx.join(t, "main", "A")
	b, _, pb := fx.join(t, "main", "B")
	c, _, pc := fx.join(t, "other", "C")
	pa.take()

	if err := a.Relay(c.ID, rooms.Frame{Data: []byte("offer")}); !errors.Is(err, rooms.ErrUnknownPeer) {
		t.Fatalf("relay to another room: %v, want ErrUnknownPeer", err)
	}
	if err := a.Relay(a.ID, rooms.Frame{Data: []byte("offer")}); !errors.Is(err, rooms.ErrUnknownPeer) {
		t.Fatalf("relay to self: %v, want ErrUnknownPeer", err)
	}
	if err := a.Relay("nobody", rooms.Frame{Data: []byte("offer")}); !errors.Is(err, rooms.ErrUnknownPeer) {
		t.Fatalf("relay to unknown id: %v, want ErrUnknownPeer", err)
	}
	pc.none(t)
	pa.none(t)

	if err := a.Relay(b.ID, rooms.Frame{Data: []byte("offer")}); err != nil {
		t.Fatal(err)
	}
	if f := pb.next(t); string(f.Data) != "offer" {
		t.Fatalf("B got %s", f.Data)
	}
	if err := c.Broadcast(rooms.Frame{Data: []byte("chat")}); err != nil {
		t.Fatal(err)
	}
	pa.none(t)
	pb.none(t)
	pc.none(t) // the sender is not echoed by the room
}

func TestStateCoalescesAndReplays(t *testing.T) {
	fx := newFixture(t, rooms.Config{})
	a, _, pa := fx.join(t, "main", "A")
	_, _, pb := fx.join(t, "main", "B")
	pa.take()

	if err := a.SetState(protocol.PeerState{From: "forged", Audio: false, Video: true, Hand: true}); err != nil {
		t.Fatal(err)
	}
	pa.none(t)
	f := pb.next(t)
	if f.Coalesce != "state:"+a.ID {
		t.Fatalf("coalesce key %q, want state:%s", f.Coalesce, a.ID)
	}
	var s protocol.PeerState
	decode(t, f, protocol.TypeState, &s)
	if s != (protocol.PeerState{From: a.ID, Video: true, Hand: true}) {
		t.Fatalf("state = %+v: From must be stamped by the room", s)
	}
	// A late joiner sees the latest state in its peer list.
	_, joinedC, _ := fx.join(t, "main", "C")
	for _, p := range joinedC.Peers {
		if p.ID == a.ID && (p.State != s) {
			t.Fatalf("late joiner sees A as %+v, want %+v", p.State, s)
		}
	}
	if len(joinedC.Peers) != 2 || joinedC.Peers[0].ID > joinedC.Peers[1].ID {
		t.Fatalf("late joiner's peers = %+v, want A and B sorted by id", joinedC.Peers)
	}
}

func TestDetachThenResume(t *testing.T) {
	fx := newFixture(t, rooms.Config{ResumeWindow: time.Minute})
	a, joinedA, pa := fx.join(t, "main", "A")
	b, _, pb := fx.join(t, "main", "B")
	pa.take()

	a.Detach(pa)
	// Away members miss relayed frames silently: they renegotiate on resume.
	if err := b.Relay(a.ID, rooms.Frame{Data: []byte("candidate")}); err != nil {
		t.Fatalf("relay to a detached member: %v", err)
	}
	pa.none(t)

	pa2 := newFakePeer()
	mem, joined, err := fx.m.Resume(joinedA.ResumeToken, "r1", pa2)
	if err != nil {
		t.Fatal(err)
	}
	var got protocol.Joined
	env := decode(t, pa2.next(t), protocol.TypeJoined, &got)
	if mem != a || env.ID != "r1" || !got.Resumed || got.PeerID != a.ID || len(got.Peers) != 1 || got.Peers[0].ID != b.ID {
		t.Fatalf("resumed joined = %+v (id %q)", got, env.ID)
	}
	if joined.ResumeToken == joinedA.ResumeToken || got.ResumeToken != joined.ResumeToken {
		t.Fatal("resume token was not rotated")
	}
	if got.ResumeWindowMS != time.Minute.Milliseconds() {
		t.Fatalf("resume_window_ms = %d", got.ResumeWindowMS)
	}
	pb.none(t) // to B, A never left
	if _, _, err := fx.m.Resume(joinedA.ResumeToken, "r2", newFakePeer()); !errors.Is(err, rooms.ErrSessionGone) {
		t.Fatalf("old resume token: %v, want ErrSessionGone", err)
	}
	// A late Detach from the old socket must not unseat the new one.
	a.Detach(pa)
	if err := b.Relay(a.ID, rooms.Frame{Data: []byte("offer")}); err != nil {
		t.Fatal(err)
	}
	if f := pa2.next(t); string(f.Data) != "offer" {
		t.Fatalf("resumed peer got %s", f.Data)
	}
	if n := len(fx.m.Members("main")); n != 2 {
		t.Fatalf("%d members, want 2", n)
	}
}

func TestDetachWindowEnds(t *testing.T) {
	fx := newFixture(t, rooms.Config{ResumeWindow: 50 * time.Millisecond})
	a, joinedA, pa := fx.join(t, "main", "A")
	_, _, pb := fx.join(t, "main", "B")
	pa.take()

	a.Detach(pa)
	var left protocol.PeerLeft
	decode(t, pb.next(t), protocol.TypePeerLeft, &left)
	if left.ID != a.ID {
		t.Fatalf("peer-left %+v, want %s", left, a.ID)
	}
	if _, _, err := fx.m.Resume(joinedA.ResumeToken, "", newFakePeer()); !errors.Is(err, rooms.ErrSessionGone) {
		t.Fatalf("resume after the window: %v, want ErrSessionGone", err)
	}
	if ms := fx.m.Members("main"); len(ms) != 1 {
		t.Fatalf("members = %+v, want B only", ms)
	}
	pa.none(t)
}

func TestResumeReplacesAttachedPeer(t *testing.T) {
	fx := newFixture(t, rooms.Config{})
	a, joinedA, pa := fx.join(t, "main", "A")
	b, _, pb := fx.join(t, "main", "B")
	pa.take()

	pa2 := newFakePeer()
	if _, _, err := fx.m.Resume(joinedA.ResumeToken, "", pa2); err != nil {
		t.Fatal(err)
	}
	select {
	case <-pa.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("old peer not closed")
	}
	if code := pa.closeCode(); code != protocol.CloseReplaced {
		t.Fatalf("old peer closed with %d, want %d", code, protocol.CloseReplaced)
	}
	decode(t, pa2.next(t), protocol.TypeJoined, nil)
	pb.none(t)
	if err := b.Relay(a.ID, rooms.Frame{Data: []byte("answer")}); err != nil {
		t.Fatal(err)
	}
	if f := pa2.next(t); string(f.Data) != "answer" {
		t.Fatalf("new peer got %s", f.Data)
	}
	pa.none(t)
}

func TestShutdownClosesWithReconnectCode(t *testing.T) {
	fx := newFixture(t, rooms.Config{})
	_, _, pa := fx.join(t, "main", "A")
	_, _, po := fx.join(t, "other", "O")
	fx.m.Shutdown()
	for _, p := range []*fakePeer{pa, po} {
		if code := p.closeCode(); code != protocol.CloseShutdown || !protocol.ShouldReconnect(code) {
			t.Fatalf("closed with %d, want %d", code, protocol.CloseShutdown)
		}
	}
}
