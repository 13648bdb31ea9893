package app

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"crisisroom/protocol"
	"crisisroom/rooms"
	"crisisroom/rtcpeer"
	"crisisroom/turnserver"
)

// sfuConfig is a server whose rooms move to the SFU past meshMax, on
// loopback ports of their own.
func sfuConfig(t *testing.T, meshMax int) Config {
	cfg := mapConfig(t, false)
	cfg.RateIP, cfg.RateToken = 0, 0
	cfg.RoomCapacity, cfg.MeshMax, cfg.RoomMode = 20, meshMax, "auto"
	cfg.SFUUDP, cfg.SFUTCP = "127.0.0.1:0", ""
	return cfg
}

// sfuDial joins the main room with a link of role.
func sfuDial(ctx context.Context, t *testing.T, a *App, base, name, role string) *rtcpeer.Client {
	t.Helper()
	link, err := a.NewRoomLink(ctx, MainRoom, role, "sfu test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	se := turnserver.SettingEngine()
	c, err := rtcpeer.Dial(ctx, rtcpeer.Options{URL: base, Token: link[strings.Index(link, "#t=")+3:], Name: name,
		Config: rtcpeer.Config{Settings: rtcpeer.Loopback(&se)}})
	if err != nil {
		t.Fatalf("%s joins: %v", name, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitMedia waits until every client receives every other's video and
// audio (n packets of each).
func waitMedia(ctx context.Context, t *testing.T, cs []*rtcpeer.Client, n int, audio bool) {
	t.Helper()
	for _, c := range cs {
		for _, o := range cs {
			if o == c {
				continue
			}
			if err := c.WaitRTP(ctx, o.ID(), n); err != nil {
				t.Fatalf("%s receives no video from %s: %v (events %v)", c.ID(), o.ID(), err, failures(c))
			}
			if audio {
				if err := c.WaitRTP(ctx, o.ID()+rtcpeer.AudioSuffix, n); err != nil {
					t.Fatalf("%s receives no audio from %s: %v", c.ID(), o.ID(), err)
				}
			}
		}
	}
}

func failures(c *rtcpeer.Client) []string {
	var out []string
	for _, e := range c.Events() {
		if e.Kind == rtcpeer.EventFailure || e.Kind == rtcpeer.EventError {
			out = append(out, fmt.Sprintf("%s %s %s", e.Kind, e.Peer, e.Detail))
		}
	}
	return out
}

// TestEightPeersEndInTheSFU: eight members join one by one; from the
// fifth the room is in SFU mode, and each receives the seven others'
// audio and video RTP through the server.
func TestEightPeersEndInTheSFU(t *testing.T) {
	a, srv := startApp(t, sfuConfig(t, 4))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var cs []*rtcpeer.Client
	for i := range 8 {
		cs = append(cs, sfuDial(ctx, t, a, srv.URL, fmt.Sprintf("p%d", i), rooms.RoleParticipant))
	}
	if m := a.Rooms.Mode(MainRoom); m != protocol.ModeSFU {
		t.Fatalf("mode %q with eight members, want sfu", m)
	}
	start := time.Now()
	waitMedia(ctx, t, cs, 20, true)
	t.Logf("eight members, each receiving the seven others' audio and video through the SFU %v after the last join",
		time.Since(start).Round(time.Millisecond))
	for _, c := range cs {
		if c.Mode() != protocol.ModeSFU {
			t.Errorf("%s thinks the room is in mode %q", c.ID(), c.Mode())
		}
		if got := len(c.Peers()); got != 0 {
			t.Errorf("%s still has %d mesh links in an SFU room", c.ID(), got)
		}
	}
	m := scrape(t, a)
	for series, min := range map[string]float64{
		`crisisroom_room_mode{mode="sfu",room="main"}`:  1,
		`crisisroom_sfu_publishers{room="main"}`:        8,
		`crisisroom_sfu_subscribers{room="main"}`:       8,
		`crisisroom_sfu_packets_in_total{room="main"}`:  100,
		`crisisroom_sfu_packets_out_total{room="main"}`: 700,
		`crisisroom_sfu_bits_out_total{room="main"}`:    700 * 8 * 12,
	} {
		if v, ok := m[series]; !ok || v < min {
			t.Errorf("metrics: %s = %v (present %v), want at least %v", series, v, ok, min)
		}
	}
	if v, ok := m[`crisisroom_sfu_dropped_packets_total{room="main",why="stuck"}`]; !ok || v != 0 {
		t.Errorf("metrics: stuck drops %v (present %v), want 0 with eight healthy members", v, ok)
	}
	t.Logf("SFU metrics: %v packets in, %v out", m[`crisisroom_sfu_packets_in_total{room="main"}`], m[`crisisroom_sfu_packets_out_total{room="main"}`])
}

// TestMeshToSFUAndBack: four members in a mesh call; a host moves the room
// to the SFU, then back, then to the SFU again at once. From the RTP arrival times, no member's reception
// of another's video has a gap over a second across either switch.
func TestMeshToSFUAndBack(t *testing.T) {
	a, srv := startApp(t, sfuConfig(t, 4))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	host := sfuDial(ctx, t, a, srv.URL, "hôte", rooms.RoleHost)
	cs := []*rtcpeer.Client{host}
	for i := range 3 {
		cs = append(cs, sfuDial(ctx, t, a, srv.URL, fmt.Sprintf("p%d", i), rooms.RoleParticipant))
	}
	waitMedia(ctx, t, cs, 10, false)
	if a.Rooms.Mode(MainRoom) != protocol.ModeMesh {
		t.Fatal("four members: not a mesh")
	}
	for _, c := range cs {
		c.ResetGaps()
	}
	// The third move comes back to the SFU within the 10 s in which the
	// server still holds the first period's attachments: they are made
	// afresh.
	for _, mode := range []string{protocol.ModeSFU, protocol.ModeMesh, protocol.ModeSFU} {
		start := time.Now()
		if err := host.ChooseMode(mode); err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if _, err := c.WaitEvent(ctx, rtcpeer.EventMode, "", mode); err != nil {
				t.Fatal(err)
			}
		}
		// Each member keeps receiving every other after the flip.
		counts := map[*rtcpeer.Client]map[string]int{}
		for _, c := range cs {
			counts[c] = map[string]int{}
			for _, o := range cs {
				counts[c][o.ID()] = c.RTPCount(o.ID())
			}
		}
		deadline := time.Now().Add(15 * time.Second)
		for _, c := range cs {
			for _, o := range cs {
				if o == c {
					continue
				}
				if err := c.WaitRTP(ctx, o.ID(), counts[c][o.ID()]+100); err != nil {
					t.Fatal(err)
				}
			}
		}
		// In the SFU the mesh links close; back in the mesh each member
		// has its three again.
		want := map[string]int{protocol.ModeSFU: 0, protocol.ModeMesh: len(cs) - 1}[mode]
		for _, c := range cs {
			for time.Now().Before(deadline) && len(c.Peers()) != want {
				time.Sleep(20 * time.Millisecond)
			}
			if n := len(c.Peers()); n != want {
				t.Errorf("%s has %d mesh links in mode %s, want %d", c.ID(), n, mode, want)
			}
		}
		worst := time.Duration(0)
		for _, c := range cs {
			for _, o := range cs {
				if g := c.MaxGap(o.ID()); g > worst {
					worst = g
				}
				if g := c.MaxGap(o.ID()); g > time.Second {
					t.Errorf("to %s: %s's video stopped for %v", mode, o.ID(), g)
				}
			}
		}
		t.Logf("to %s: 100 more video packets from every other member %v after the choice; longest video gap %v",
			mode, time.Since(start).Round(time.Millisecond), worst)
		for _, c := range cs {
			c.ResetGaps()
		}
	}
}

// TestRelayOnlySFURoom: with --ice-policy relay the members reach the SFU
// only through the built-in TURN relay, and the room still works in SFU
// mode.
func TestRelayOnlySFURoom(t *testing.T) {
	cfg := sfuConfig(t, 4)
	cfg.RoomMode = "sfu"
	cfg.ICEPolicy = "relay"
	cfg.TURNEnabled = true
	cfg.TURNListenUDP, cfg.TURNListenTCP = "127.0.0.1:0", ""
	cfg.TURNAllowPeers = []string{"127.0.0.0/8"} // the SFU is on loopback here
	a, srv := startApp(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var cs []*rtcpeer.Client
	for i := range 3 {
		link, err := a.NewRoomLink(ctx, MainRoom, rooms.RoleParticipant, "relay", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		se := turnserver.SettingEngine()
		c, err := rtcpeer.Dial(ctx, rtcpeer.Options{URL: srv.URL, Token: link[strings.Index(link, "#t=")+3:], Name: fmt.Sprintf("r%d", i),
			Config: rtcpeer.Config{Settings: rtcpeer.Loopback(&se), RelayOnly: true}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		if j := c.Joined(); j.ICETransportPolicy != "relay" || j.Mode != protocol.ModeSFU {
			t.Fatalf("joined with policy %q in mode %q", j.ICETransportPolicy, j.Mode)
		}
		cs = append(cs, c)
	}
	waitMedia(ctx, t, cs, 20, true)
	for _, c := range cs {
		pair, err := c.SFUPair()
		if err != nil {
			t.Fatal(err)
		}
		if pair.Local.Typ != webrtc.ICECandidateTypeRelay {
			t.Errorf("%s reaches the SFU through a %s candidate, want relay", c.ID(), pair.Local.Typ)
		}
	}
}

// wsAsk sends one message and returns the error the server answers it
// with ("" when the next frame is no error about it).
func wsAsk(t *testing.T, ws *websocket.Conn, typ, id string, data any) protocol.Error {
	t.Helper()
	if err := ws.WriteMessage(websocket.TextMessage, protocol.Encode(typ, id, data)); err != nil {
		t.Fatal(err)
	}
	for {
		env, err := wsRead(ws)
		if err != nil {
			t.Fatalf("%s: no answer: %v", typ, err)
		}
		if env.Type == protocol.TypeError && env.ID == id {
			var e protocol.Error
			if err := json.Unmarshal(env.Data, &e); err != nil {
				t.Fatal(err)
			}
			return e
		}
	}
}

// TestSFUBadInput: SFU messages in a mesh room, an up offer with fifty
// media sections, one with a codec the SFU does not forward, and a
// watch-only member's up offer each get a clear error; the room carries
// on (the members still receive each other through the SFU).
func TestSFUBadInput(t *testing.T) {
	cfg := sfuConfig(t, 4)
	a, srv := startApp(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	link := func(role string) string {
		l, err := a.NewRoomLink(ctx, MainRoom, role, "bad", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return l[strings.Index(l, "#t=")+3:]
	}
	ws := wsDial(t, srv.URL, nil)
	defer ws.Close()
	if !wsJoin(t, ws, link(rooms.RoleParticipant)) {
		t.Fatal("not seated")
	}
	offer := protocol.SFU{PC: "up", Kind: "offer", SDP: "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}
	if e := wsAsk(t, ws, protocol.TypeSFU, "m1", offer); e.Code != protocol.ErrWrongMode {
		t.Fatalf("sfu in a mesh room: %+v, want wrong_mode", e)
	}
	host := sfuDial(ctx, t, a, srv.URL, "hôte", rooms.RoleHost)
	other := sfuDial(ctx, t, a, srv.URL, "autre", rooms.RoleParticipant)
	if err := host.ChooseMode(protocol.ModeSFU); err != nil {
		t.Fatal(err)
	}
	waitMedia(ctx, t, []*rtcpeer.Client{host, other}, 10, false)
	media := "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:%d\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\na=setup:actpass\r\n"
	fifty := offer.SDP
	for i := range 50 {
		fifty += fmt.Sprintf(media, i)
	}
	h264 := offer.SDP + strings.ReplaceAll(fmt.Sprintf(media, 0), "VP8/90000", "H264/90000")
	for _, c := range []struct{ name, sdp, want string }{
		{"fifty media sections", fifty, "media sections"},
		{"an unknown codec", h264, "codec"},
	} {
		e := wsAsk(t, ws, protocol.TypeSFU, "bad-"+c.name, protocol.SFU{PC: "up", Kind: "offer", SDP: c.sdp})
		if e.Code != protocol.ErrInvalid || !strings.Contains(e.Message, c.want) {
			t.Errorf("%s: %+v, want invalid saying %q", c.name, e, c.want)
		}
	}
	viewer := wsDial(t, srv.URL, nil)
	defer viewer.Close()
	plain, hash := rooms.NewSecret()
	if err := a.be.Store.CreateLink(ctx, rooms.Link{ID: rooms.NewID(), Hash: hash, Kind: rooms.KindGuest, Scope: MainRoom, Role: "guest",
		Label: "viewer", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), MaxUses: 2, WatchOnly: true}); err != nil {
		t.Fatal(err)
	}
	if !wsJoin(t, viewer, plain) {
		t.Fatal("viewer not seated")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		e := wsAsk(t, viewer, protocol.TypeSFU, "v1", protocol.SFU{PC: "up", Kind: "offer", SDP: fmt.Sprintf(offer.SDP+media, 0)})
		if e.Code == protocol.ErrInvalid && strings.Contains(e.Message, "publish") {
			break
		}
		if e.Code != protocol.ErrWrongMode || time.Now().After(deadline) {
			t.Fatalf("a watch-only member's up offer: %+v, want invalid saying it may not publish", e)
		}
		time.Sleep(50 * time.Millisecond) // attached a moment after its seat
	}
	before := host.RTPCount(other.ID())
	if err := host.WaitRTP(ctx, other.ID(), before+50); err != nil {
		t.Fatalf("the room stopped after the bad input: %v", err)
	}
}
