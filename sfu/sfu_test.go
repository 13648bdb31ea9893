package sfu

import (
	"fmt"
	"github.com/pion/rtcp"
	"strings"
	"testing"
	"time"
)

// received: every other publisher's audio and video reached c.
func received(c *client, pubs []*client, min int) bool {
	for _, p := range pubs {
		if p == c {
			continue
		}
		if c.count(p.id+"/audio") < min || c.count(p.id+"/video") < min {
			return false
		}
	}
	return true
}

func TestEightMembersLeaveAndLateJoin(t *testing.T) {
	s := newTestSFU(t, Config{})
	r := s.Room("prefecture")
	var cs []*client
	for i := range 8 {
		c := newClient(t, r, fmt.Sprintf("m%d", i), JoinOptions{Publish: true})
		c.publish()
		cs = append(cs, c)
	}
	for _, c := range cs {
		waitFor(t, 15*time.Second, c.id+" receives the seven others", func() bool { return received(c, cs, 5) })
	}
	st := r.Stats()
	t.Logf("8 members: %+v", st)
	if st.Publishers != 8 || st.Subscribers != 8 || st.Tracks != 16 {
		t.Errorf("stats: %+v", st)
	}

	// m7 leaves: the others' down connections lose its tracks.
	r.Leave("m7")
	gone := cs[7]
	gone.close()
	cs = cs[:7]
	for _, c := range cs {
		waitFor(t, 5*time.Second, c.id+" renegotiated without m7", func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			d := c.down.RemoteDescription()
			return d != nil && !strings.Contains(d.SDP, "msid:m7 ") && c.down.SignalingState().String() == "stable"
		})
	}
	// A late joiner receives everyone.
	late := newClient(t, r, "late", JoinOptions{Publish: true})
	late.publish()
	all := append(cs, late)
	for _, c := range all {
		waitFor(t, 10*time.Second, c.id+" receives everyone after the late join", func() bool { return received(c, all, 3) })
	}
	if got := r.Members(); len(got) != 8 {
		t.Errorf("members: %v", got)
	}
}

func TestWatchOnlyAndBadOffers(t *testing.T) {
	s := newTestSFU(t, Config{})
	r := s.Room("r")
	pub := newClient(t, r, "pub", JoinOptions{Publish: true})
	pub.publish()
	watcher := newClient(t, r, "watcher", JoinOptions{})
	waitFor(t, 10*time.Second, "watcher receives", func() bool { return received(watcher, []*client{pub}, 5) })

	offer := upOfferSDP(t, 1, 1)
	if err := watcher.m.Signal(Signal{PC: PCUp, Kind: "offer", SDP: offer}); !errorsIs(err, ErrNotPublisher) {
		t.Errorf("watch-only offer: %v", err)
	}
	bad := newClient(t, r, "bad", JoinOptions{Publish: true})
	many := upOfferSDP(t, 25, 25)
	err := bad.m.Signal(Signal{PC: PCUp, Kind: "offer", SDP: many})
	if !errorsIs(err, ErrTooManyTracks) || !errorsIs(err, ErrBadOffer) {
		t.Errorf("50 sections: %v", err)
	}
	t.Logf("50 sections: %v", err)
	h264 := strings.ReplaceAll(strings.ReplaceAll(upOfferSDP(t, 0, 1), "VP8/", "H264/"), "vp8", "h264")
	if err := bad.m.Signal(Signal{PC: PCUp, Kind: "offer", SDP: h264}); !errorsIs(err, ErrUnsupportedCodec) {
		t.Errorf("H.264 only: %v", err)
	} else {
		t.Logf("H.264 only: %v", err)
	}
	madeUp := strings.ReplaceAll(upOfferSDP(t, 1, 0), "opus/", "zorglub/")
	if err := bad.m.Signal(Signal{PC: PCUp, Kind: "offer", SDP: madeUp}); !errorsIs(err, ErrUnsupportedCodec) {
		t.Errorf("made-up codec: %v", err)
	}
	if err := bad.m.Signal(Signal{PC: PCUp, Kind: "offer", SDP: "v=0 garbage"}); !errorsIs(err, ErrBadOffer) {
		t.Errorf("garbage: %v", err)
	}
	bad.m.umu.Lock()
	if bad.m.up != nil {
		t.Error("a refused offer left an up connection")
	}
	bad.m.umu.Unlock()
	// The room carries on.
	before := watcher.count("pub/video")
	waitFor(t, 5*time.Second, "room carries on", func() bool { return watcher.count("pub/video") > before+5 })
	if st := r.Stats(); st.Tracks != 2 {
		t.Errorf("tracks after bad offers: %+v", st)
	}
}

