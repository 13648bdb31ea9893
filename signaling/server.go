// Package signaling is the WebSocket endpoint: it owns the sockets, decodes
// the protocol and hands room operations to rooms. It is the only package
// that imports gorilla/websocket.
package signaling

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"crisisroom/access"
	"crisisroom/internal/origin"
	"crisisroom/livemap"
	"crisisroom/protocol"
	"crisisroom/rooms"
)

// Config of the endpoint. Zero values take the defaults of withDefaults.
type Config struct {
	// Origins are the web origins whose pages may open a socket: the
	// request's own host, the public URL's and the configured ones (the
	// app's one policy, which its login uses too).
	Origins      origin.Policy
	SendQueue    int           // frames queued per socket before a slow one is dropped
	WriteTimeout time.Duration // per write
	PingInterval time.Duration // server pings; a pong must come within PongWait
	PongWait     time.Duration
	// MsgRate/MsgBurst bound what one socket may send. Over it messages are
	// refused with rate_limited; MaxViolations refusals or protocol errors
	// close the socket.
	MsgRate       rate.Limit
	MsgBurst      int
	MaxViolations int
	Metrics       *Metrics
	// Map is the live map feed; nil when the server has no territory.
	Map Feed
	// Annotations are the rooms' map annotations; nil turns annotate off.
	Annotations *livemap.Annotations
	// Log is the main courante's feed (topic "log"); nil turns it off.
	Log LogFeed
	// Authenticate resolves the credential the socket is opened with (a
	// staff session's cookie) when it is upgraded; nil, or a nil answer,
	// means none: the socket then needs a link's token to join or watch.
	Authenticate func(r *http.Request) *access.Principal
	// EventChain returns a room's event followed by its ancestors, for
	// access.Decide (roles held in an event hold in its sub-events). It is
	// called when a socket joins or subscribes, not per message. Default:
	// the room alone.
	EventChain func(room string) []string
}

func (c Config) withDefaults() Config {
	if c.SendQueue <= 0 {
		c.SendQueue = 256
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 15 * time.Second
	}
	if c.PongWait <= 0 {
		c.PongWait = 2*c.PingInterval + 5*time.Second
	}
	if c.MsgRate <= 0 {
		c.MsgRate = 50
	}
	if c.MsgBurst <= 0 {
		c.MsgBurst = 200 // a join trickles tens of candidates per peer at once
	}
	if c.MaxViolations <= 0 {
		c.MaxViolations = 50
	}
	if c.Metrics == nil {
		c.Metrics = &Metrics{}
	}
	if c.EventChain == nil {
		c.EventChain = func(room string) []string { return []string{room} }
	}
	return c
}

// Metrics are the endpoint's counters.
type Metrics struct {
	connections atomic.Int64
	messagesIn  atomic.Int64
	messagesOut atomic.Int64
	slowDropped atomic.Int64
}

// Snapshot returns the counters' current values.
func (m *Metrics) Snapshot() map[string]int64 {
	return map[string]int64{"connections": m.connections.Load(), "messages_in": m.messagesIn.Load(),
		"messages_out": m.messagesOut.Load(), "slow_dropped": m.slowDropped.Load()}
}

// Server serves /ws.
type Server struct {
	cfg   Config
	rooms *rooms.Manager
	log   *slog.Logger
	up    websocket.Upgrader

	mu       sync.Mutex
	conns    map[*conn]struct{}
	closing  bool
	wg       sync.WaitGroup
	pinging  bool // the keep-alive goroutine runs
	nextSlot int
	box      outbox
}

// New returns a Server.
func New(cfg Config, rm *rooms.Manager, log *slog.Logger) *Server {
	s := &Server{cfg: cfg.withDefaults(), rooms: rm, log: log, conns: map[*conn]struct{}{},
		// Half the cores write; the rest read, decode and run everything
		// else. One writer on two cores keeps a 5,000-watcher fan-out
		// fastest: a second one only contends with the readers.
		box: outbox{max: max(1, runtime.GOMAXPROCS(0)/2), epoch: time.Now()}}
	s.up = websocket.Upgrader{
		// Zero read size: gorilla reuses the 4 KiB reader net/http hijacked
		// instead of allocating another. Data frames bypass gorilla's writer
		// (conn.go); with a pool, the rare frame it writes (close) borrows a
		// buffer instead of each socket holding one.
		ReadBufferSize:  0,
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     s.checkOrigin,
		// Handshake errors are answered with a plain status by gorilla.
	}
	rm.WatchKicks(s.kick)
	return s
}

