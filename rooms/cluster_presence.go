package rooms

// Presence across instances: who is alive, the beats that carry each
// instance's whole state, and applying what other instances announce
// about their members and the map presenter (see cluster.go).

import (
	"slices"
	"time"

	"crisisroom/protocol"
)

// touchLocked notes that inst spoke: it is alive for another TTL.
func (m *Manager) touchLocked(c *cluster, inst string, now time.Time) *remote {
	rem := c.remotes[inst]
	if rem == nil {
		rem = &remote{seats: map[string]*Member{}, lobby: map[string][]protocol.LobbyEntry{}}
		c.remotes[inst] = rem
		rem.timer = time.AfterFunc(c.cfg.TTL, func() { m.expire(c, inst, rem) })
		c.log.Info("cluster: instance heard", "from", inst)
		if _, was := c.expired[inst]; was {
			// Its link was down, not the instance: its members got
			// peer-left here, and those here peer-joined when its beat
			// came back, so nobody offers. It makes them resume.
			delete(c.expired, inst)
			c.enqueue(event{Kind: evEvicted, ID: inst})
		}
	} else {
		rem.timer.Reset(c.cfg.TTL)
	}
	rem.seen = now
	return rem
}

// expire drops an instance silent for TTL, unless the silence is ours.
func (m *Manager) expire(c *cluster, inst string, rem *remote) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c.closed || c.remotes[inst] != rem {
		return
	}
	now := time.Now()
	silent := now.Sub(rem.seen)
	if silent < c.cfg.TTL { // spoke while this call waited for the lock
		rem.timer.Reset(c.cfg.TTL - silent)
		return
	}
	if now.Sub(c.selfSeen) > 2*c.cfg.Beat {
		// Our own beats do not come back either: the link is down, and
		// the other may well be alive. Judge it once the link is back.
		rem.timer.Reset(c.cfg.Beat)
		return
	}
	c.log.Warn("cluster: instance silent; its members leave", "from", inst, "silent", silent, "members", len(rem.seats))
	m.forgetInstanceLocked(c, inst)
	for id, at := range c.expired { // a crashed instance never comes back: its name is new on restart
		if now.Sub(at) > time.Hour {
			delete(c.expired, id)
		}
	}
	c.expired[inst] = now
}

// evictedLocked: another instance took this one for dead while its link
// was down, and its members for gone. Each of them reconnects (a reconnect
// code) and resumes its seat here; on resume a client restarts ICE with
// every peer it is given, which renegotiates with those who dropped it.
func (m *Manager) evictedLocked(c *cluster) {
	now := time.Now()
	if now.Sub(c.kicked) < c.cfg.TTL { // several instances say so: once is enough
		return
	}
	c.kicked = now
	n := 0
	for _, r := range m.rooms {
		for _, o := range r.members {
			if o.inst == "" && o.peer != nil {
				o.peer.Close(protocol.CloseShutdown, "cluster link was down: reconnect and resume")
				n++
			}
		}
	}
	c.log.Warn("cluster: taken for dead while the link was down; members told to resume", "members", n)
}

// relinkedLocked: messages may have been lost. Everyone gets a fresh TTL
// to be heard, and is asked for its state.
func (m *Manager) relinkedLocked(c *cluster, why string) {
	c.log.Info("cluster: link back; asking every instance for its state", "why", why)
	now := time.Now()
	for _, rem := range c.remotes {
		rem.seen = now
		rem.timer.Reset(c.cfg.TTL)
	}
	c.enqueue(event{Kind: evHello})
	m.beatLocked()
}

func (m *Manager) forgetInstanceLocked(c *cluster, inst string) {
	rem := c.remotes[inst]
	if rem == nil {
		return
	}
	rem.timer.Stop()
	delete(c.remotes, inst)
	for _, o := range rem.seats {
		m.removeLocked(o)
	}
	for room := range rem.lobby { // its guests' sockets ended with it
		if r := m.rooms[room]; r != nil {
			m.sendLobbyLocked(r)
		}
	}
}

// forgetLocked takes a removed remote member out of its instance's seats.
func (c *cluster) forgetLocked(mem *Member) {
	if rem := c.remotes[mem.inst]; rem != nil {
		delete(rem.seats, mem.ID)
	}
}