func TestSpeaking(t *testing.T) {
	s := newTestSFU(t, Config{})
	r := s.Room("r")
	ev := make(chan string, 16)
	r.OnSpeaking(func(id string, speaking bool) { ev <- fmt.Sprintf("%s %v", id, speaking) })
	a := newClient(t, r, "a", JoinOptions{Publish: true})
	a.publish()
	select {
	case e := <-ev:
		t.Fatalf("speaking while silent: %s", e)
	case <-time.After(time.Second):
	}
	a.level.Store(10) // −10 dBov
	expect := func(want string) {
		t.Helper()
		select {
		case e := <-ev:
			if e != want {
				t.Fatalf("got %s, want %s", e, want)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("no %s", want)
		}
	}
	start := time.Now()
	expect("a true")
	t.Logf("speaking after %v", time.Since(start))
	a.level.Store(127)
	start = time.Now()
	expect("a false")
	t.Logf("silent after %v", time.Since(start))
}

func TestSourceSwitchContinuity(t *testing.T) {
	s := newTestSFU(t, Config{})
	r := s.Room("r")
	a := newClient(t, r, "a", JoinOptions{Publish: true})
	a.videoPPS = 30
	a.publish()
	b := newClient(t, r, "b", JoinOptions{})
	waitFor(t, 10*time.Second, "b receives a", func() bool { return received(b, []*client{a}, 10) })
	before := b.count("a/video")
	a.publish() // reconnect: a new up connection, the old one closed
	waitFor(t, 10*time.Second, "b receives a's new source", func() bool { return b.count("a/video") > before+20 })
	waitFor(t, 5*time.Second, "keyframe request reached the new source", func() bool { return a.plis.Load() > 0 })
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range []string{"a/video", "a/audio"} {
		t.Logf("%s: %d packets, SSRCs %v, max seq jump %d", k, b.got[k], b.ssrcs[k], b.maxJump[k])
		if len(b.ssrcs[k]) != 1 {
			t.Errorf("%s: the forwarded track changed: SSRCs %v", k, b.ssrcs[k])
		}
		if b.maxJump[k] > 3 {
			t.Errorf("%s: sequence jumped by %d", k, b.maxJump[k])
		}
	}
}

func TestKeyframeRequestRateLimit(t *testing.T) {
	s := newTestSFU(t, Config{})
	r := s.Room("r")
	a := newClient(t, r, "a", JoinOptions{Publish: true})
	a.publish()
	b := newClient(t, r, "b", JoinOptions{})
	waitFor(t, 10*time.Second, "b receives a", func() bool { return received(b, []*client{a}, 5) })
	time.Sleep(700 * time.Millisecond) // out of any earlier interval
	b.mu.Lock()
	ssrc := b.remote["a/video"]
	b.mu.Unlock()
	base := a.plis.Load()
	for range 20 {
		if err := b.down.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	first := a.plis.Load() - base
	time.Sleep(700 * time.Millisecond)
	total := a.plis.Load() - base
	t.Logf("20 PLIs in ~100 ms: %d upstream within 400 ms, %d within 1.1 s", first, total)
	if first != 1 || total != 2 {
		t.Errorf("upstream keyframe requests: %d then %d, want 1 then 2", first, total)
	}
}
