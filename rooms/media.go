package rooms

import (
	"errors"
	"time"

	"crisisroom/protocol"
)

// A room's media go peer to peer (the mesh) while it is small, and through
// the server's selective forwarding unit (SFU) once it is not: in a mesh
// every member uploads its camera to every other, which a phone on a
// hospital's Wi-Fi cannot do past a handful of faces. rooms decides the
// mode, from who is in the room, and attaches each member to the SFU while
// the room is in SFU mode; the SFU itself is behind Media.

// Media is the SFU as rooms sees it (app adapts sfu.SFU). Its calls are
// never made with the rooms' lock held: they set up peer connections.
type Media interface {
	// Join attaches a member to its room's router. publish is false for
	// a watch-only member. send carries the router's messages to the
	// member; it must not block.
	Join(room, member string, publish bool, send func(protocol.SFU)) (MediaSession, error)
	// Leave detaches a member: its peer connections close, its tracks
	// leave the others'.
	Leave(room, member string)
}

// MediaSession is one member's attachment to the SFU.
type MediaSession interface {
	Signal(s protocol.SFU) error
}

// Room media modes, as configured (Config.Mode).
const (
	ModeAuto = "auto" // mesh while small, SFU past MeshMax, back when two or fewer
	ModeMesh = protocol.ModeMesh
	ModeSFU  = protocol.ModeSFU
)

// ErrWrongMode: an SFU message from a member of a room in mesh mode.
var ErrWrongMode = errors.New("the room is not in SFU mode")

// ErrNoSFU: a host chose the SFU on a server that has none (or a cluster,
// whose rooms stay meshes for now).
var ErrNoSFU = errors.New("this server has no SFU for its rooms")

// policyLocked is the rule a room follows: the mode a host chose for it,
// else the server's (Config.Mode).
func (m *Manager) policyLocked(r *room) string {
	if r.chosen != "" {
		return r.chosen
	}
	return m.cfg.Mode
}

// ChooseMode is a host's choice of its room's media mode: ModeMesh,
// ModeSFU, or ModeAuto (the server's rule, from the number of members).
func (mem *Member) ChooseMode(mode string) error {
	m := mem.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if mem.gone {
		return ErrLeft
	}
	if m.cfg.Media == nil || m.cl != nil {
		return ErrNoSFU
	}
	r := m.rooms[mem.Room]
	r.chosen = mode
	want := mode
	if mode == ModeAuto {
		want = ModeMesh
		if r.mediaMembersLocked() > m.cfg.MeshMax {
			want = ModeSFU
		}
	}
	m.setModeLocked(r, want, "chosen by "+mem.Name)
	return nil
}

// defaults of the mode's settings (Config).
const (
	defaultMeshMax  = 4
	defaultMeshBack = 10 * time.Second
	defaultViewers  = 300
)

// initialMode is a new room's mode.
func (m *Manager) initialMode() string {
	if m.cfg.Media != nil && m.cl == nil && m.cfg.Mode == ModeSFU {
		return ModeSFU
	}
	return ModeMesh
}

// mediaMembersLocked counts the members who send media (not watch-only).
func (r *room) mediaMembersLocked() int {
	n := 0
	for _, o := range r.members {
		if !o.watchOnly {
			n++
		}
	}
	return n
}

// beforeSeatLocked: a member is about to be seated. Past MeshMax members
// with media, an auto room moves to the SFU first, so that the newcomer's
// joined already says so and it never builds a mesh.
func (m *Manager) beforeSeatLocked(r *room, mem *Member) {
	if m.cfg.Media == nil || m.cl != nil || mem.watchOnly {
		return
	}
	if r.mode == ModeMesh && m.policyLocked(r) == ModeAuto && r.mediaMembersLocked()+1 > m.cfg.MeshMax {
		m.setModeLocked(r, ModeSFU, "grew past the mesh")
	}
}

// afterSeatLocked: a member was seated; in an SFU room it is attached.
func (m *Manager) afterSeatLocked(r *room, mem *Member) {
	if m.cfg.Media != nil && m.cl == nil && r.mode == ModeSFU {
		m.attachLocked(mem)
	}
}

// afterRemoveLocked: a member left. An auto room in SFU mode goes back to
// the mesh once it has had two or fewer members with media for MeshBack.
func (m *Manager) afterRemoveLocked(r *room, mem *Member) {
	if mem.media != nil {
		mem.media = nil
		go m.cfg.Media.Leave(r.name, mem.ID)
	} // one being attached is left by attach, which sees it gone
	if r.mode != ModeSFU || m.policyLocked(r) != ModeAuto || r.mediaMembersLocked() > 2 || r.back != nil {
		return
	}
	r.back = time.AfterFunc(m.cfg.MeshBack, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		r.back = nil
		if m.rooms[r.name] == r && r.mode == ModeSFU && m.policyLocked(r) == ModeAuto && r.mediaMembersLocked() <= 2 {
			m.setModeLocked(r, ModeMesh, "small again")
		}
	})
}

