package app

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

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
	var stats string
	for _, st := range a.media.stats() {
		stats += fmt.Sprintf("%s: %d publishers, %d subscribers, %d packets in, %d out; ", st.Room, st.Publishers, st.Subscribers, st.PacketsIn, st.PacketsOut)
	}
	t.Log(stats)
}

// TestMeshToSFUAndBack: four members in a mesh call; a host moves the room
// to the SFU, then back. From the RTP arrival times, no member's reception
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
	for _, mode := range []string{protocol.ModeSFU, protocol.ModeMesh} {
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
