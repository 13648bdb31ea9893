package signaling_test

// Integration tests: real server (app.New on a temp SQLite data dir behind
// httptest), real link tokens, real pion peers (rtcpeer) on loopback.

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"crisisroom/app"
	"crisisroom/protocol"
	"crisisroom/rooms"
	"crisisroom/rtcpeer"
	"crisisroom/turnserver"
)

// itTimeout bounds each test; pion on two cores under -race connects in
// well under a second, so this only guards against hangs.
const itTimeout = 20 * time.Second

// itSettings are the project's tuned pion settings (short nomination waits)
// restricted to loopback.
func itSettings() *webrtc.SettingEngine {
	se := turnserver.SettingEngine()
	return rtcpeer.Loopback(&se)
}

type itServer struct {
	a   *app.App
	url string
}

func itStart(t *testing.T) *itServer {
	t.Helper()
	ctx := context.Background()
	cfg := app.DefaultConfig()
	cfg.SFUUDP, cfg.SFUTCP = "127.0.0.1:0", "" // no fixed port: test processes run side by side
	cfg.RoomMode = "mesh"                      // these tests are about the mesh's signaling; the SFU has its own (app, e2e)
	cfg.DataDir = t.TempDir()
	be, err := app.OpenBackends(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(ctx, cfg, be, slog.New(slog.DiscardHandler))
	if err != nil {
		be.Close()
		t.Fatal(err)
	}
	if _, _, err := a.Bootstrap(ctx); err != nil {
		be.Close()
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		srv.Close()
		be.Close()
	})
	return &itServer{a: a, url: srv.URL}
}

// token mints a participant link for the main room and returns its token.
func (s *itServer) token(t *testing.T) string {
	t.Helper()
	link, err := s.a.NewRoomLink(context.Background(), app.MainRoom, rooms.RoleParticipant, "integration test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, tok, ok := strings.Cut(link, "#t=")
	if !ok {
		t.Fatalf("link %q has no token", link)
	}
	return tok
}

// join dials n clients and closes them at the end of the test. together
// dials them at once (the server decides who is the newcomer of whom);
// otherwise client i is seated before client i+1 dials, so it answers the
// later ones and offered to the earlier ones.
func (s *itServer) join(ctx context.Context, t *testing.T, n int, together bool) []*rtcpeer.Client {
	t.Helper()
	clients := make([]*rtcpeer.Client, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		opts := rtcpeer.Options{URL: s.url, Token: s.token(t), Name: fmt.Sprintf("pion %d", i),
			Config: rtcpeer.Config{Settings: itSettings()}}
		dial := func() { clients[i], errs[i] = rtcpeer.Dial(ctx, opts) }
		if together {
			wg.Go(dial)
		} else {
			dial()
		}
	}
	wg.Wait()
	for i, c := range clients {
		if c != nil {
			t.Cleanup(func() { _ = c.Close() })
		}
		if errs[i] != nil {
			t.Fatalf("client %d: %v", i, errs[i])
		}
	}
	return clients
}

// itMeshUp waits until every client is connected to every other, receives
// its RTP and a data-channel message from it.
func itMeshUp(ctx context.Context, t *testing.T, clients []*rtcpeer.Client) {
	t.Helper()
	for _, c := range clients {
		for _, o := range clients {
			if c == o {
				continue
			}
			if err := c.WaitConnected(ctx, o.PeerID()); err != nil {
				t.Fatalf("%v\n%s", err, itTimeline(c, o))
			}
			if err := c.SendData(ctx, o.PeerID(), "hello from "+c.PeerID()); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range clients {
		for _, o := range clients {
			if c == o {
				continue
			}
			if err := c.WaitRTP(ctx, o.PeerID(), 3); err != nil {
				t.Fatal(err)
			}
			if _, err := c.WaitEvent(ctx, rtcpeer.EventData, o.PeerID(), "hello from "+o.PeerID()); err != nil {
				t.Fatal(err)
			}
		}
	}
	itNoTrouble(t, clients)
}

// itTimeline renders what two clients saw of each other, for failures.
func itTimeline(cs ...*rtcpeer.Client) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "%s:\n", c.PeerID())
		for _, e := range c.Events() {
			if e.Kind != rtcpeer.EventFirstRTP {
				fmt.Fprintf(&b, "  %s %s %s %q\n", e.At.Format("15:04:05.000000"), e.Kind, e.Peer, e.Detail)
			}
		}
	}
	return b.String()
}

// itNoTrouble fails on any negotiation failure or server error a client saw.
func itNoTrouble(t *testing.T, clients []*rtcpeer.Client) {
	t.Helper()
	for _, c := range clients {
		for _, e := range c.Events() {
			if e.Kind == rtcpeer.EventFailure || e.Kind == rtcpeer.EventError {
				t.Errorf("%s saw %s %q from %q", c.PeerID(), e.Kind, e.Detail, e.Peer)
			}
		}
	}
}

