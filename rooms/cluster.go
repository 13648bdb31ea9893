package rooms

// Cluster mode: several instances behind one address share the rooms.
// Each instance keeps whole rooms in its view, its own members (seated
// here, with a socket) and the other instances' (remote members, without
// one), and tells the others over a ClusterLink what happens to its own:
// joins, leaves, states, the map presenter and view, chat, and the frames
// its members address to remote ones.
//
// Order. The link hands every message to every instance, the sender
// included, in one order. A join takes effect everywhere, on its own
// instance too, when its message comes back: all instances see the joins
// in the same order, so of two members joining at once on two instances
// the later is given the earlier in "joined" and offers, and the earlier
// gets "peer-joined" and waits — the newcomer-offers rule holds across
// instances. Everything else takes effect at once where it happens and is
// announced behind, in order.
//
// Presence. Every Beat each instance sends its whole state (its members,
// and the presenter when it is one of them). The others reconcile their
// view with it, which repairs any lost message, and drop an instance
// silent for TTL with its members: a crash. An instance that no longer
// hears its own messages knows the link failed, not the others: it drops
// nobody until the link is back and every instance has had a fresh TTL to
// be heard. After a loss (Lost, or its own messages back after a gap) it
// says hello and every instance answers with its state at once.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"crisisroom/protocol"
)

// ClusterLink carries the rooms' events between instances. Delivery is at
// most once, but every subscriber, the publisher's own included, receives
// the messages in one order (one Redis server gives that). rooms/cluster
// implements it on the bus.
type ClusterLink interface {
	Publish(ctx context.Context, msg []byte) error
	// Subscribe delivers every instance's messages until the feed is
	// closed or ctx ends.
	Subscribe(ctx context.Context) (ClusterFeed, error)
}

// ClusterFeed is a subscription to the link (a bus.Subscription fits).
type ClusterFeed interface {
	C() <-chan []byte
	// Lost signals that messages may have been missed, once the feed is
	// live again.
	Lost() <-chan struct{}
	Close()
}

// ClusterConfig of StartCluster. Zero durations take the defaults.
type ClusterConfig struct {
	Link     ClusterLink
	Instance string        // this instance's name on the link; random when empty
	Beat     time.Duration // how often the state is sent (2 s)
	TTL      time.Duration // silence after which an instance counts as dead (3 Beats)
	// JoinWait bounds how long a join waits for its announcement to come
	// back (3 s): past it the link is down and the client is told to retry.
	JoinWait time.Duration
}

// ErrClusterDown: the cluster link did not carry a join in time.
var ErrClusterDown = errors.New("cluster link down: join not confirmed")

// Event kinds.
const (
	evHello     = "hello"     // send me your state
	evBeat      = "beat"      // my whole state
	evBye       = "bye"       // this instance stops: its members are gone
	evJoin      = "join"      // Seat joined
	evLeave     = "leave"     // member ID left
	evState     = "state"     // member ID's State
	evRelay     = "relay"     // Frame for member ID
	evCast      = "cast"      // Frame from member ID for the room
	evPresenter = "presenter" // member ID presents ("" nobody) as of Stamp
	evView      = "view"      // the presenter's View
	evDrop      = "drop"      // the seat whose resume hash is Hash is abandoned
	evEvicted   = "evicted"   // instance ID was taken for dead here, wrongly: it is back
	evLobby     = "lobby"     // the sender's lobby of Room is now Lobby
	evAdmit     = "admit"     // guest ID, waiting in Room's lobby, is admitted (Allow) or refused By a member
	evKick      = "kick"      // end the seats of principal Key (kind) ID: revoked
)

// event is one message on the link.
type event struct {
	Kind  string                `json:"k"`
	Inst  string                `json:"i"`
	Room  string                `json:"r,omitempty"`
	ID    string                `json:"id,omitempty"`
	Seat  *seat                 `json:"seat,omitempty"`
	State *protocol.PeerState   `json:"state,omitempty"`
	Frame json.RawMessage       `json:"f,omitempty"`
	Key   string                `json:"c,omitempty"`
	Stamp int64                 `json:"t,omitempty"`
	View  *protocol.MapView     `json:"view,omitempty"`
	Hash  string                `json:"h,omitempty"`
	Seats []seat                `json:"seats,omitempty"`
	Shows []show                `json:"shows,omitempty"`
	Allow bool                  `json:"a,omitempty"`
	By    string                `json:"by,omitempty"`
	Lobby []protocol.LobbyEntry `json:"lobby,omitempty"`
	// Lobbies are the beating instance's lobbies, room by room.
	Lobbies []lobbyRoom `json:"lobbies,omitempty"`
}

