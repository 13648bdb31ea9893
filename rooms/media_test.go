package rooms_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"crisisroom/protocol"
	"crisisroom/rooms"
)

// recordingMedia is a rooms.Media that records attachments. The SFU
// itself is tested in sfu/ and through the server in app/; here only the
// room's decisions are.
type recordingMedia struct {
	mu       sync.Mutex
	attached map[string]bool // member IDs
	changed  chan struct{}
}

func newRecordingMedia() *recordingMedia {
	return &recordingMedia{attached: map[string]bool{}, changed: make(chan struct{}, 256)}
}

func (rm *recordingMedia) Join(room, member string, publish bool, send func(protocol.SFU)) (rooms.MediaSession, error) {
	rm.mu.Lock()
	rm.attached[member] = true
	rm.mu.Unlock()
	rm.changed <- struct{}{}
	return session{}, nil
}

func (rm *recordingMedia) Leave(room, member string) {
	rm.mu.Lock()
	delete(rm.attached, member)
	rm.mu.Unlock()
	rm.changed <- struct{}{}
}

// await waits until exactly ids are attached.
func (rm *recordingMedia) await(t *testing.T, ids ...string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		rm.mu.Lock()
		var got []string
		for id := range rm.attached {
			got = append(got, id)
		}
		rm.mu.Unlock()
		slices.Sort(got)
		slices.Sort(ids)
		if slices.Equal(got, ids) {
			return
		}
		select {
		case <-rm.changed:
		case <-deadline:
			t.Fatalf("attached %v, want %v", got, ids)
		}
	}
}

type session struct{}

func (session) Signal(protocol.SFU) error { return nil }

// modeOf returns the last "mode" frame's mode among fs ("" if none).
func modeOf(t *testing.T, fs []rooms.Frame) string {
	t.Helper()
	mode := ""
	for _, f := range fs {
		var m protocol.Mode
		if env := peekType(t, f); env == protocol.TypeMode {
			decode(t, f, protocol.TypeMode, &m)
			mode = m.Mode
		}
	}
	return mode
}

func peekType(t *testing.T, f rooms.Frame) string {
	t.Helper()
	var env protocol.Envelope
	if err := json.Unmarshal(f.Data, &env); err != nil {
		t.Fatal(err)
	}
	return env.Type
}

