package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"crisisroom/internal/testsvc"
	"crisisroom/protocol"
	"crisisroom/rooms"
	"crisisroom/rtcpeer"
	"crisisroom/turnserver"
)

// clusterTTL is how long an instance may stay silent before the others
// drop its members: the rooms' default (3 beats of 2 s).
const clusterTTL = 6 * time.Second

// TestClusterSignaling: two instances on one PostgreSQL and one Redis
// (throwaway servers), each behind its own HTTP server, as behind a load
// balancer.
//   - Two pion peers in one room, one per instance, negotiate through the
//     bus: connected, RTP and a data-channel message both ways; peer lists
//     and peer-joined cross instances.
//   - Redis stops for longer than the presence TTL and comes back empty:
//     nobody is dropped meanwhile (every instance knows its link is down),
//     the media keeps flowing peer to peer, the instances resubscribe and
//     rebuild presence (a leave lost during the outage is applied at once),
//     and joins cross again.
//   - One instance dies (its sockets cut, its Redis connection closed: no
//     goodbye, no more beats): its peer leaves the other's list within the
//     TTL; the browser's resume fails on the surviving instance, and it
//     joins there afresh and reconnects with the peer.
func TestClusterSignaling(t *testing.T) {
	rd, pg := testsvc.StartRedis(t), testsvc.StartPostgres(t)
	cfg := DefaultConfig()
	cfg.DatabaseURL, cfg.RedisURL = pg.Schema(t), rd.URL
	n1, n2 := clStart(t, cfg), clStart(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// Across instances.
	alice := clDial(ctx, t, n1, "alice")
	bob := clDial(ctx, t, n2, "bob")
	if ps := bob.Joined().Peers; len(ps) != 1 || ps[0].ID != alice.PeerID() || ps[0].Name != "alice" {
		t.Fatalf("bob joined on instance 2 with %+v, want alice of instance 1", ps)
	}
	if _, err := alice.WaitEvent(ctx, rtcpeer.EventPeerJoined, bob.PeerID(), "bob"); err != nil {
		t.Fatal(err)
	}
	clMeshUp(ctx, t, alice, bob)
	both := clSorted(alice.PeerID(), bob.PeerID())
	for _, n := range []*clNode{n1, n2} {
		if got := clIDs(n.a.Rooms.ClusterMembers(MainRoom)); !slices.Equal(got, both) {
			t.Fatalf("room on %s: %v, want %v", n.name, got, both)
		}
	}
	if got := clIDs(n1.a.Rooms.Members(MainRoom)); !slices.Equal(got, []string{alice.PeerID()}) {
		t.Fatalf("members seated on instance 1: %v, want alice", got)
	}

	// Redis down for longer than the TTL.
	carol := clRaw(t, n2, n1.token(t), "carol")
	if _, err := alice.WaitEvent(ctx, rtcpeer.EventPeerJoined, carol.id, "carol"); err != nil {
		t.Fatal(err)
	}
	rtpBefore := alice.RTPCount(bob.PeerID())
	rd.Stop(t)
	// Instance 2 applies carol's leave; its announcement is lost.
	carol.leave(t)
	// The outage under test: longer than the TTL.
	time.Sleep(clusterTTL + time.Second)
	if got := clIDs(n1.a.Rooms.ClusterMembers(MainRoom)); !slices.Equal(got, clSorted(alice.PeerID(), bob.PeerID(), carol.id)) {
		t.Fatalf("room on instance 1 during the outage: %v, want everyone kept", got)
	}
	rd.Start(t)
	up := time.Now()
	if _, err := alice.WaitEvent(ctx, rtcpeer.EventPeerLeft, carol.id, ""); err != nil {
		t.Fatal(err)
	}
	rebuilt := time.Since(up)
	t.Logf("Redis back: the leave lost during a %v outage reached instance 1 after %v", clusterTTL+time.Second, rebuilt)
	if rebuilt > 3*time.Second {
		t.Errorf("presence rebuilt %v after Redis came back; want within a beat or so", rebuilt)
	}
	if got := clIDs(n1.a.Rooms.ClusterMembers(MainRoom)); !slices.Equal(got, both) {
		t.Fatalf("room on instance 1 after the outage: %v, want %v", got, both)
	}
	if alice.Count(rtcpeer.EventPeerLeft, bob.PeerID())+bob.Count(rtcpeer.EventPeerLeft, alice.PeerID()) != 0 {
		t.Fatalf("a peer was dropped during the outage:\n%s", clTimeline(alice, bob))
	}
	if err := alice.WaitRTP(ctx, bob.PeerID(), rtpBefore+10); err != nil {
		t.Fatalf("media stopped across the outage: %v", err)
	}
	dave := clRaw(t, n2, n1.token(t), "dave")
	if _, err := alice.WaitEvent(ctx, rtcpeer.EventPeerJoined, dave.id, "dave"); err != nil {
		t.Fatalf("a join after the outage does not cross: %v", err)
	}
	dave.leave(t)
	if _, err := alice.WaitEvent(ctx, rtcpeer.EventPeerLeft, dave.id, ""); err != nil {
		t.Fatal(err)
	}

	// Instance 2 dies.
	killed := time.Now()
	n2.kill(t)
	if _, err := alice.WaitEvent(ctx, rtcpeer.EventPeerLeft, bob.PeerID(), ""); err != nil {
		t.Fatal(err)
	}
	gone := time.Since(killed)
	t.Logf("instance 2 killed: bob left alice's room after %v (TTL %v)", gone, clusterTTL)
	if gone > clusterTTL+2*time.Second {
		t.Errorf("bob dropped %v after his instance died; want within the TTL (%v)", gone, clusterTTL)
	}
	if got := clIDs(n1.a.Rooms.ClusterMembers(MainRoom)); !slices.Equal(got, []string{alice.PeerID()}) {
		t.Fatalf("room on instance 1 after instance 2 died: %v", got)
	}
	// Bob's browser reconnects through the load balancer to instance 1.
	if code := clResume(t, n1, bob.Joined().ResumeToken); code != protocol.CloseSessionGone {
		t.Fatalf("resume on the surviving instance closed with %d, want %d (join afresh)", code, protocol.CloseSessionGone)
	}
	_ = bob.Close()
	bob2 := clDial(ctx, t, n1, "bob")
	if ps := bob2.Joined().Peers; len(ps) != 1 || ps[0].ID != alice.PeerID() {
		t.Fatalf("bob rejoined with %+v, want alice", ps)
	}
	clMeshUp(ctx, t, alice, bob2)
}

// clNode is one instance behind its own HTTP server.
type clNode struct {
	name string
	a    *App
	be   *Backends
	srv  *httptest.Server
}

var clCount int

func clStart(t *testing.T, cfg Config) *clNode {
	t.Helper()
	clCount++
	cfg.DataDir = t.TempDir()
	ctx := context.Background()
	be, err := OpenBackends(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(ctx, cfg, be, slog.New(slog.DiscardHandler))
	if err != nil {
		_ = be.Close()
		t.Fatal(err)
	}
	if _, _, err := a.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	n := &clNode{name: fmt.Sprintf("instance %d", clCount), a: a, be: be, srv: httptest.NewServer(a.Handler())}
	t.Cleanup(func() {
		n.srv.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.Shutdown(sctx)
		_ = be.Close()
	})
	return n
}

// kill ends the instance as a crash would for the others: its Redis
// connection closes (no goodbye, no more beats) and its sockets are cut.
func (n *clNode) kill(t *testing.T) {
	t.Helper()
	if err := n.be.Bus.Close(); err != nil {
		t.Fatal(err)
	}
	n.srv.CloseClientConnections()
}

func (n *clNode) token(t *testing.T) string {
	t.Helper()
	link, err := n.a.NewRoomLink(context.Background(), MainRoom, rooms.RoleParticipant, "cluster test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return link[strings.Index(link, "#t=")+3:]
}

func (n *clNode) wsURL() string { return "ws" + strings.TrimPrefix(n.srv.URL, "http") + "/ws" }

func clDial(ctx context.Context, t *testing.T, n *clNode, name string) *rtcpeer.Client {
	t.Helper()
	se := turnserver.SettingEngine()
	c, err := rtcpeer.Dial(ctx, rtcpeer.Options{URL: n.srv.URL, Token: n.token(t), Name: name,
		Config: rtcpeer.Config{Settings: rtcpeer.Loopback(&se)}})
	if err != nil {
		t.Fatalf("%s joins on %s: %v", name, n.name, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// clMeshUp waits until a and b are connected, each receives the other's
// RTP and a data-channel message.
func clMeshUp(ctx context.Context, t *testing.T, a, b *rtcpeer.Client) {
	t.Helper()
	for _, p := range [][2]*rtcpeer.Client{{a, b}, {b, a}} {
		c, o := p[0], p[1]
		if err := c.WaitConnected(ctx, o.PeerID()); err != nil {
			t.Fatalf("%v\n%s", err, clTimeline(a, b))
		}
		if err := c.SendData(ctx, o.PeerID(), "hello from "+c.PeerID()); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range [][2]*rtcpeer.Client{{a, b}, {b, a}} {
		c, o := p[0], p[1]
		if err := c.WaitRTP(ctx, o.PeerID(), 3); err != nil {
			t.Fatal(err)
		}
		if _, err := c.WaitEvent(ctx, rtcpeer.EventData, o.PeerID(), "hello from "+o.PeerID()); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []*rtcpeer.Client{a, b} {
		for _, e := range c.Events() {
			if e.Kind == rtcpeer.EventFailure || e.Kind == rtcpeer.EventError {
				t.Errorf("%s saw %s %q from %q", c.PeerID(), e.Kind, e.Detail, e.Peer)
			}
		}
	}
}

func clTimeline(cs ...*rtcpeer.Client) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "%s:\n", c.PeerID())
		for _, e := range c.Events() {
			if e.Kind != rtcpeer.EventFirstRTP {
				fmt.Fprintf(&b, "  %s %s %s %q\n", e.At.Format("15:04:05.000"), e.Kind, e.Peer, e.Detail)
			}
		}
	}
	return b.String()
}

func clIDs(ps []protocol.PeerInfo) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

func clSorted(s ...string) []string {
	slices.Sort(s)
	return s
}

// clRawMember is a member on a plain WebSocket, without media.
type clRawMember struct {
	ws *websocket.Conn
	id string
}

func clRaw(t *testing.T, n *clNode, token, name string) *clRawMember {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(n.wsURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	if err := ws.WriteMessage(websocket.TextMessage, protocol.Encode(protocol.TypeJoin, "1", protocol.Join{Token: token, Name: name})); err != nil {
		t.Fatal(err)
	}
	env := clRead(t, ws, protocol.TypeJoined)
	var j protocol.Joined
	if err := json.Unmarshal(env.Data, &j); err != nil {
		t.Fatal(err)
	}
	return &clRawMember{ws: ws, id: j.PeerID}
}

// leave sends leave and waits for the server to close the socket.
func (m *clRawMember) leave(t *testing.T) {
	t.Helper()
	if err := m.ws.WriteMessage(websocket.TextMessage, protocol.Encode(protocol.TypeLeave, "2", struct{}{})); err != nil {
		t.Fatal(err)
	}
	if code := clCloseCode(t, m.ws); code != protocol.CloseLeft {
		t.Fatalf("leave closed with %d", code)
	}
}

// clResume tries a resume on n and returns the close code it ends with.
func clResume(t *testing.T, n *clNode, token string) int {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(n.wsURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, protocol.Encode(protocol.TypeResume, "1", protocol.Resume{ResumeToken: token})); err != nil {
		t.Fatal(err)
	}
	return clCloseCode(t, ws)
}

// clRead reads until a frame of type typ.
func clRead(t *testing.T, ws *websocket.Conn, typ string) protocol.Envelope {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		var env protocol.Envelope
		if err := json.Unmarshal(data, &env); err != nil {
			t.Fatal(err)
		}
		if env.Type == typ {
			return env
		}
	}
}

// clCloseCode reads until the server closes the socket.
func clCloseCode(t *testing.T, ws *websocket.Conn) int {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code
			}
			t.Fatalf("socket ended without a close frame: %v", err)
		}
	}
}