func TestPionMeshTwoPeers(t *testing.T) { itMesh(t, 2) }

func TestPionMeshFourPeers(t *testing.T) { itMesh(t, 4) }

func itMesh(t *testing.T, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), itTimeout)
	defer cancel()
	s := itStart(t)
	start := time.Now()
	clients := s.join(ctx, t, n, true)
	itMeshUp(ctx, t, clients)
	t.Logf("%d peers: full mesh with media and data in %v", n, time.Since(start).Round(time.Millisecond))
	for _, c := range clients {
		if got := len(c.Peers()); got != n-1 {
			t.Errorf("%s has %d PeerConnections, want %d", c.PeerID(), got, n-1)
		}
	}
}

// TestPionResumeAfterDrop cuts one client's TCP connection under the WebSocket
// and resumes: same peer ID, nobody sees it leave or join, ICE restarts and
// media flows again on every PeerConnection. The resumer is the middle one
// of three seated in order, so it re-offers both on a PeerConnection it had
// offered and on one it had answered.
func TestPionResumeAfterDrop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), itTimeout)
	defer cancel()
	s := itStart(t)
	clients := s.join(ctx, t, 3, false)
	itMeshUp(ctx, t, clients)
	r, others := clients[1], []*rtcpeer.Client{clients[0], clients[2]}
	id, oldToken := r.PeerID(), r.Joined().ResumeToken

	type seen struct{ joined, left, connected, rtp int }
	before := map[*rtcpeer.Client]seen{}
	mine := map[string]int{}
	for _, o := range others {
		before[o] = seen{o.Count(rtcpeer.EventPeerJoined, id), o.Count(rtcpeer.EventPeerLeft, id),
			o.Count(rtcpeer.EventConnected, id), 0}
		mine[o.PeerID()] = r.Count(rtcpeer.EventConnected, o.PeerID())
	}

	if err := r.Drop(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := r.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if r.PeerID() != id || !r.Joined().Resumed || r.Joined().ResumeToken == oldToken {
		t.Fatalf("resumed as %q (resumed=%v, token rotated=%v), want %q", r.PeerID(), r.Joined().Resumed,
			r.Joined().ResumeToken != oldToken, id)
	}
	// Connected again means a new "connected" transition: the ICE restart
	// took the PeerConnections through "connecting".
	for _, o := range others {
		if err := r.WaitCount(ctx, rtcpeer.EventConnected, o.PeerID(), mine[o.PeerID()]+1); err != nil {
			t.Fatal(err)
		}
		if err := o.WaitCount(ctx, rtcpeer.EventConnected, id, before[o].connected+1); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("resume → connected again with %d peers (ICE restart, both sides) in %v", len(others),
		time.Since(start).Round(time.Microsecond))

	for _, o := range others {
		for _, w := range []struct {
			c    *rtcpeer.Client
			peer string
		}{{o, id}, {r, o.PeerID()}} {
			if err := w.c.WaitRTP(ctx, w.peer, w.c.RTPCount(w.peer)+5); err != nil {
				t.Fatal(err)
			}
		}
		if err := o.SendData(ctx, id, "after resume"); err != nil {
			t.Fatal(err)
		}
		if _, err := r.WaitEvent(ctx, rtcpeer.EventData, o.PeerID(), "after resume"); err != nil {
			t.Fatal(err)
		}
		if j, l := o.Count(rtcpeer.EventPeerJoined, id), o.Count(rtcpeer.EventPeerLeft, id); j != before[o].joined || l != before[o].left {
			t.Errorf("%s saw peer-joined %d→%d, peer-left %d→%d for the resumed peer", o.PeerID(), before[o].joined, j, before[o].left, l)
		}
	}
	itNoTrouble(t, clients)
}

// TestPionLeave: a leave is final at once; the others drop that PeerConnection
// and keep theirs.
func TestPionLeave(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), itTimeout)
	defer cancel()
	s := itStart(t)
	clients := s.join(ctx, t, 3, true)
	itMeshUp(ctx, t, clients)
	l, others := clients[0], clients[1:]
	id := l.PeerID()
	if err := l.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := l.WaitEvent(ctx, rtcpeer.EventBye, "", fmt.Sprint(protocol.CloseLeft)); err != nil {
		t.Fatal(err)
	}
	for _, o := range others {
		if _, err := o.WaitEvent(ctx, rtcpeer.EventPeerLeft, id, ""); err != nil {
			t.Fatal(err)
		}
		if got := o.Peers(); len(got) != 1 {
			t.Errorf("%s still has PeerConnections %v after %s left", o.PeerID(), got, id)
		}
	}
	a, b := others[0], others[1]
	if err := a.WaitRTP(ctx, b.PeerID(), a.RTPCount(b.PeerID())+5); err != nil {
		t.Fatal(err)
	}
	if got := s.a.Rooms.Members(app.MainRoom); len(got) != 2 {
		t.Errorf("room has %d members after a leave, want 2", len(got))
	}
	itNoTrouble(t, clients)
}
