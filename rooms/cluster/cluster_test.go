package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"crisisroom/protocol"
	"crisisroom/rooms"
)

// TestAcrossInstances: members of one room seated on two instances see one
// room: joined lists, peer-joined, relays both ways, chat, states, the map
// presenter and view, capacity, leave.
func TestAcrossInstances(t *testing.T) {
	w := newWorld(t, 3)
	a, b := w.start("a"), w.start("b")
	alice := w.join(a, "alice")
	bob := w.join(b, "bob")

	if len(bob.joined.Peers) != 1 || bob.joined.Peers[0].ID != alice.ID || bob.joined.Peers[0].Name != "alice" {
		t.Fatalf("bob joined with %+v, want alice", bob.joined.Peers)
	}
	var pj protocol.PeerInfo
	alice.p.expect(t, protocol.TypePeerJoined, &pj)
	if pj.ID != bob.ID || pj.Name != "bob" {
		t.Fatalf("alice told of %+v, want bob", pj)
	}
	both := sorted(alice.ID, bob.ID)
	for _, in := range []*instance{a, b} {
		eventually(t, 2*time.Second, in.name+" sees both", func() bool { return slices.Equal(ids(in, false), both) })
	}
	if got := ids(a, true); !slices.Equal(got, []string{alice.ID}) {
		t.Fatalf("a's own members %v, want alice only", got)
	}

	// Offer and answer cross, stamped by the sender's instance.
	if err := bob.Relay(alice.ID, rooms.Frame{Data: protocol.Encode(protocol.TypeOffer, "", protocol.SDP{From: bob.ID, SDP: "offer"})}); err != nil {
		t.Fatal(err)
	}
	var sdp protocol.SDP
	alice.p.expect(t, protocol.TypeOffer, &sdp)
	if sdp.From != bob.ID || sdp.SDP != "offer" {
		t.Fatalf("alice got %+v", sdp)
	}
	if err := alice.Relay(bob.ID, rooms.Frame{Data: protocol.Encode(protocol.TypeAnswer, "", protocol.SDP{From: alice.ID, SDP: "answer"})}); err != nil {
		t.Fatal(err)
	}
	bob.p.expect(t, protocol.TypeAnswer, &sdp)
	if sdp.From != alice.ID || sdp.SDP != "answer" {
		t.Fatalf("bob got %+v", sdp)
	}
	if err := alice.Relay("nobody", rooms.Frame{Data: []byte(`{}`)}); !errors.Is(err, rooms.ErrUnknownPeer) {
		t.Fatalf("relay to an unknown member: %v", err)
	}

	// Chat and state.
	if err := bob.Broadcast(rooms.Frame{Data: protocol.Encode(protocol.TypeChat, "", protocol.Chat{From: bob.ID, Text: "hi"})}); err != nil {
		t.Fatal(err)
	}
	var chat protocol.Chat
	alice.p.expect(t, protocol.TypeChat, &chat)
	if chat.Text != "hi" || chat.From != bob.ID {
		t.Fatalf("alice got chat %+v", chat)
	}
	if err := alice.SetState(protocol.PeerState{Audio: true, Hand: true}); err != nil {
		t.Fatal(err)
	}
	var st protocol.PeerState
	bob.p.expect(t, protocol.TypeState, &st)
	if st.From != alice.ID || !st.Hand || st.Video {
		t.Fatalf("bob got state %+v", st)
	}

	// The map: alice presents; bob follows her view.
	if err := alice.SetPresenter(true); err != nil {
		t.Fatal(err)
	}
	var pr protocol.Presenter
	bob.p.expect(t, protocol.TypePresenter, &pr)
	if pr.ID != alice.ID {
		t.Fatalf("bob told presenter %q, want alice", pr.ID)
	}
	view := protocol.MapView{Center: [2]float64{47.65, -2.76}, Zoom: 11, Commune: "56260"}
	if err := alice.SetView(view); err != nil {
		t.Fatal(err)
	}
	var v protocol.MapView
	bob.p.expect(t, protocol.TypeMapView, &v)
	if v.From != alice.ID || v.Commune != "56260" {
		t.Fatalf("bob got view %+v", v)
	}

	// A later joiner on b is given alice with her state, the presenter
	// and the view.
	carol := w.join(b, "carol")
	j := carol.joined
	if len(j.Peers) != 2 || j.Presenter != alice.ID || j.View == nil || j.View.Commune != "56260" {
		t.Fatalf("carol joined with %+v", j)
	}
	for _, p := range j.Peers {
		if p.ID == alice.ID && (!p.State.Hand || p.State.Video) {
			t.Fatalf("alice's state given to carol: %+v", p.State)
		}
	}
	// Capacity counts the whole room (a participant: one more seat is
	// kept for hosts).
	alice.p.expect(t, protocol.TypePeerJoined, &pj)
	if _, _, err := a.m.Join(context.Background(), w.token(rooms.RoleParticipant), "dave", "1", newPeer()); !errors.Is(err, rooms.ErrRoomFull) {
		t.Fatalf("a fourth member in a room of 3: %v", err)
	}

	// Leaving crosses; the presenter leaving clears the presenter
	// everywhere.
	carol.Leave()
	var left protocol.PeerLeft
	for _, p := range []*peer{alice.p, bob.p} {
		p.expect(t, protocol.TypePeerLeft, &left)
		if left.ID != carol.ID {
			t.Fatalf("told %q left, want carol", left.ID)
		}
	}
	alice.Leave()
	bob.p.expect(t, protocol.TypePeerLeft, &left)
	if left.ID != alice.ID {
		t.Fatalf("bob told %q left, want alice", left.ID)
	}
	bob.p.expect(t, protocol.TypePresenter, &pr)
	if pr.ID != "" {
		t.Fatalf("presenter after alice left: %q", pr.ID)
	}
	eventually(t, 2*time.Second, "a sees bob only", func() bool { return slices.Equal(ids(a, false), []string{bob.ID}) })
}