// kick closes every socket that acts with the principal (a member's seat
// is ended by rooms; this also ends map and log watchers): its link or
// token was revoked, or its user logged out everywhere.
func (s *Server) kick(kind, id string) {
	key := access.Key(kind, id)
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.hasKey(key) {
			rooms.Refuse(c, "", rooms.ErrRevoked)
		}
	}
}

// StaffPrincipals are the staff accounts' principals the open sockets act
// with, one per login: the server checks them against the store now and
// then, for account changes nobody announced here.
func (s *Server) StaffPrincipals() []*access.Principal {
	seen := map[string]bool{}
	var out []*access.Principal
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.mu.Lock()
		for _, p := range c.staff {
			if k := p.Key() + "/" + p.Session; !seen[k] {
				seen[k] = true
				out = append(out, p)
			}
		}
		c.mu.Unlock()
	}
	return out
}

// checkOrigin: a page on another site cannot open a socket with the
// user's ambient credentials (origin.Policy says which pages are ours).
func (s *Server) checkOrigin(r *http.Request) bool {
	if s.cfg.Origins.Allows(r) {
		return true
	}
	s.log.Warn("websocket origin refused", "origin", r.Header.Get("Origin"), "host", r.Host)
	return false
}

// ServeHTTP upgrades and starts the connection's reader. The reader runs on
// a goroutine of its own and the handler returns at once: net/http then lets
// go of what it kept for the request (buffers, request, route context), and
// the reader's stack starts small instead of below the router's frames.
// With thousands of map watchers that is a third of each socket's memory.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var who *access.Principal
	if s.cfg.Authenticate != nil {
		who = s.cfg.Authenticate(r)
	}
	ws, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return // gorilla has answered with the reason
	}
	c := newConn(ws, &s.cfg, &s.box)
	if who != nil {
		c.addKeys(who)
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		c.Close(protocol.CloseShutdown, "server restarting")
		c.drain()
		return
	}
	s.conns[c] = struct{}{}
	c.slot, s.nextSlot = s.nextSlot, (s.nextSlot+1)%pingSlots
	if !s.pinging {
		s.pinging = true
		go s.keepalive()
	}
	s.wg.Add(1)
	s.mu.Unlock()
	s.cfg.Metrics.connections.Add(1)
	go s.serve(c, r.RemoteAddr, who)
}

// serve reads one connection until it ends. The request's context ends
// when the handler returns, so handlers get a background one (they bound
// their own calls).
func (s *Server) serve(c *conn, remote string, who *access.Principal) {
	defer func() {
		s.cfg.Metrics.connections.Add(-1)
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.wg.Done()
	}()
	// No longer under net/http's recovery: a handler's panic must cost
	// this socket only.
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("websocket handler panicked", "panic", v, "remote", remote, "stack", string(debug.Stack()))
			c.Close(protocol.CloseShutdown, "internal error")
		}
	}()
	sess := &session{s: s, c: c, limiter: rate.NewLimiter(s.cfg.MsgRate, s.cfg.MsgBurst), remote: remote, principal: who}
	sess.readLoop(context.Background())
}

// pingSlots spreads the pings: each tick of the keep-alive pings one slot.
const pingSlots = 16

// keepalive pings every socket once per PingInterval from one goroutine,
// instead of a ticker per connection, a slot at a time so that thousands
// of pings do not go out at once; and it ends writes stuck for longer than
// WriteTimeout. It ends with the last connection.
func (s *Server) keepalive() {
	t := time.NewTicker(max(s.cfg.PingInterval/pingSlots, time.Millisecond))
	defer t.Stop()
	for slot := 0; ; slot = (slot + 1) % pingSlots {
		<-t.C
		s.mu.Lock()
		if len(s.conns) == 0 {
			s.pinging = false
			s.mu.Unlock()
			return
		}
		now := s.box.now()
		for c := range s.conns {
			if c.slot == slot {
				c.requestPing()
			}
			if st := c.writeStart.Load(); st != 0 && time.Duration(now-st) > s.cfg.WriteTimeout {
				c.abort("write timed out")
			}
		}
		s.mu.Unlock()
	}
}

