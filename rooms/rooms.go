// Package rooms owns rooms, their members and presence, and the links that
// let people in. It knows nothing of WebSockets: a connected member is a Peer,
// an interface this package defines and signaling implements.
package rooms

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"crisisroom/access"
	"crisisroom/protocol"
)

// Frame is one encoded server→client message. Coalesce, when set, makes it
// latest-wins: a queued frame with the same key is replaced rather than
// queued behind (presence states, later map states). Frames without a key
// must never be dropped: a peer that cannot take them is disconnected.
type Frame struct {
	Data     []byte
	Coalesce string
}

// Peer is one live connection of a member. Send must not block: the room
// calls it with its lock held, and one slow phone must never stall a room.
type Peer interface {
	Send(f Frame)
	// Close ends the connection with a protocol close code.
	Close(code int, reason string)
}

// Config of a Manager.
type Config struct {
	// Capacity is the most members with media a room holds (one more
	// seat is kept for hosts); watch-only members are counted apart,
	// up to Viewers (default 300).
	Capacity int
	Viewers  int
	// ResumeWindow is how long a member whose socket dropped keeps its seat.
	ResumeWindow time.Duration
	// ICEServers returns the ICE servers for one member (TURN credentials
	// are per member and short-lived). May be nil.
	ICEServers func(memberID string) []protocol.ICEServer
	// ICETransportPolicy is handed to clients: "all" (default) or "relay".
	ICETransportPolicy string
	Now                func() time.Time
	// OnAdmission is told of each lobby decision: the room, the guest's
	// name, the link it came through, who decided (a member's name) and
	// whether it was let in. OnKicked is told of each member or lobby
	// guest this instance ends for a revoked credential (kind and id of
	// the principal, as in KickPrincipal). Both are called outside the
	// rooms' lock, on the deciding goroutine: they must not take long
	// (an audit row, a main courante entry). Either may be nil.
	OnAdmission func(room, guestName, linkID, by string, admitted bool)
	OnKicked    func(room, name, kind, id string)
	// Media is the selective forwarding unit (media.go); nil, or a
	// cluster, keeps every room a mesh. Mode is ModeAuto (default),
	// ModeMesh or ModeSFU; an auto room moves to the SFU when a member
	// with media joins past MeshMax (default 4) and back to the mesh after
	// MeshBack (default 10 s) at two or fewer.
	Media    Media
	Mode     string
	MeshMax  int
	MeshBack time.Duration
}

// Errors of Enter, Join and Resume.
var (
	ErrRoomFull    = errors.New("room is full")
	ErrSessionGone = errors.New("session unknown or expired")
	ErrUnknownPeer = errors.New("no such peer in this room")
	ErrLeft        = errors.New("session has left")
	ErrUnknownRoom = errors.New("no such room")
	ErrRevoked     = errors.New("credential revoked")
	ErrLobby       = errors.New("this link's holders wait in the lobby: use Enter")
)

// Manager holds the live rooms of this process.
type Manager struct {
	cfg   Config
	store Store
	log   *slog.Logger

	mu      sync.Mutex
	rooms   map[string]*room
	resumes map[string]*Member // hex(hash(resume token)) → member
	cl      *cluster           // nil on a single instance (StartCluster)
	// revoked remembers the credentials revoked lately ("kind:id" → until
	// when), so that an entry whose link was checked before the
	// revocation cannot be seated after its kick (revoke.go).
	revoked   map[string]time.Time
	kickHooks []func(kind, id string)
}