// TestSimultaneousJoins: members joining at once on two instances are
// seated in one order everywhere, so that of any two exactly one was
// given the other in joined (and offers) while the other was told
// peer-joined (and answers).
func TestSimultaneousJoins(t *testing.T) {
	w := newWorld(t, 6)
	ins := []*instance{w.start("a"), w.start("b")}
	for round := range 3 {
		ms := make([]*member, 4)
		var wg sync.WaitGroup
		for i := range ms {
			wg.Go(func() {
				mem, err := w.tryJoin(ins[i%2], fmt.Sprintf("m%d", i))
				if err != nil {
					t.Errorf("join %d: %v", i, err)
					return
				}
				ms[i] = mem
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		for i, x := range ms {
			for _, y := range ms[i+1:] {
				xy, yx := listed(x, y.ID), listed(y, x.ID)
				if xy == yx {
					t.Fatalf("round %d: %s lists %s: %v, %s lists %s: %v; want exactly one", round, x.Name, y.Name, xy, y.Name, x.Name, yx)
				}
			}
		}
		for _, x := range ms {
			x.Leave()
		}
		for _, in := range ins {
			eventually(t, 2*time.Second, "room empty on "+in.name, func() bool { return len(ids(in, false)) == 0 })
		}
	}
}

func listed(m *member, id string) bool {
	for _, p := range m.joined.Peers {
		if p.ID == id {
			return true
		}
	}
	return false
}

// TestLinkDown: an instance whose link is down (a crash, as far as the
// others can tell) is dropped with its members within the TTL; it drops
// nobody itself, since it does not hear its own beats either. When the
// link is back, its members come back everywhere, and they are told to
// resume, which makes them renegotiate with those who had dropped them.
func TestLinkDown(t *testing.T) {
	w := newWorld(t, 6)
	a, b := w.start("a"), w.start("b")
	alice := w.join(a, "alice")
	bob := w.join(b, "bob")
	alice.p.expect(t, protocol.TypePeerJoined, nil)

	down := time.Now()
	b.link.setDown(true)
	var left protocol.PeerLeft
	alice.p.expect(t, protocol.TypePeerLeft, &left)
	gone := time.Since(down)
	if left.ID != bob.ID {
		t.Fatalf("alice told %q left, want bob", left.ID)
	}
	t.Logf("bob left alice's room %v after b's link went down (beat %v, TTL %v)", gone, beat, ttl)
	if gone < ttl-2*beat || gone > ttl+time.Second { // generous: timers on a loaded machine run late
		t.Fatalf("bob dropped after %v; want about the TTL (%v)", gone, ttl)
	}
	if got := ids(a, false); !slices.Equal(got, []string{alice.ID}) {
		t.Fatalf("a's room %v, want alice only", got)
	}
	// b, deaf and mute, keeps alice: it cannot tell who is dead.
	time.Sleep(3 * ttl) // the condition under test is an absence over time
	bob.p.none(t, protocol.TypePeerLeft)
	if got := ids(b, false); !slices.Equal(got, sorted(alice.ID, bob.ID)) {
		t.Fatalf("b's room %v while its link is down, want alice and bob", got)
	}

	b.link.setDown(false)
	var pj protocol.PeerInfo
	alice.p.expect(t, protocol.TypePeerJoined, &pj)
	if pj.ID != bob.ID {
		t.Fatalf("alice told %q joined, want bob back", pj.ID)
	}
	eventually(t, 2*time.Second, "bob told to resume", func() bool { return bob.p.closeCode() == protocol.CloseShutdown })
	bob.Detach(bob.p)
	p := newPeer()
	if _, j, err := b.m.Resume(bob.joined.ResumeToken, "2", p); err != nil || !j.Resumed || !listed(&member{joined: j}, alice.ID) {
		t.Fatalf("bob resumes on b: %+v, %v", j, err)
	}
	if alice.p.closeCode() != 0 {
		t.Fatalf("alice, whose instance's link never failed, was closed with %d", alice.p.closeCode())
	}
}

// TestShutdownAndResumeElsewhere: an instance shutting down tells the
// others its members are gone at once (they cannot resume anywhere else);
// a client resuming on the wrong instance gets its seat freed on the right
// one at once (it is about to join again) instead of at the end of the
// resume window.
func TestShutdownAndResumeElsewhere(t *testing.T) {
	w := newWorld(t, 6)
	// A TTL long enough to tell "at once" from "when the TTL expired".
	w.beat, w.ttl = time.Second, 3*time.Second
	a, b, c := w.start("a"), w.start("b"), w.start("c")
	alice := w.join(a, "alice")
	bob := w.join(b, "bob")
	carol := w.join(c, "carol")
	alice.p.expect(t, protocol.TypePeerJoined, nil)
	alice.p.expect(t, protocol.TypePeerJoined, nil)

	start := time.Now()
	c.m.Shutdown()
	var left protocol.PeerLeft
	alice.p.expect(t, protocol.TypePeerLeft, &left)
	if left.ID != carol.ID || time.Since(start) > w.beat {
		t.Fatalf("alice told %q left after %v, want carol at once", left.ID, time.Since(start))
	}

	bob.Detach(bob.p) // socket gone; b keeps the seat for a minute
	if _, _, err := a.m.Resume(bob.joined.ResumeToken, "2", newPeer()); !errors.Is(err, rooms.ErrSessionGone) {
		t.Fatalf("resume on the wrong instance: %v", err)
	}
	start = time.Now()
	alice.p.expect(t, protocol.TypePeerLeft, &left)
	if left.ID != bob.ID || time.Since(start) > w.beat {
		t.Fatalf("alice told %q left after %v, want bob at once", left.ID, time.Since(start))
	}
	eventually(t, time.Second, "b freed bob's seat", func() bool { return len(ids(b, false)) == 1 })
}

// TestJoinNeedsTheLink: with its link down an instance refuses joins
// (the client retries) rather than seat members nobody else knows of.
func TestJoinNeedsTheLink(t *testing.T) {
	w := newWorld(t, 6)
	a, b := w.start("a"), w.start("b")
	a.link.setDown(true)
	start := time.Now()
	if _, err := w.tryJoin(a, "alice"); !errors.Is(err, rooms.ErrClusterDown) {
		t.Fatalf("join with the link down: %v", err)
	}
	t.Logf("join refused after %v", time.Since(start))
	if n := len(ids(a, false)) + len(ids(b, false)); n != 0 {
		t.Fatalf("%d seats after a refused join", n)
	}
	a.link.setDown(false)
	alice := w.join(a, "alice")
	bob := w.join(b, "bob")
	if !listed(bob, alice.ID) {
		t.Fatalf("bob joined with %+v", bob.joined.Peers)
	}
}

// TestPresenterConflict: two hosts on two instances take the map at once;
// every instance ends with the same presenter.
func TestPresenterConflict(t *testing.T) {
	w := newWorld(t, 6)
	a, b := w.start("a"), w.start("b")
	alice := w.join(a, "alice")
	bob := w.join(b, "bob")
	var wg sync.WaitGroup
	wg.Go(func() { _ = alice.SetPresenter(true) })
	wg.Go(func() { _ = bob.SetPresenter(true) })
	wg.Wait()
	// Both instances have applied both changes once each has seen its own
	// next beat come back.
	time.Sleep(3 * beat) // nothing to wait on: convergence is the absence of further change
	ja, jb := w.join(a, "watcher a").joined, w.join(b, "watcher b").joined
	if ja.Presenter == "" || ja.Presenter != jb.Presenter {
		t.Fatalf("presenter on a %q, on b %q", ja.Presenter, jb.Presenter)
	}
}