// lobbyRoom is an instance's lobby of one room in a beat.
type lobbyRoom struct {
	Room    string                `json:"room"`
	Waiting []protocol.LobbyEntry `json:"waiting"`
}

// seat is a member in a beat or a join.
type seat struct {
	Room string `json:"room"`
	protocol.PeerInfo
}

// show is a room presented by a member of the beating instance.
type show struct {
	Room  string            `json:"room"`
	ID    string            `json:"id"`
	Stamp int64             `json:"t"`
	View  *protocol.MapView `json:"view,omitempty"`
}

// cluster is a Manager's link state. The fields after the queue are
// guarded by Manager.mu.
type cluster struct {
	cfg    ClusterConfig
	self   string
	feed   ClusterFeed
	log    *slog.Logger
	cancel context.CancelFunc

	// The outgoing queue: announcements are queued under Manager.mu, in
	// the order things happened, and one goroutine publishes them in that
	// order without holding anyone up.
	qmu     sync.Mutex
	queue   [][]byte
	qclosed bool
	dropped int
	wake    chan struct{}

	ready    chan struct{} // closed a Beat after start: every live instance has answered hello
	quit     chan struct{} // ends the receive loop
	recvDone chan struct{}
	pubDone  chan struct{}

	remotes  map[string]*remote
	pending  map[string]*pendingJoin // local joins awaiting their echo, by member
	selfSeen time.Time               // when our own message last came back
	expired  map[string]time.Time    // instances taken for dead, and when
	kicked   time.Time               // when our members were last told to reconnect (evEvicted)
	closed   bool
}

// remote is another instance as heard here.
type remote struct {
	seats map[string]*Member
	lobby map[string][]protocol.LobbyEntry // its waiting guests, by room
	seen  time.Time
	timer *time.Timer // fires TTL after the last message: expire
}

type pendingJoin struct {
	mem           *Member
	r             *room
	resume, reqID string
	w             *Waiter       // the lobby guest being seated, if any
	done          chan struct{} // closed when seated
}

// maxQueued bounds the announcements waiting for a link that is down;
// past it they are dropped (beats repair presence once it is back).
const maxQueued = 4096

// publishTimeout bounds one publication.
const publishTimeout = 2 * time.Second