// setModeLocked changes a room's mode and tells its members. Into the SFU,
// every member is attached; back to the mesh, the members are detached
// only after MeshBack, so that the pages keep the SFU's pictures until
// their mesh links play (prepare, then flip).
func (m *Manager) setModeLocked(r *room, mode, why string) {
	if r.mode == mode {
		return
	}
	r.mode = mode
	m.log.Info("room media mode", "room", r.name, "mode", mode, "why", why, "members", len(r.members))
	r.broadcastLocked("", Frame{Data: protocol.Encode(protocol.TypeMode, "", protocol.Mode{Mode: mode}), Coalesce: "mode"})
	if r.back != nil {
		r.back.Stop()
		r.back = nil
	}
	for _, o := range r.members {
		if mode == ModeSFU {
			m.attachLocked(o)
		} else if o.media != nil {
			go m.detachLater(o)
		}
	}
}

// attachLocked starts attaching a member to the SFU. Its mediaReady is
// set at once, under the lock that told the member the mode: an up offer
// the member sends as soon as it hears "sfu" waits for the attachment
// instead of finding none.
//
// An attachment left from the room's previous SFU period (the room went
// back to the mesh less than MeshBack ago) is ended and made afresh: the
// page closed its SFU connections when its mesh played, and opens new
// ones now.
func (m *Manager) attachLocked(mem *Member) {
	if mem.gone || mem.inst != "" || mem.mediaReady != nil {
		return
	}
	stale := mem.media != nil
	mem.media = nil
	ready := make(chan struct{})
	mem.mediaReady = ready
	go m.attach(mem, ready, stale)
}

// attach joins a member to the SFU if its room is (still) in SFU mode;
// stale: end the member's previous attachment first.
func (m *Manager) attach(mem *Member, ready chan struct{}, stale bool) {
	defer close(ready)
	if stale {
		m.cfg.Media.Leave(mem.Room, mem.ID)
	}
	m.mu.Lock()
	r := m.rooms[mem.Room]
	if mem.gone || r == nil || r.mode != ModeSFU {
		mem.mediaReady = nil
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	sess, err := m.cfg.Media.Join(mem.Room, mem.ID, !mem.watchOnly, mem.sendSFU)
	m.mu.Lock()
	defer m.mu.Unlock()
	mem.mediaReady = nil
	if err != nil {
		m.log.Error("sfu: member not attached", "room", mem.Room, "member", mem.ID, "err", err)
		return
	}
	if mem.gone || r.mode != ModeSFU {
		go m.cfg.Media.Leave(mem.Room, mem.ID)
		return
	}
	mem.media = sess
}

// detachLater ends a member's SFU attachment after the pages had the time
// to bring their mesh up, unless the room went back to the SFU meanwhile.
func (m *Manager) detachLater(mem *Member) {
	time.Sleep(m.cfg.MeshBack)
	m.mu.Lock()
	r := m.rooms[mem.Room]
	if mem.media == nil || r != nil && r.mode == ModeSFU {
		m.mu.Unlock()
		return
	}
	mem.media = nil
	m.mu.Unlock()
	m.cfg.Media.Leave(mem.Room, mem.ID)
}

// sendSFU carries a router's message to the member's socket, if it has
// one now (within the resume window it has none: the page renegotiates
// when it comes back).
func (mem *Member) sendSFU(s protocol.SFU) {
	m := mem.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if mem.peer != nil && !mem.gone {
		mem.peer.Send(Frame{Data: protocol.Encode(protocol.TypeSFU, "", s)})
	}
}

// SFU hands the member's negotiation message to its SFU attachment.
func (mem *Member) SFU(s protocol.SFU) error {
	m := mem.m
	m.mu.Lock()
	sess, gone, ready := mem.media, mem.gone, mem.mediaReady
	m.mu.Unlock()
	if sess == nil && ready != nil { // being attached: the room just moved
		select {
		case <-ready:
		case <-time.After(attachWait):
		}
		m.mu.Lock()
		sess, gone = mem.media, mem.gone
		m.mu.Unlock()
	}
	switch {
	case gone:
		return ErrLeft
	case sess == nil:
		return ErrWrongMode
	}
	return sess.Signal(s)
}

// attachWait bounds how long a member's SFU message waits for its
// attachment (peer connections are being made).
const attachWait = 10 * time.Second

// SetSpeaking is the SFU's reading of who speaks (RFC 6464 audio levels),
// told to the room as the member's state, as a page does in the mesh.
func (m *Manager) SetSpeaking(roomName, id string, speaking bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rooms[roomName]
	if r == nil {
		return
	}
	mem := r.members[id]
	if mem == nil || mem.gone || mem.inst != "" || mem.state.Speaking == speaking {
		return
	}
	mem.state.Speaking = speaking
	r.broadcastLocked(mem.ID, stateFrame(mem.state))
}

// Mode is a room's media mode now (ModeMesh for a room nobody is in).
func (m *Manager) Mode(roomName string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.rooms[roomName]; r != nil {
		return r.mode
	}
	return m.initialMode()
}