// TestAutoModeSwitch: an auto room is a mesh up to MeshMax members with
// media; the next one moves it to the SFU before its joined (which says
// so), everyone is attached and told; at two or fewer for MeshBack it goes
// back, and the members are detached only after MeshBack more (the pages
// keep the SFU's pictures until their mesh plays).
func TestAutoModeSwitch(t *testing.T) {
	media := newRecordingMedia()
	fx := newFixture(t, rooms.Config{Capacity: 10, Media: media, Mode: rooms.ModeAuto, MeshMax: 4, MeshBack: 150 * time.Millisecond})
	var members []*rooms.Member
	var peers []*fakePeer
	for _, name := range []string{"a", "b", "c", "d"} {
		mem, joined, p := fx.join(t, "main", name)
		if joined.Mode != protocol.ModeMesh {
			t.Fatalf("%s joined a room in mode %q, want mesh", name, joined.Mode)
		}
		members, peers = append(members, mem), append(peers, p)
	}
	if err := members[0].SFU(protocol.SFU{PC: "down", Kind: "candidate"}); !errors.Is(err, rooms.ErrWrongMode) {
		t.Fatalf("sfu message in a mesh room: %v, want ErrWrongMode", err)
	}
	media.await(t)
	e, joined, _ := fx.join(t, "main", "e")
	if joined.Mode != protocol.ModeSFU {
		t.Fatalf("the fifth joined in mode %q, want sfu", joined.Mode)
	}
	for i, p := range peers {
		if got := modeOf(t, p.take()); got != protocol.ModeSFU {
			t.Errorf("member %d told mode %q, want sfu", i, got)
		}
	}
	all := []string{members[0].ID, members[1].ID, members[2].ID, members[3].ID, e.ID}
	media.await(t, all...)
	if fx.m.Mode("main") != protocol.ModeSFU {
		t.Fatal("Mode(main) is not sfu")
	}
	for _, m := range members[1:] {
		m.Leave()
	}
	media.await(t, members[0].ID, e.ID) // those who left are detached at once
	start := time.Now()
	deadline := time.Now().Add(5 * time.Second)
	for fx.m.Mode("main") != protocol.ModeMesh {
		if time.Now().After(deadline) {
			t.Fatal("the room did not go back to the mesh")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("back to the mesh after %v, before MeshBack (150ms)", d)
	}
	if got := modeOf(t, peers[0].take()); got != protocol.ModeMesh {
		t.Errorf("the remaining member told mode %q, want mesh", got)
	}
	media.await(t) // detached MeshBack after the switch
	if err := members[0].SFU(protocol.SFU{PC: "down", Kind: "candidate"}); !errors.Is(err, rooms.ErrWrongMode) {
		t.Fatalf("sfu message after the way back: %v, want ErrWrongMode", err)
	}
}

// TestMeshModeStays: a room configured mesh never moves, and a room with
// no SFU at all neither.
func TestMeshModeStays(t *testing.T) {
	for _, cfg := range []rooms.Config{
		{Capacity: 10, Media: newRecordingMedia(), Mode: rooms.ModeMesh, MeshMax: 2},
		{Capacity: 10, Mode: rooms.ModeAuto, MeshMax: 2},
	} {
		fx := newFixture(t, cfg)
		for _, name := range []string{"a", "b", "c", "d"} {
			if _, joined, _ := fx.join(t, "main", name); joined.Mode != protocol.ModeMesh {
				t.Fatalf("mode %q with %+v, want mesh", joined.Mode, cfg)
			}
		}
	}
}

// TestCapacityKeepsAHostSeatAndCountsViewersApart: members with media
// fill Capacity, then only a host gets in (the seat kept for hosts);
// watch-only members are counted apart, up to Viewers.
func TestCapacityKeepsAHostSeatAndCountsViewersApart(t *testing.T) {
	fx := newFixture(t, rooms.Config{Capacity: 2, Viewers: 1})
	ctx := context.Background()
	fx.join(t, "main", "A")
	fx.join(t, "main", "B")
	if _, _, err := fx.m.Join(ctx, fx.link(t, "main"), "C", "", newFakePeer()); !errors.Is(err, rooms.ErrRoomFull) {
		t.Fatalf("a third participant: %v, want ErrRoomFull", err)
	}
	host, _, err := rooms.CreateLink(ctx, fx.st, "main", rooms.RoleHost, "host", time.Hour, fx.now)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := fx.m.Join(ctx, host, "Hôte", "", newFakePeer()); err != nil {
		t.Fatalf("the host, in a room full of participants: %v", err)
	}
	if _, _, err := fx.m.Join(ctx, host, "Hôte 2", "", newFakePeer()); !errors.Is(err, rooms.ErrRoomFull) {
		t.Fatalf("a second host past the kept seat: %v, want ErrRoomFull", err)
	}
	viewer := func() string {
		plain, hash := rooms.NewSecret()
		if err := fx.st.CreateLink(ctx, rooms.Link{ID: rooms.NewID(), Hash: hash, Kind: rooms.KindGuest, Scope: "main", Role: "guest",
			Label: "viewer", CreatedAt: fx.now, ExpiresAt: fx.now.Add(time.Hour), MaxUses: 5, WatchOnly: true}); err != nil {
			t.Fatal(err)
		}
		return plain
	}
	if _, _, err := fx.m.Join(ctx, viewer(), "Spectateur", "", newFakePeer()); err != nil {
		t.Fatalf("a watch-only guest in a room full of media: %v", err)
	}
	if _, _, err := fx.m.Join(ctx, viewer(), "Spectateur 2", "", newFakePeer()); !errors.Is(err, rooms.ErrRoomFull) {
		t.Fatalf("a viewer past Viewers: %v, want ErrRoomFull", err)
	}
}

// TestHostChoosesTheMode: a host moves a small room to the SFU and back;
// "auto" gives the choice back to the server's rule. Without an SFU the
// choice is refused.
func TestHostChoosesTheMode(t *testing.T) {
	media := newRecordingMedia()
	fx := newFixture(t, rooms.Config{Capacity: 10, Media: media, Mode: rooms.ModeAuto, MeshMax: 4, MeshBack: 50 * time.Millisecond})
	a, _, pa := fx.join(t, "main", "a")
	b, _, _ := fx.join(t, "main", "b")
	if err := a.ChooseMode(rooms.ModeSFU); err != nil {
		t.Fatal(err)
	}
	if got := modeOf(t, pa.take()); got != protocol.ModeSFU {
		t.Fatalf("told %q, want sfu", got)
	}
	media.await(t, a.ID, b.ID)
	b.Leave() // chosen, not auto: a room of one stays in the SFU
	time.Sleep(120 * time.Millisecond)
	if fx.m.Mode("main") != protocol.ModeSFU {
		t.Fatal("a chosen SFU room went back to the mesh on its own")
	}
	if err := a.ChooseMode(rooms.ModeAuto); err != nil {
		t.Fatal(err)
	}
	if fx.m.Mode("main") != protocol.ModeMesh {
		t.Fatal("auto with one member: not back to the mesh")
	}
	media.await(t) // detached after MeshBack
	plain := newFixture(t, rooms.Config{Capacity: 10})
	c, _, _ := plain.join(t, "main", "c")
	if err := c.ChooseMode(rooms.ModeSFU); !errors.Is(err, rooms.ErrNoSFU) {
		t.Fatalf("sfu chosen without an SFU: %v, want ErrNoSFU", err)
	}
}
