package sfu

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// A publisher's second video section is forwarded as "screen", its first
// as "video" (see doc.go), whether the tracks are named so (pion) or have
// random IDs (browsers); a subscriber tells them apart by track ID.
func TestScreenTrack(t *testing.T) {
	s := newTestSFU(t, Config{})
	r := s.Room("r")
	named := newClient(t, r, "named", JoinOptions{Publish: true})
	named.withScreen = true
	browser := newClient(t, r, "browser", JoinOptions{Publish: true})
	browser.withScreen = true
	browser.camID, browser.screenID = "5f0c8d1e-camera", "a93b27c4-display"
	sub := newClient(t, r, "sub", JoinOptions{})
	named.publish()
	browser.publish()
	for _, p := range []*client{named, browser} {
		waitFor(t, 10*time.Second, "sub receives "+p.id+"'s three tracks", func() bool {
			return received(sub, []*client{p}, 5) && sub.count(p.id+"/screen") >= 5
		})
	}
	if st := r.Stats(); st.Tracks != 6 || st.Publishers != 2 {
		t.Errorf("stats: %+v", st)
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	for _, p := range []*client{named, browser} {
		v, sc := p.id+"/video", p.id+"/screen"
		t.Logf("%s: video %d packets of %d bytes (SSRC %v), screen %d of %d (SSRC %v)", p.id,
			sub.got[v], sub.lastLen[v], sub.ssrcs[v], sub.got[sc], sub.lastLen[sc], sub.ssrcs[sc])
		// The payload sizes say which section a forwarded track came from.
		if sub.lastLen[v] != p.videoLen || sub.lastLen[sc] != p.screenLen {
			t.Errorf("%s: video carries %d-byte packets, screen %d: want %d and %d", p.id,
				sub.lastLen[v], sub.lastLen[sc], p.videoLen, p.screenLen)
		}
		if sub.remote[v] == sub.remote[sc] {
			t.Errorf("%s: video and screen share SSRC %d", p.id, sub.remote[v])
		}
	}
	for k := range sub.got {
		id := k[strings.IndexByte(k, '/')+1:]
		if id != "audio" && id != "video" && id != "screen" {
			t.Errorf("forwarded track %q: not a name of doc.go", k)
		}
	}
}

// A publisher that stops sending its screen (renegotiation) unpublishes
// it: the subscriber's down connection drops that track and only that.
func TestUnpublishByRenegotiation(t *testing.T) {
	s := newTestSFU(t, Config{})
	r := s.Room("r")
	pub := newClient(t, r, "pub", JoinOptions{Publish: true})
	pub.withScreen = true
	sub := newClient(t, r, "sub", JoinOptions{})
	pub.publish()
	waitFor(t, 10*time.Second, "sub receives three tracks", func() bool {
		return received(sub, []*client{pub}, 5) && sub.count("pub/screen") >= 5
	})
	pub.renegotiate(func(up *webrtc.PeerConnection) {
		if err := up.RemoveTrack(pub.screenTx); err != nil {
			t.Fatal(err)
		}
	})
	waitFor(t, 5*time.Second, "sub's down connection renegotiated without the screen", func() bool {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		d := sub.down.RemoteDescription()
		return d != nil && !strings.Contains(d.SDP, "msid:pub screen") &&
			sub.down.SignalingState() == webrtc.SignalingStateStable
	})
	if st := r.Stats(); st.Tracks != 2 {
		t.Errorf("tracks after unpublishing the screen: %+v", st)
	}
	v0, s0 := sub.count("pub/video"), sub.count("pub/screen")
	time.Sleep(500 * time.Millisecond)
	v, sc := sub.count("pub/video")-v0, sub.count("pub/screen")-s0
	t.Logf("in 500 ms after: video %d packets, screen %d", v, sc)
	if sc != 0 || v < 3 {
		t.Errorf("after unpublishing: screen %d packets (want 0), video %d (want more)", sc, v)
	}
	sub.mu.Lock()
	d := sub.down.RemoteDescription().SDP
	sub.mu.Unlock()
	if !strings.Contains(d, "msid:pub video") || !strings.Contains(d, "msid:pub audio") {
		t.Errorf("the camera or microphone went with the screen:\n%s", d)
	}
}

// Member.RequestKeyframe reaches every video source the member receives,
// at most once per keyframeInterval and source, the rest merged into one
// trailing request.
func TestMemberRequestKeyframe(t *testing.T) {
	s := newTestSFU(t, Config{})
	r := s.Room("r")
	pub := newClient(t, r, "pub", JoinOptions{Publish: true})
	pub.withScreen = true
	sub := newClient(t, r, "sub", JoinOptions{})
	pub.publish()
	waitFor(t, 10*time.Second, "sub receives three tracks", func() bool {
		return received(sub, []*client{pub}, 5) && sub.count("pub/screen") >= 5
	})
	time.Sleep(700 * time.Millisecond) // out of any earlier interval
	v0, s0, st0 := pub.plis.Load(), pub.sPLIs.Load(), r.Stats().PLIsSent
	for range 20 {
		sub.m.RequestKeyframe()
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	v1, s1 := pub.plis.Load()-v0, pub.sPLIs.Load()-s0
	time.Sleep(700 * time.Millisecond)
	v2, s2, sent := pub.plis.Load()-v0, pub.sPLIs.Load()-s0, r.Stats().PLIsSent-st0
	t.Logf("20 requests in ~100 ms: video %d then %d, screen %d then %d; PLIsSent +%d", v1, v2, s1, s2, sent)
	if v1 != 1 || s1 != 1 || v2 != 2 || s2 != 2 {
		t.Errorf("upstream keyframe requests: video %d then %d, screen %d then %d; want 1 then 2 each", v1, v2, s1, s2)
	}
	if sent != 4 {
		t.Errorf("PLIsSent grew by %d, want 4", sent)
	}
}

// fakeClock is a Config.Now moved by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// The trailing keyframe request goes by Config.Now, like the rest of
// the limiter: not sent while that clock stands still, sent once it has
// moved past the interval.
func TestTrailingKeyframeFollowsConfigNow(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	s := newTestSFU(t, Config{Now: clk.Now})
	r := s.Room("r")
	pub := newClient(t, r, "pub", JoinOptions{Publish: true})
	pub.publish()
	sub := newClient(t, r, "sub", JoinOptions{})
	waitFor(t, 10*time.Second, "sub receives", func() bool { return received(sub, []*client{pub}, 5) })
	clk.add(time.Second)
	time.Sleep(300 * time.Millisecond) // earlier trailing requests go out
	clk.add(time.Second)               // and their interval is over
	sub.mu.Lock()
	ssrc := sub.remote["pub/video"]
	sub.mu.Unlock()
	base := pub.plis.Load()
	for range 2 {
		if err := sub.down.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 2*time.Second, "the first request", func() bool { return pub.plis.Load()-base >= 1 })
	time.Sleep(time.Second) // twice the interval by the wall clock
	still := pub.plis.Load() - base
	clk.add(keyframeInterval)
	waitFor(t, 2*time.Second, "the trailing request once Now moved", func() bool { return pub.plis.Load()-base >= 2 })
	t.Logf("requests upstream: %d while Now stood still for 1 s, %d after it moved", still, pub.plis.Load()-base)
	if still != 1 {
		t.Errorf("%d requests while Now stood still, want 1", still)
	}
}