// Shutdown tells every client to reconnect (to this instance once it is
// back, or to another) and waits for the sockets to close, or ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for c := range s.conns {
		c.Close(protocol.CloseShutdown, "server restarting")
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// session is the reader side of one connection and its room membership.
// Its fields belong to the reader goroutine.
type session struct {
	s       *Server
	c       *conn
	limiter *rate.Limiter
	remote  string
	// principal is the credential the socket was opened with (a staff
	// session), nil for none.
	principal *access.Principal
	member    *rooms.Member
	mg        *grant        // the member's, once seated
	waiter    *rooms.Waiter // a guest waiting in a lobby
	// topics are the grants the watched topics were subscribed with.
	topics      map[string]*grant
	watching    bool
	watchingLog bool
	violations  int
}

func (ss *session) readLoop(ctx context.Context) {
	c := ss.c
	defer close(c.readDone)
	defer c.stop(0, "reader ended")
	c.ws.SetReadLimit(protocol.MaxMessageBytes)
	_ = c.ws.SetReadDeadline(time.Now().Add(ss.s.cfg.PongWait))
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(ss.s.cfg.PongWait))
	})
	for {
		kind, frame, err := c.ws.ReadMessage()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Neither pong nor message within PongWait: if the client
				// still hears us, it learns to reconnect and resume.
				c.Close(protocol.ClosePingTimeout, "no pong")
			}
			ss.ended(err)
			return
		}
		select {
		case <-c.done:
			continue // closing: drain up to the client's close frame, act on nothing
		default:
		}
		// Any traffic proves the peer alive (a phone may delay pongs).
		_ = c.ws.SetReadDeadline(time.Now().Add(ss.s.cfg.PongWait))
		ss.s.cfg.Metrics.messagesIn.Add(1)
		if kind != websocket.TextMessage {
			ss.fail(&protocol.ProtocolError{Code: protocol.ErrInvalid, Msg: "binary frames are not part of the protocol"})
			continue
		}
		if !ss.limiter.Allow() {
			ss.fail(&protocol.ProtocolError{Code: protocol.ErrRateLimited, Msg: "too many messages; slow down"})
			continue
		}
		env, payload, err := protocol.Decode(frame)
		if err != nil {
			var pe *protocol.ProtocolError
			errors.As(err, &pe)
			ss.fail(pe)
			if pe.Code == protocol.ErrBadVersion {
				c.Close(protocol.CloseBadVersion, pe.Msg)
			}
			continue
		}
		ss.handle(ctx, env, payload)
	}
}

// ended decides what a dropped socket means for the member: a reconnectable
// end keeps the seat for the resume window, anything final frees it.
func (ss *session) ended(err error) {
	ss.stopWatching()
	ss.stopLog()
	if ss.member == nil && ss.waiter != nil {
		ss.member = ss.waiter.End() // its seat, if it was admitted meanwhile
		ss.waiter = nil
	}
	if ss.member == nil {
		return
	}
	code, _ := ss.c.closeCode()
	switch {
	case code == protocol.CloseLeft || code == protocol.CloseReplaced:
		// Leave already done, or the seat moved to another socket.
	case code >= 4500:
		ss.member.Leave()
	default:
		ss.member.Detach(ss.c)
	}
	var ce *websocket.CloseError
	if errors.Is(err, websocket.ErrReadLimit) || errors.As(err, &ce) && ce.Code == websocket.CloseMessageTooBig {
		ss.s.log.Info("socket closed: message too big", "remote", ss.remote)
	}
}

// fail answers one bad message and closes the socket after too many.
func (ss *session) fail(pe *protocol.ProtocolError) {
	ss.c.Send(rooms.Frame{Data: protocol.Encode(protocol.TypeError, pe.Ref, protocol.Error{Code: pe.Code, Message: pe.Msg, Ref: pe.Ref})})
	ss.violations++
	if ss.violations >= ss.s.cfg.MaxViolations {
		ss.c.Close(protocol.CloseProtocol, "too many invalid or excess messages")
	}
}