// StartCluster links the Manager to the other instances of a cluster.
// Without it the Manager is a single instance's and nothing is announced.
func (m *Manager) StartCluster(cc ClusterConfig) error {
	if cc.Link == nil {
		return errors.New("rooms: cluster without a link")
	}
	if cc.Instance == "" { // the host name tells operators whose it is; restarts get a new name
		host, _ := os.Hostname()
		cc.Instance = host + "-" + newID()[:8]
	}
	if cc.Beat <= 0 {
		cc.Beat = 2 * time.Second
	}
	if cc.TTL <= 0 {
		cc.TTL = 3 * cc.Beat
	}
	if cc.JoinWait <= 0 {
		cc.JoinWait = 3 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	feed, err := cc.Link.Subscribe(ctx)
	if err != nil {
		cancel()
		return fmt.Errorf("rooms: cluster subscribe: %w", err)
	}
	c := &cluster{cfg: cc, self: cc.Instance, feed: feed, log: m.log.With("instance", cc.Instance), cancel: cancel,
		wake: make(chan struct{}, 1), ready: make(chan struct{}), quit: make(chan struct{}), recvDone: make(chan struct{}), pubDone: make(chan struct{}),
		remotes: map[string]*remote{}, pending: map[string]*pendingJoin{}, expired: map[string]time.Time{}}
	m.mu.Lock()
	if m.cl != nil {
		m.mu.Unlock()
		feed.Close()
		cancel()
		return errors.New("rooms: cluster already started")
	}
	m.cl = c
	c.enqueue(event{Kind: evHello})
	m.beatLocked()
	m.mu.Unlock()
	go c.publishLoop()
	go m.receiveLoop(c)
	time.AfterFunc(cc.Beat, func() { close(c.ready) })
	c.log.Info("cluster link up", "beat", cc.Beat, "ttl", cc.TTL)
	return nil
}

// announceLocked queues e for the other instances; no-op on a single
// instance.
func (m *Manager) announceLocked(e event) {
	if m.cl != nil {
		m.cl.enqueue(e)
	}
}

func (c *cluster) enqueue(e event) {
	e.Inst = c.self
	b, err := json.Marshal(e)
	if err != nil {
		c.log.Error("cluster: encode", "kind", e.Kind, "err", err)
		return
	}
	c.qmu.Lock()
	switch {
	case c.qclosed:
	case len(c.queue) >= maxQueued:
		c.dropped++
	default:
		c.queue = append(c.queue, b)
	}
	c.qmu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// publishLoop publishes the queue in order until it is closed and empty.
func (c *cluster) publishLoop() {
	defer close(c.pubDone)
	failing := false
	for {
		c.qmu.Lock()
		batch, end, dropped := c.queue, c.qclosed && len(c.queue) == 0, c.dropped
		c.queue, c.dropped = nil, 0
		c.qmu.Unlock()
		if end {
			return
		}
		if dropped > 0 {
			c.log.Warn("cluster: announcements dropped while the link was down", "count", dropped)
		}
		if len(batch) == 0 {
			<-c.wake
			continue
		}
		for _, b := range batch {
			ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
			err := c.cfg.Link.Publish(ctx, b)
			cancel()
			switch {
			case err != nil && !failing:
				c.log.Warn("cluster: publish failed; announcements are lost until the link is back", "err", err)
			case err == nil && failing:
				c.log.Info("cluster: publishing again")
			}
			failing = err != nil
		}
	}
}

// receiveLoop applies the other instances' messages and beats. It ends
// with the feed (the link closed: to the others this instance is dead) or
// at Shutdown.
func (m *Manager) receiveLoop(c *cluster) {
	defer close(c.recvDone)
	beat := time.NewTicker(c.cfg.Beat)
	defer beat.Stop()
	for {
		select {
		case msg, ok := <-c.feed.C():
			if !ok {
				c.log.Warn("cluster: link closed; this instance no longer hears nor beats")
				return
			}
			m.receive(c, msg)
		case <-c.feed.Lost():
			m.mu.Lock()
			if !c.closed {
				m.relinkedLocked(c, "messages lost")
			}
			m.mu.Unlock()
		case <-beat.C:
			m.mu.Lock()
			if !c.closed {
				m.beatLocked()
			}
			m.mu.Unlock()
		case <-c.quit:
			return
		}
	}
}

func (m *Manager) receive(c *cluster, msg []byte) {
	var e event
	if err := json.Unmarshal(msg, &e); err != nil || e.Inst == "" {
		c.log.Warn("cluster: message ignored", "err", err, "size", len(msg))
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c.closed {
		return
	}
	now := time.Now()
	if e.Inst == c.self {
		if !c.selfSeen.IsZero() && now.Sub(c.selfSeen) > 2*c.cfg.Beat {
			m.relinkedLocked(c, "own messages back after a gap")
		}
		c.selfSeen = now
		if e.Kind == evJoin && e.Seat != nil {
			m.admitLocked(c, e.Seat.ID)
		}
		return
	}
	m.applyLocked(c, m.touchLocked(c, e.Inst, now), e)
}

func (m *Manager) applyLocked(c *cluster, rem *remote, e event) {
	switch e.Kind {
	case evHello:
		m.beatLocked()
	case evBeat:
		m.reconcileLocked(rem, e)
	case evBye:
		c.log.Info("cluster: instance left", "from", e.Inst, "members", len(rem.seats))
		m.forgetInstanceLocked(c, e.Inst)
	case evJoin:
		if e.Seat != nil {
			m.addRemoteLocked(rem, e.Inst, *e.Seat)
		}
	case evLeave:
		if o := rem.seats[e.ID]; o != nil {
			m.removeLocked(o)
		}
	case evState:
		if o := rem.seats[e.ID]; o != nil && e.State != nil {
			m.remoteStateLocked(o, *e.State)
		}
	case evRelay:
		if r := m.rooms[e.Room]; r != nil {
			if dst := r.members[e.ID]; dst != nil && dst.inst == "" && dst.peer != nil {
				dst.peer.Send(Frame{Data: e.Frame})
			}
		}
	case evCast:
		if r := m.rooms[e.Room]; r != nil {
			r.broadcastLocked(e.ID, Frame{Data: e.Frame, Coalesce: e.Key})
		}
	case evPresenter:
		m.presentLocked(m.roomLocked(e.Room), e.ID, e.Stamp, e.Inst, nil)
	case evView:
		if e.View != nil {
			m.roomLocked(e.Room).viewLocked(*e.View)
		}
	case evEvicted:
		if e.ID == c.self {
			m.evictedLocked(c)
		}
	case evLobby:
		m.remoteLobbyLocked(rem, e.Room, e.Lobby)
	case evAdmit:
		m.admitRemoteLocked(e)
	case evKick:
		kicked := m.kickLocked(e.Key, e.ID)
		go m.afterKick(e.Key, e.ID, kicked)
	case evDrop:
		if mem := m.resumes[e.Hash]; mem != nil && !mem.gone {
			c.log.Info("cluster: seat resumed elsewhere; freed", "room", mem.Room, "member", mem.ID)
			if mem.peer != nil { // a half-open socket: the client is elsewhere now
				mem.peer.Close(protocol.CloseReplaced, "session resumed elsewhere")
			}
			m.removeLocked(mem)
		}
	}
}

// awaitReady holds the joins of a fresh instance until it has heard the
// others' state: a newcomer seated before would be given a room without
// them, and nobody would offer.
func (m *Manager) awaitReady(ctx context.Context) error {
	m.mu.Lock()
	c := m.cl
	m.mu.Unlock()
	if c == nil {
		return nil
	}
	select {
	case <-c.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// proposeLocked announces a local join; the member is seated when the
// announcement comes back (admitLocked).
func (m *Manager) proposeLocked(r *room, mem *Member, resume, reqID string, w *Waiter) (*pendingJoin, error) {
	c := m.cl
	if c.closed {
		return nil, ErrClusterDown
	}
	pj := &pendingJoin{mem: mem, r: r, resume: resume, reqID: reqID, w: w, done: make(chan struct{})}
	c.pending[mem.ID] = pj
	r.pending++
	c.enqueue(event{Kind: evJoin, Room: r.name, Seat: &seat{Room: r.name, PeerInfo: mem.infoLocked()}})
	return pj, nil
}

func (m *Manager) admitLocked(c *cluster, id string) {
	pj := c.pending[id]
	if pj == nil {
		return // given up on (awaitSeat)
	}
	delete(c.pending, id)
	pj.r.pending--
	m.seatLocked(pj.r, pj.mem, pj.resume, pj.reqID)
	pj.w.seatedLocked(pj.mem)
	close(pj.done)
}

// awaitSeat waits until a proposed join is seated, or gives it up.
func (m *Manager) awaitSeat(ctx context.Context, pj *pendingJoin) (*Member, error) {
	c := m.cl
	t := time.NewTimer(c.cfg.JoinWait)
	defer t.Stop()
	select {
	case <-pj.done:
		return pj.mem, nil
	case <-t.C:
	case <-ctx.Done():
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-pj.done: // seated meanwhile
		return pj.mem, nil
	default:
	}
	delete(c.pending, pj.mem.ID)
	pj.r.pending--
	pj.mem.gone = true
	// Whoever heard the join forgets it.
	c.enqueue(event{Kind: evLeave, Room: pj.r.name, ID: pj.mem.ID})
	c.log.Warn("cluster: join not confirmed by the link in time", "room", pj.r.name, "member", pj.mem.ID, "wait", c.cfg.JoinWait)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return nil, ErrClusterDown
}

// leaveClusterLocked is Shutdown's part in cluster mode. The seats here
// cannot be resumed elsewhere (resume state lives in this process only),
// so the other instances are told at once that they are gone, rather than
// keeping ghosts for a TTL: the clients rejoin through another instance
// and appear there as new members.
func (m *Manager) leaveClusterLocked() (left bool) {
	c := m.cl
	if c.closed {
		return false
	}
	c.enqueue(event{Kind: evBye})
	c.closed = true
	for _, rem := range c.remotes {
		rem.timer.Stop()
	}
	c.qmu.Lock()
	c.qclosed = true
	c.qmu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return true
}

// stop ends the loops, waiting a little for the bye to go out.
func (c *cluster) stop() {
	close(c.quit)
	<-c.recvDone
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-c.pubDone:
	case <-t.C:
		c.log.Warn("cluster: the last announcements are still on their way")
	}
	c.feed.Close()
	c.cancel()
}