// NewManager returns a Manager. Rooms are loaded lazily from the store.
func NewManager(cfg Config, st Store, log *slog.Logger) *Manager {
	if cfg.Capacity <= 0 {
		cfg.Capacity = 6
	}
	if cfg.ResumeWindow <= 0 {
		cfg.ResumeWindow = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ICETransportPolicy == "" {
		cfg.ICETransportPolicy = "all"
	}
	if cfg.Mode == "" {
		cfg.Mode = ModeAuto
	}
	if cfg.Viewers <= 0 {
		cfg.Viewers = defaultViewers
	}
	if cfg.MeshMax <= 0 {
		cfg.MeshMax = defaultMeshMax
	}
	if cfg.MeshBack <= 0 {
		cfg.MeshBack = defaultMeshBack
	}
	return &Manager{cfg: cfg, store: st, log: log, rooms: map[string]*room{}, resumes: map[string]*Member{}, revoked: map[string]time.Time{}}
}

type room struct {
	name    string
	members map[string]*Member // in cluster mode, remote members too
	// presenter leads the map; view is its last viewport, replayed to
	// late joiners.
	presenter string
	view      *protocol.MapView
	// Cluster mode only. pending counts the seats of local joins waiting
	// for their announcement to come back. presStamp and presInst order
	// presenter changes made on different instances (last writer wins).
	pending   int
	presStamp int64
	presInst  string
	// lobby holds the guests of this instance waiting to be admitted.
	lobby map[string]*Waiter
	// mode is the room's media mode (media.go); chosen is a host's
	// choice of rule ("" for the server's); back, when set, takes an SFU
	// room back to the mesh.
	mode   string
	chosen string
	back   *time.Timer
}

// Member is a seat in a room. Its peer is nil while its socket is away
// (within the resume window).
type Member struct {
	ID   string
	Name string
	Role string
	Room string
	// Principal is the credential the member entered with (nil for a
	// remote member); LinkID the link it came through ("" for a staff
	// session). Neither changes.
	Principal *access.Principal
	LinkID    string

	admitter  bool     // sent the lobby list (access.RoomAdmit)
	can       []string // for joined
	watchOnly bool
	joined    protocol.Joined // the first joined, for Join

	m          *Manager
	resumeHash string
	peer       Peer
	state      protocol.PeerState
	grace      *time.Timer
	gone       bool
	// expires is the link's expiry (zero for a staff session); expiry
	// ends the seat then (expiry.go).
	expires time.Time
	expiry  *time.Timer
	// inst is the instance holding a remote member's seat, "" for a member
	// seated here. A remote member has no peer: frames for it go through
	// the cluster link.
	inst string
	// media is the member's SFU attachment while its room is in SFU mode
	// (media.go); mediaReady, while it is being made, closes when it is.
	media      MediaSession
	mediaReady chan struct{}
}

// Entry is a request for a seat whose credential the caller has resolved
// and whose entry it has allowed (signaling decides access.RoomJoin).
type Entry struct {
	Room  string
	Name  string
	ReqID string // the join's envelope id: joined (and lobby) echo it
	Peer  Peer
	// Principal is who enters: a link's (LinkCredential) or a staff
	// session's. Kicks target it (KickPrincipal, RevokeLink).
	Principal *access.Principal
	// Link is the link the entry came through, nil for a staff session:
	// its uses are counted, its lobby holds the entry until a host admits
	// it, and revoking it ends the seat.
	Link *Link
	Role string // shown to the others (PeerInfo.Role)
	// Admitter: the member may admit lobby guests (access.RoomAdmit) and
	// is sent the lobby's list.
	Admitter  bool
	Can       []string // what joined says the member may do
	WatchOnly bool
}

// LinkCredential looks a join token up: the link, if it may let someone
// into its room now, and the principal it makes.
func (m *Manager) LinkCredential(ctx context.Context, token string) (Link, *access.Principal, error) {
	link, err := m.store.LinkByHash(ctx, HashSecret(token))
	if errors.Is(err, ErrNotFound) {
		return Link{}, nil, ErrTokenInvalid
	}
	if err != nil {
		return Link{}, nil, fmt.Errorf("look up link: %w", err)
	}
	if err := link.CheckJoin(m.cfg.Now()); err != nil {
		return Link{}, nil, err
	}
	role, ok := access.ParseRole(link.Role)
	if !ok {
		return Link{}, nil, ErrWrongScope
	}
	return link, access.LinkPrincipal(link.ID, link.Label, link.Scope, role, "", link.WatchOnly), nil
}

// Join checks a link token and seats a new member, deciding its rights
// with the link's principal in the link's room alone (tests and tools;
// signaling resolves and decides with the event's ancestors, then calls
// Enter). A link with a lobby is refused with ErrLobby: waiting needs
// Enter.
func (m *Manager) Join(ctx context.Context, token, name, reqID string, p Peer) (*Member, protocol.Joined, error) {
	l, pr, err := m.LinkCredential(ctx, token)
	if err != nil {
		return nil, protocol.Joined{}, err
	}
	if l.Lobby {
		return nil, protocol.Joined{}, ErrLobby
	}
	chain := []string{l.Scope}
	if err := access.Decide(pr, access.RoomJoin, chain); err != nil {
		return nil, protocol.Joined{}, ErrWrongScope
	}
	mem, _, err := m.Enter(ctx, Entry{Room: l.Scope, Name: name, ReqID: reqID, Peer: p, Principal: pr, Link: &l,
		Role: l.Role, Admitter: access.Decide(pr, access.RoomAdmit, chain) == nil, Can: Can(pr, chain), WatchOnly: l.WatchOnly})
	if err != nil {
		return nil, protocol.Joined{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return mem, mem.joined, nil
}

// RoomActions are the actions joined reports in Can.
var RoomActions = []access.Action{access.RoomChat, access.RoomSend, access.RoomPresent, access.RoomAnnotate,
	access.RoomAdmit, access.RoomMode, access.MapWatch, access.LogRead}

// Can lists the RoomActions p may take in the event chain (for the page,
// which hides the rest: the server still decides every message).
func Can(p *access.Principal, chain []string) []string {
	out := []string{}
	for _, a := range RoomActions {
		if access.Decide(p, a, chain) == nil {
			out = append(out, string(a))
		}
	}
	return out
}

// Enter seats e, or, when its link has a lobby, puts it in the room's
// lobby (w) until a member who may admit lets it in: then it gets joined,
// and w.Member returns the seat. A link's use is counted when the seat is
// given (at once, or on admission).
//
// The joined frame (echoing e.ReqID) is sent to e.Peer under the room
// lock, so that it precedes anything another member sends to the
// newcomer.
func (m *Manager) Enter(ctx context.Context, e Entry) (mem *Member, w *Waiter, err error) {
	if _, err := m.store.Room(ctx, e.Room); errors.Is(err, ErrNotFound) {
		return nil, nil, ErrUnknownRoom
	} else if err != nil {
		return nil, nil, fmt.Errorf("room %q: %w", e.Room, err)
	}
	if err := m.awaitReady(ctx); err != nil {
		return nil, nil, err
	}
	if e.Link != nil && e.Link.Lobby {
		w, err := m.wait(e)
		return nil, w, err
	}
	if err := m.roomForOne(e); err != nil { // before a use is counted
		return nil, nil, err
	}
	if e.Link != nil {
		if _, err := m.store.UseLink(ctx, e.Link.ID, m.cfg.Now()); err != nil {
			return nil, nil, linkErr(err)
		}
	}
	mem, err = m.seat(ctx, e, nil)
	return mem, nil, err
}

// linkErr: a link that vanished is as good as revoked.
func linkErr(err error) error {
	if errors.Is(err, ErrNotFound) {
		return ErrTokenInvalid
	}
	return err
}

// roomForOne refuses an entry the room has no place for, or whose
// credential was revoked meanwhile.
func (m *Manager) roomForOne(e Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.revokedLocked(e.Principal) {
		return ErrRevoked
	}
	if r := m.rooms[e.Room]; r != nil && m.fullLocked(r, e.WatchOnly, e.Admitter) {
		return ErrRoomFull
	}
	return nil
}

// seat gives e its seat; w is the lobby waiter it comes from, if any.
func (m *Manager) seat(ctx context.Context, e Entry, w *Waiter) (*Member, error) {
	resume, resumeHash := NewSecret()
	mem := &Member{ID: newID(), Name: e.Name, Role: e.Role, Room: e.Room, Principal: e.Principal, m: m,
		resumeHash: hex.EncodeToString(resumeHash), peer: e.Peer, admitter: e.Admitter, can: e.Can, watchOnly: e.WatchOnly,
		state: protocol.PeerState{Audio: !e.WatchOnly, Video: !e.WatchOnly}}
	if e.Link != nil {
		mem.LinkID, mem.expires = e.Link.ID, e.Link.ExpiresAt
	}
	mem.state.From = mem.ID

	m.mu.Lock()
	if w != nil && w.state == waitGone {
		m.mu.Unlock()
		return nil, ErrLeft
	}
	if m.revokedLocked(e.Principal) {
		m.mu.Unlock()
		return nil, ErrRevoked
	}
	r := m.roomLocked(e.Room)
	// In cluster mode the count includes the other instances' members, but
	// two instances seating the last place at once may both succeed.
	if m.fullLocked(r, e.WatchOnly, e.Admitter) {
		m.mu.Unlock()
		return nil, ErrRoomFull
	}
	if m.cl != nil {
		pj, err := m.proposeLocked(r, mem, resume, e.ReqID, w)
		m.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return m.awaitSeat(ctx, pj)
	}
	defer m.mu.Unlock()
	m.seatLocked(r, mem, resume, e.ReqID)
	w.seatedLocked(mem)
	return mem, nil
}

// seatLocked puts mem in its room: it answers joined (under the lock, so
// that it precedes anything another member sends to the newcomer) and
// tells the others.
func (m *Manager) seatLocked(r *room, mem *Member, resume, reqID string) {
	m.beforeSeatLocked(r, mem) // the mode the newcomer's joined says
	mem.joined = m.joinedLocked(r, mem, resume, false)
	mem.peer.Send(Frame{Data: protocol.Encode(protocol.TypeJoined, reqID, mem.joined)})
	r.members[mem.ID] = mem
	m.resumes[mem.resumeHash] = mem
	m.armExpiryLocked(mem)
	r.broadcastLocked(mem.ID, Frame{Data: protocol.Encode(protocol.TypePeerJoined, "", mem.infoLocked())})
	if mem.admitter && m.lobbyWaitingLocked(r) { // a newcomer takes an empty lobby for granted
		mem.peer.Send(m.lobbyFrameLocked(r))
	}
	m.log.Info("member joined", "room", r.name, "member", mem.ID, "role", mem.Role, "link", mem.LinkID, "size", len(r.members))
	m.afterSeatLocked(r, mem)
}

func (m *Manager) roomLocked(name string) *room {
	r := m.rooms[name]
	if r == nil {
		r = &room{name: name, members: map[string]*Member{}, mode: m.initialMode()}
		m.rooms[name] = r
	}
	return r
}

// Resume re-attaches a member whose socket dropped. Nobody else is told:
// to them the member never left.
func (m *Manager) Resume(token, reqID string, p Peer) (*Member, protocol.Joined, error) {
	key := hex.EncodeToString(HashSecret(token))
	m.mu.Lock()
	defer m.mu.Unlock()
	mem := m.resumes[key]
	if mem == nil {
		// In cluster mode the seat may be on another instance (the load
		// balancer sent the reconnection elsewhere): it cannot move, but
		// its holder frees it now rather than at the end of the window,
		// since the client is about to join again.
		m.announceLocked(event{Kind: evDrop, Hash: key})
	}
	if mem == nil || mem.gone {
		return nil, protocol.Joined{}, ErrSessionGone
	}
	if mem.grace != nil {
		mem.grace.Stop()
		mem.grace = nil
	}
	if old := mem.peer; old != nil && old != p {
		// The old socket is half-open (the network moved under it): this
		// one is the client's current view of the world.
		old.Close(protocol.CloseReplaced, "session resumed elsewhere")
	}
	// Rotate the resume token so a leaked one is good for one use only.
	delete(m.resumes, key)
	resume, h := NewSecret()
	mem.resumeHash = hex.EncodeToString(h)
	m.resumes[mem.resumeHash] = mem
	mem.peer = p
	r := m.rooms[mem.Room]
	m.log.Info("member resumed", "room", mem.Room, "member", mem.ID)
	joined := m.joinedLocked(r, mem, resume, true)
	p.Send(Frame{Data: protocol.Encode(protocol.TypeJoined, reqID, joined)})
	if mem.admitter { // it may have missed changes while away
		p.Send(m.lobbyFrameLocked(r))
	}
	return mem, joined, nil
}

func (m *Manager) joinedLocked(r *room, mem *Member, resume string, resumed bool) protocol.Joined {
	peers := make([]protocol.PeerInfo, 0, len(r.members))
	for _, o := range r.members {
		if o != mem {
			peers = append(peers, o.infoLocked())
		}
	}
	sort.Slice(peers, func(i, j int) bool { return peers[i].ID < peers[j].ID })
	var ice []protocol.ICEServer
	if m.cfg.ICEServers != nil {
		ice = m.cfg.ICEServers(mem.ID)
	}
	if ice == nil {
		ice = []protocol.ICEServer{}
	}
	return protocol.Joined{PeerID: mem.ID, Role: mem.Role, ResumeToken: resume, Room: r.name, Capacity: m.cfg.Capacity,
		Peers: peers, ICEServers: ice, Resumed: resumed, ResumeWindowMS: m.cfg.ResumeWindow.Milliseconds(),
		ICETransportPolicy: m.cfg.ICETransportPolicy,
		Presenter:          r.presenter, View: r.view, Can: mem.can, WatchOnly: mem.watchOnly, Mode: r.mode}
}

func (mem *Member) infoLocked() protocol.PeerInfo {
	return protocol.PeerInfo{ID: mem.ID, Name: mem.Name, Role: mem.Role, State: mem.state}
}

// Detach is called by the connection when its socket ends without a leave.
// The seat is kept for the resume window; p guards against a late Detach
// from a socket that was already replaced.
func (mem *Member) Detach(p Peer) {
	m := mem.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if mem.gone || mem.peer != p {
		return
	}
	mem.peer = nil
	mem.grace = time.AfterFunc(m.cfg.ResumeWindow, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if mem.peer == nil && !mem.gone {
			m.log.Info("resume window ended", "room", mem.Room, "member", mem.ID)
			m.removeLocked(mem)
		}
	})
}

// Leave removes the member at once and tells the others.
func (mem *Member) Leave() {
	m := mem.m
	m.mu.Lock()
	defer m.mu.Unlock()
	m.removeLocked(mem)
}

func (m *Manager) removeLocked(mem *Member) {
	if mem.gone {
		return
	}
	mem.gone = true
	if mem.grace != nil {
		mem.grace.Stop()
	}
	disarmExpiryLocked(mem)
	if mem.inst == "" {
		delete(m.resumes, mem.resumeHash)
		m.announceLocked(event{Kind: evLeave, Room: mem.Room, ID: mem.ID})
	} else {
		m.cl.forgetLocked(mem)
	}
	r := m.rooms[mem.Room]
	if r == nil {
		return
	}
	delete(r.members, mem.ID)
	r.broadcastLocked(mem.ID, Frame{Data: protocol.Encode(protocol.TypePeerLeft, "", protocol.PeerLeft{ID: mem.ID})})
	if r.presenter == mem.ID {
		r.clearPresenterLocked()
	}
	m.afterRemoveLocked(r, mem)
	m.log.Info("member left", "room", r.name, "member", mem.ID, "remote", mem.inst, "size", len(r.members))
}

// clearPresenterLocked: nobody presents. Every instance does it on its
// own when the presenter leaves; presInst is forgotten so that the same
// claim, repeated by the presenter's instance (a member dropped by mistake
// and back), wins again.
func (r *room) clearPresenterLocked() {
	r.presenter, r.presInst = "", ""
	r.broadcastLocked("", presenterFrame(""))
}

// Relay sends f to one other member of the same room. A member away within
// its resume window silently misses it: on resume it renegotiates (ICE
// restart) with everyone, so nothing depends on the lost frame.
func (mem *Member) Relay(to string, f Frame) error {
	m := mem.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if mem.gone {
		return ErrLeft
	}
	r := m.rooms[mem.Room]
	dst := r.members[to]
	if dst == nil || dst == mem {
		return ErrUnknownPeer
	}
	if dst.inst != "" {
		m.announceLocked(event{Kind: evRelay, Room: r.name, ID: to, Frame: f.Data})
		return nil
	}
	if dst.peer != nil {
		dst.peer.Send(f)
	}
	return nil
}

// Broadcast sends f to every other member of the room.
func (mem *Member) Broadcast(f Frame) error {
	m := mem.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if mem.gone {
		return ErrLeft
	}
	r := m.rooms[mem.Room]
	r.broadcastLocked(mem.ID, f)
	if m.cl != nil && r.hasRemoteLocked() { // chat is for people: no one elsewhere, nothing to send
		m.announceLocked(event{Kind: evCast, Room: r.name, ID: mem.ID, Frame: f.Data, Key: f.Coalesce})
	}
	return nil
}

// SetState records the member's presence state and shows it to the others;
// it is latest-wins in their queues.
func (mem *Member) SetState(s protocol.PeerState) error {
	m := mem.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if mem.gone {
		return ErrLeft
	}
	s.From = mem.ID
	mem.state = s
	m.rooms[mem.Room].broadcastLocked(mem.ID, stateFrame(s))
	// Always announced, even with nobody elsewhere: a later joiner on
	// another instance is given the state in its joined list.
	m.announceLocked(event{Kind: evState, Room: mem.Room, ID: mem.ID, State: &s})
	return nil
}

func stateFrame(s protocol.PeerState) Frame {
	return Frame{Data: protocol.Encode(protocol.TypeState, "", s), Coalesce: "state:" + s.From}
}

// ErrNotPresenter: only the current presenter sends its view.
var ErrNotPresenter = errors.New("only the current presenter leads the map")

func presenterFrame(id string) Frame {
	return Frame{Data: protocol.Encode(protocol.TypePresenter, "", protocol.Presenter{ID: id}), Coalesce: "presenter"}
}

// SetPresenter makes the member the map presenter (take) or gives it up.
// Everyone, the presenter included, learns who presents. Who may is the
// caller's to decide (access.RoomPresent).
func (mem *Member) SetPresenter(take bool) error {
	m := mem.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if mem.gone {
		return ErrLeft
	}
	r := m.rooms[mem.Room]
	switch {
	case take:
		r.presenter = mem.ID
	case r.presenter == mem.ID:
		r.presenter = ""
	default:
		return nil
	}
	if m.cl != nil {
		r.presStamp, r.presInst = max(time.Now().UnixNano(), r.presStamp+1), m.cl.self
		m.announceLocked(event{Kind: evPresenter, Room: r.name, ID: r.presenter, Stamp: r.presStamp})
	}
	r.broadcastLocked("", presenterFrame(r.presenter))
	return nil
}

// SetView records the presenter's viewport and shows it to the others,
// latest-wins: a follower on a slow link jumps to the newest view.
func (mem *Member) SetView(v protocol.MapView) error {
	m := mem.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if mem.gone {
		return ErrLeft
	}
	r := m.rooms[mem.Room]
	if r.presenter != mem.ID {
		return ErrNotPresenter
	}
	v.From = mem.ID
	r.view = &v
	r.broadcastLocked(mem.ID, viewFrame(v))
	m.announceLocked(event{Kind: evView, Room: r.name, View: &v})
	return nil
}

func viewFrame(v protocol.MapView) Frame {
	return Frame{Data: protocol.Encode(protocol.TypeMapView, "", v), Coalesce: "map-view"}
}

// CheckRoomToken tells whether token is a live room link, for sockets that
// watch the map without joining the video.
func (m *Manager) CheckRoomToken(ctx context.Context, token string) (Link, error) {
	l, err := m.store.LinkByHash(ctx, HashSecret(token))
	if errors.Is(err, ErrNotFound) {
		return l, ErrTokenInvalid
	}
	if err != nil {
		return l, err
	}
	return l, l.Check(KindRoom, m.cfg.Now())
}

func (r *room) broadcastLocked(except string, f Frame) {
	for id, o := range r.members {
		if id != except && o.peer != nil {
			o.peer.Send(f)
		}
	}
}

func (r *room) hasRemoteLocked() bool {
	for _, o := range r.members {
		if o.inst != "" {
			return true
		}
	}
	return false
}

// Members returns the room's members seated on this instance (for the
// admin view, metrics and tests).
func (m *Manager) Members(roomName string) []protocol.PeerInfo {
	return m.members(roomName, false)
}

// ClusterMembers returns the whole room as this instance sees it: its own
// members and, in cluster mode, the other instances' (what a newcomer is
// given in joined).
func (m *Manager) ClusterMembers(roomName string) []protocol.PeerInfo {
	return m.members(roomName, true)
}

func (m *Manager) members(roomName string, remote bool) []protocol.PeerInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rooms[roomName]
	if r == nil {
		return nil
	}
	out := make([]protocol.PeerInfo, 0, len(r.members))
	for _, o := range r.members {
		if remote || o.inst == "" {
			out = append(out, o.infoLocked())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Shutdown closes every live peer with a reconnect code, so that clients
// come back (to this instance after a restart, or another one) and resume;
// in cluster mode it first tells the other instances that this one's
// members are gone (see leaveClusterLocked).
func (m *Manager) Shutdown() {
	m.mu.Lock()
	c := m.cl
	if c != nil && !m.leaveClusterLocked() {
		c = nil // already done
	}
	for _, r := range m.rooms {
		for _, o := range r.members {
			if o.grace != nil {
				o.grace.Stop()
			}
			disarmExpiryLocked(o)
			if o.peer != nil {
				o.peer.Close(protocol.CloseShutdown, "server restarting")
			}
		}
	}
	m.mu.Unlock()
	if c != nil {
		c.stop()
	}
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// fullLocked tells whether r has no seat left for an entry: members with
// media (here and, in cluster mode, elsewhere, and the seats being
// proposed) count against Capacity, watch-only ones against Viewers. One
// seat past Capacity is kept for those who run the room (admitters):
// guests can never fill a room to the point that its hosts are refused.
func (m *Manager) fullLocked(r *room, watchOnly, admitter bool) bool {
	media := r.mediaMembersLocked()
	if watchOnly {
		return len(r.members)-media >= m.cfg.Viewers
	}
	limit := m.cfg.Capacity
	if admitter {
		limit++
	}
	return media+r.pending >= limit
}