// beatLocked announces this instance's whole state: its members (those
// whose join is on its way too: the join was announced before) and the
// rooms one of them presents.
func (m *Manager) beatLocked() {
	c := m.cl
	e := event{Kind: evBeat}
	for _, r := range m.rooms {
		for _, o := range r.members {
			if o.inst == "" {
				e.Seats = append(e.Seats, seat{Room: r.name, PeerInfo: o.infoLocked()})
			}
		}
		if p := r.members[r.presenter]; p != nil && p.inst == "" {
			e.Shows = append(e.Shows, show{Room: r.name, ID: p.ID, Stamp: r.presStamp, View: r.view})
		}
		if len(r.lobby) > 0 {
			e.Lobbies = append(e.Lobbies, lobbyRoom{Room: r.name, Waiting: r.localLobbyLocked()})
		}
	}
	for _, pj := range c.pending {
		e.Seats = append(e.Seats, seat{Room: pj.r.name, PeerInfo: pj.mem.infoLocked()})
	}
	c.enqueue(e)
}

// reconcileLocked makes an instance's members and presenters here what
// its beat says.
func (m *Manager) reconcileLocked(rem *remote, e event) {
	listed := make(map[string]bool, len(e.Seats))
	for _, s := range e.Seats {
		listed[s.ID] = true
		s.State.From = s.ID
		if o := rem.seats[s.ID]; o == nil {
			m.addRemoteLocked(rem, e.Inst, s)
		} else if o.state != s.State {
			m.remoteStateLocked(o, s.State)
		}
	}
	for id, o := range rem.seats {
		if !listed[id] {
			m.removeLocked(o)
		}
	}
	shown := make(map[string]bool, len(e.Shows))
	for _, sh := range e.Shows {
		shown[sh.Room] = true
		m.presentLocked(m.roomLocked(sh.Room), sh.ID, sh.Stamp, e.Inst, sh.View)
	}
	for _, r := range m.rooms {
		if p := r.members[r.presenter]; p != nil && p.inst == e.Inst && !shown[r.name] {
			r.clearPresenterLocked() // its release was lost
		}
	}
	m.reconcileLobbiesLocked(rem, e.Lobbies)
}

// reconcileLobbiesLocked makes an instance's lobbies here what its beat
// says, telling the admitters of the rooms whose lobby changed.
func (m *Manager) reconcileLobbiesLocked(rem *remote, lobbies []lobbyRoom) {
	listed := make(map[string]bool, len(lobbies))
	for _, l := range lobbies {
		listed[l.Room] = true
		if !slices.Equal(rem.lobby[l.Room], l.Waiting) {
			m.remoteLobbyLocked(rem, l.Room, l.Waiting)
		}
	}
	for room := range rem.lobby {
		if !listed[room] {
			m.remoteLobbyLocked(rem, room, nil)
		}
	}
}

func (m *Manager) addRemoteLocked(rem *remote, inst string, s seat) {
	r := m.roomLocked(s.Room)
	if r.members[s.ID] != nil {
		return
	}
	s.State.From = s.ID
	o := &Member{ID: s.ID, Name: s.Name, Role: s.Role, Room: s.Room, m: m, inst: inst, state: s.State}
	r.members[o.ID] = o
	rem.seats[o.ID] = o
	r.broadcastLocked(o.ID, Frame{Data: protocol.Encode(protocol.TypePeerJoined, "", o.infoLocked())})
	m.log.Info("member joined", "room", r.name, "member", o.ID, "role", o.Role, "remote", inst, "size", len(r.members))
}

func (m *Manager) remoteStateLocked(o *Member, s protocol.PeerState) {
	s.From = o.ID
	o.state = s
	m.rooms[o.Room].broadcastLocked(o.ID, stateFrame(s))
}

// presentLocked applies a presenter change made on instance inst at stamp
// if it is the latest (ties go to the larger instance name), and the
// presenter's view if one comes with it.
func (m *Manager) presentLocked(r *room, id string, stamp int64, inst string, view *protocol.MapView) {
	if stamp < r.presStamp || stamp == r.presStamp && inst <= r.presInst {
		if view != nil && stamp == r.presStamp && inst == r.presInst {
			r.viewLocked(*view) // the same claim: its view may be newer
		}
		return
	}
	r.presStamp, r.presInst = stamp, inst
	if r.presenter != id {
		r.presenter = id
		r.broadcastLocked("", presenterFrame(id))
	}
	if view != nil {
		r.viewLocked(*view)
	}
}

// viewLocked applies a remote presenter's view.
func (r *room) viewLocked(v protocol.MapView) {
	if v.From == "" || v.From != r.presenter || r.view != nil && *r.view == v {
		return
	}
	r.view = &v
	r.broadcastLocked(v.From, viewFrame(v))
}
