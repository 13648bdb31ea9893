package signaling

import (
	"encoding/binary"
	"errors"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"crisisroom/access"
	"crisisroom/protocol"
	"crisisroom/rooms"
)

// conn is one WebSocket. Its reader is a goroutine of its own
// (session.readLoop). A frame sent to a socket with nothing queued is
// written at once, on the sender's goroutine, by a system call that never
// waits (direct). Otherwise, and always for the map's fan-outs (Queue),
// frames are queued, and the server's outbox serves the sockets that have
// something queued in turn: each socket's whole queue in one system call
// that never waits. A socket that does not take everything at once, or
// whose queue grows while it waits for its turn (a burst of chat, SDP and
// candidates), gets a writer goroutine of its own until it has caught up:
// a slow client holds no one else up, and a busy one does not wait behind
// thousands of map watchers. A watcher that keeps up thus costs no
// goroutine between updates, and when the server falls behind, the updates
// a socket has missed go out together. Either side ending stops both.
type conn struct {
	ws  *websocket.Conn
	nc  net.Conn // the socket under ws
	cfg *Config
	box *outbox

	// raw is nil when the socket has no file descriptor (TLS served by this
	// process): its frames then always go through a writer goroutine.
	raw      syscall.RawConn
	rawWrite func(fd uintptr) bool // bound once: a closure per write would allocate
	// out, outN and outErr belong to whoever has the turn (see turn).
	out    []byte
	outN   int
	outErr error

	mu       sync.Mutex
	queue    []rooms.Frame
	spare    []rooms.Frame  // the queue last written, reused so that a steady flow allocates nothing
	keyed    map[string]int // coalesce key → index in queue; nil until a keyed frame comes
	ping     bool           // the keep-alive asked for a ping
	pong     []byte         // a pong owed to the client (its ping's payload)
	partial  []byte         // the unwritten tail of a batch the outbox began: the writer sends it first
	failed   error          // the outbox's write failed: the writer stops the connection
	turn     turn
	closed   bool // stop was called
	code     int  // close code the writer sends
	reason   string
	done     chan struct{}
	readDone chan struct{} // closed when the reader has ended
	stopOnce sync.Once

	// writeStart is when the writer's write in progress began (outbox.now),
	// 0 when none: the keep-alive closes a socket stuck in one write longer
	// than WriteTimeout, instead of a deadline set on the socket per write.
	writeStart atomic.Int64
	slot       int // keep-alive slot (Server.keepalive)

	// keys are the principals ("kind:id") the socket acts with: revoking
	// one closes it (Server.kick). staff are those of them that are staff
	// accounts' (Server.StaffPrincipals). Guarded by mu.
	keys  []string
	staff []*access.Principal
}

// addKeys records a principal the socket acts with, by each of its keys
// (a session's user and its one login).
func (c *conn) addKeys(p *access.Principal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range p.Keys() {
		if !slices.Contains(c.keys, k) {
			c.keys = append(c.keys, k)
		}
	}
	if p.UserID != "" && !slices.Contains(c.staff, p) {
		c.staff = append(c.staff, p)
	}
}

func (c *conn) hasKey(k string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.keys, k)
}

// turn says who may write to the socket next.
type turn uint8

const (
	turnIdle    turn = iota // nothing to write, nobody scheduled
	turnOutbox              // waiting in the outbox
	turnServing             // being served by the outbox
	turnWriter              // a writer goroutine owns the socket (backlog, burst or closing)
)

// stealAt is the queue length at which a socket waiting in the outbox gets
// a writer of its own instead: map watchers queue one or two deltas, a
// member in a busy room many frames at once.
const stealAt = 16

func newConn(ws *websocket.Conn, cfg *Config, box *outbox) *conn {
	c := &conn{ws: ws, nc: ws.NetConn(), cfg: cfg, box: box, done: make(chan struct{}), readDone: make(chan struct{})}
	if sc, ok := c.nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw, c.rawWrite = raw, c.writeOut
		}
	}
	// Pongs go out with the other frames: gorilla's default handler would
	// write from the reader and leave a short deadline on the socket.
	ws.SetPingHandler(func(data string) error {
		c.mu.Lock()
		if !c.closed {
			c.pong = []byte(data)
			c.scheduleLocked()
		}
		c.mu.Unlock()
		return nil
	})
	return c
}

// Send implements rooms.Peer. It never blocks. A latest-wins frame replaces
// its queued predecessor; any other frame that does not fit disconnects the
// connection: a peer that cannot keep up with signaling is broken anyway,
// and dropping an ICE candidate would fail silently later.
func (c *conn) Send(f rooms.Frame) { c.send(f, true) }

// Queue implements livemap.Queuer: Send that never writes on the caller's
// goroutine, for the map's fan-outs.
func (c *conn) Queue(f rooms.Frame) { c.send(f, false) }

func (c *conn) send(f rooms.Frame, direct bool) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if f.Coalesce != "" {
		if i, ok := c.keyed[f.Coalesce]; ok {
			c.queue[i] = f
			c.mu.Unlock()
			return
		}
	}
	if len(c.queue) >= c.cfg.SendQueue {
		c.mu.Unlock()
		c.cfg.Metrics.slowDropped.Add(1)
		c.Close(protocol.CloseSlowConsumer, "send queue full")
		return
	}
	if direct && c.idleLocked() && c.directLocked(f.Data) {
		c.mu.Unlock()
		return
	}
	if f.Coalesce != "" {
		if c.keyed == nil {
			c.keyed = map[string]int{}
		}
		c.keyed[f.Coalesce] = len(c.queue)
	}
	c.queue = append(c.queue, f)
	if c.turn == turnOutbox && len(c.queue) >= stealAt {
		c.startWriterLocked() // its outbox entry is skipped
	}
	c.scheduleLocked()
	c.mu.Unlock()
}

// idleLocked: nothing is queued or being written, so a frame may go
// directly without overtaking another.
func (c *conn) idleLocked() bool {
	return c.raw != nil && c.turn == turnIdle && len(c.queue) == 0 && !c.ping && c.pong == nil
}

// directLocked writes one text frame without waiting for the socket. It
// reports false when the socket took nothing: the frame must be queued.
// What the socket took in part, a writer finishes.
func (c *conn) directLocked(p []byte) bool {
	bp := c.box.buf()
	*bp = appendFrame((*bp)[:0], websocket.TextMessage, p)
	defer c.box.put(bp, *bp)
	n, err := c.tryWrite(*bp)
	switch {
	case n == len(*bp):
	case n == 0 && errors.Is(err, syscall.EAGAIN):
		return false
	case err == nil || errors.Is(err, syscall.EAGAIN):
		c.partial = append([]byte(nil), (*bp)[n:]...)
		c.startWriterLocked()
	default:
		c.failed = err
		c.startWriterLocked()
		return true
	}
	c.cfg.Metrics.messagesOut.Add(1)
	return true
}

// requestPing is called by the keep-alive.
func (c *conn) requestPing() {
	c.mu.Lock()
	if !c.closed {
		c.ping = true
		c.scheduleLocked()
	}
	c.mu.Unlock()
}

// scheduleLocked gives the socket a turn unless it has one. c.mu is held.
func (c *conn) scheduleLocked() {
	if c.turn != turnIdle {
		return
	}
	if c.raw == nil || c.closed {
		c.startWriterLocked()
		return
	}
	c.turn = turnOutbox
	c.box.push(c)
}

func (c *conn) startWriterLocked() {
	c.turn = turnWriter
	go c.writeLoop()
}

// Close implements rooms.Peer: the writer sends a bye and a close frame with
// code, then the socket closes, which ends the reader.
func (c *conn) Close(code int, reason string) {
	c.stop(code, reason)
}

func (c *conn) stop(code int, reason string) {
	c.stopOnce.Do(func() {
		c.mu.Lock()
		c.code, c.reason, c.closed = code, reason, true
		close(c.done)
		c.scheduleLocked() // an outbox turn hands over to a writer
		c.mu.Unlock()
	})
}

// abort ends a socket stuck in a write: closing it fails the write.
func (c *conn) abort(why string) {
	c.stop(0, why)
	c.nc.Close()
}

func (c *conn) closeCode() (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.code, c.reason
}

// batch is what one turn sends.
type batch struct {
	partial []byte
	frames  []rooms.Frame
	ping    bool
	pong    []byte
}

func (b *batch) empty() bool {
	return b.partial == nil && len(b.frames) == 0 && !b.ping && b.pong == nil
}

// encode appends the batch's frames to buf.
func (b *batch) encode(buf []byte) []byte {
	buf = append(buf, b.partial...) // a frame begun must end first
	if b.pong != nil {
		buf = appendFrame(buf, websocket.PongMessage, b.pong)
	}
	if b.ping {
		buf = appendFrame(buf, websocket.PingMessage, nil)
	}
	for _, f := range b.frames {
		buf = appendFrame(buf, websocket.TextMessage, f.Data)
	}
	return buf
}

func (b *batch) count() int64 {
	n := len(b.frames)
	if b.ping {
		n++
	}
	if b.pong != nil {
		n++
	}
	return int64(n)
}

// takeLocked hands over what is queued; written is the previous batch's
// frames, whose array becomes the next queue's.
func (c *conn) takeLocked(written []rooms.Frame) batch {
	if written != nil && cap(written) <= 64 {
		clear(written) // let the payloads go
		c.spare = written[:0]
	}
	b := batch{partial: c.partial, frames: c.queue, ping: c.ping, pong: c.pong}
	c.queue, c.spare = c.spare, nil
	if len(c.keyed) > 0 {
		clear(c.keyed)
	}
	c.ping, c.pong, c.partial = false, nil, nil
	return b
}

// serve is the socket's outbox turn: everything queued, in one system call
// that does not wait. buf is the outbox goroutine's scratch.
func (c *conn) serve(buf *[]byte) {
	c.mu.Lock()
	if c.turn != turnOutbox { // a writer took over while it waited
		c.mu.Unlock()
		return
	}
	if c.closed {
		c.startWriterLocked() // it says farewell
		c.mu.Unlock()
		return
	}
	c.turn = turnServing
	b := c.takeLocked(nil)
	c.mu.Unlock()
	*buf = b.encode((*buf)[:0])
	n, err := c.tryWrite(*buf)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.takeBackLocked(b.frames)
	switch {
	case n == len(*buf):
		c.cfg.Metrics.messagesOut.Add(b.count())
		c.turn = turnIdle
		if len(c.queue) > 0 || c.ping || c.pong != nil || c.closed {
			c.scheduleLocked() // more came meanwhile: to the back of the line
		}
	case err == nil || errors.Is(err, syscall.EAGAIN):
		// The socket is full: a writer finishes the batch and the backlog.
		c.partial = append([]byte(nil), (*buf)[n:]...)
		c.cfg.Metrics.messagesOut.Add(b.count())
		c.startWriterLocked()
	default:
		c.failed = err
		c.startWriterLocked()
	}
}

// takeBackLocked keeps a written batch's array for the next queue.
func (c *conn) takeBackLocked(written []rooms.Frame) {
	if c.spare == nil && cap(written) <= 64 {
		clear(written)
		c.spare = written[:0]
	}
}

// tryWrite writes p without waiting for the socket; it returns how much
// the socket took.
func (c *conn) tryWrite(p []byte) (int, error) {
	c.out, c.outN, c.outErr = p, 0, nil
	err := c.raw.Write(c.rawWrite)
	n := c.outN
	if err == nil {
		err = c.outErr
	}
	c.out, c.outErr = nil, nil
	return n, err
}

// writeOut is tryWrite's system call; returning true tells RawConn.Write
// not to wait for the socket.
func (c *conn) writeOut(fd uintptr) bool {
	for c.outN < len(c.out) {
		n, err := syscall.Write(int(fd), c.out[c.outN:])
		if n > 0 {
			c.outN += n
		}
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			c.outErr = err
			break
		}
	}
	return true
}

// writeLoop is the writer goroutine: it writes, waiting for the socket as
// long as needed, until the backlog is gone, then gives the socket back to
// the outbox; after stop it says farewell and closes the socket.
func (c *conn) writeLoop() {
	var written []rooms.Frame
	for {
		c.mu.Lock()
		failed, closed := c.failed, c.closed
		var b batch
		if !closed && failed == nil {
			b = c.takeLocked(written)
			if b.empty() {
				c.turn = turnIdle
				c.mu.Unlock()
				return
			}
		}
		c.mu.Unlock()
		switch {
		case failed != nil:
			c.stop(0, "write: "+failed.Error())
			continue
		case closed:
			if c.farewell() {
				c.awaitCloseReply()
			}
			c.ws.Close()
			return
		}
		if err := c.write(b); err != nil {
			c.mu.Lock()
			c.failed = err
			c.mu.Unlock()
		}
		written = b.frames
	}
}

// write sends a batch, waiting for the socket, in one system call when the
// socket takes it.
func (c *conn) write(b batch) error {
	bp := c.box.buf()
	buf := b.encode((*bp)[:0])
	c.writeStart.Store(c.box.now())
	_, err := c.nc.Write(buf)
	c.writeStart.Store(0)
	c.box.put(bp, buf)
	if err != nil {
		return err
	}
	c.cfg.Metrics.messagesOut.Add(b.count())
	return nil
}

// appendFrame appends one unfragmented, unmasked server frame (RFC 6455
// section 5.2). The map's frames are the same bytes for every watcher:
// framing them costs a header of 2 to 10 bytes, where gorilla would copy
// each message into a buffer per socket and make a system call per message.
func appendFrame(buf []byte, op int, p []byte) []byte {
	buf = append(buf, 0x80|byte(op))
	switch n := len(p); {
	case n < 126:
		buf = append(buf, byte(n))
	case n <= 0xffff:
		buf = append(buf, 126)
		buf = binary.BigEndian.AppendUint16(buf, uint16(n))
	default:
		buf = append(buf, 127)
		buf = binary.BigEndian.AppendUint64(buf, uint64(n))
	}
	return append(buf, p...)
}

// farewell flushes what is queued (a final error explains the close), then
// says why we close, in a bye message (some proxies lose close frames) and
// in the close frame itself. It reports whether the close frame went out.
func (c *conn) farewell() bool {
	code, reason := c.closeCode()
	if code == 0 {
		return false // the socket itself failed; nothing can be said
	}
	// A socket refused during shutdown is not watched by the keep-alive.
	if c.nc.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout)) != nil {
		return false
	}
	c.mu.Lock()
	last := c.takeLocked(nil)
	c.mu.Unlock()
	bye := protocol.Encode(protocol.TypeBye, "", protocol.Bye{Code: code, Reason: reason, Reconnect: protocol.ShouldReconnect(code)})
	last.frames = append(last.frames, rooms.Frame{Data: bye})
	if c.write(last) != nil {
		return false
	}
	if len(reason) > 120 { // control frames carry at most 125 bytes
		reason = reason[:120]
	}
	// Through gorilla, which then knows the close is sent and does not
	// echo the client's reply.
	err := c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(c.cfg.WriteTimeout))
	if err == nil {
		c.cfg.Metrics.messagesOut.Add(1)
	}
	return err == nil
}

// closeReplyWait bounds the close handshake with a client that never answers.
const closeReplyWait = 2 * time.Second

// awaitCloseReply lets the reader drain the socket up to the client's close
// frame before the TCP connection is closed. Closing with unread input makes
// the kernel send a reset, which destroys the bye and close frame in flight:
// the client would see 1006 and reconnect after a final close (a flooding
// client, a stale page sending after a 4503).
func (c *conn) awaitCloseReply() {
	t := time.NewTimer(closeReplyWait)
	defer t.Stop()
	select {
	case <-c.readDone:
	case <-t.C:
	}
}

// drain reads and discards until the socket ends: the reader of a
// connection refused during shutdown, so that its close handshake completes.
func (c *conn) drain() {
	defer close(c.readDone)
	c.ws.SetReadLimit(protocol.MaxMessageBytes)
	for {
		if _, _, err := c.ws.NextReader(); err != nil {
			return
		}
	}
}

// outbox serves the sockets that have something to write, in the order
// they asked, from at most max goroutines that exist only while there is
// work. It replaces a writer goroutine (and its stack) per socket.
type outbox struct {
	mu      sync.Mutex
	ready   []*conn // FIFO from head
	head    int
	running int
	max     int

	bufs  sync.Pool // *[]byte scratch for writer goroutines
	epoch time.Time
}

func (o *outbox) push(c *conn) {
	o.mu.Lock()
	o.ready = append(o.ready, c)
	if o.running < o.max {
		o.running++
		go o.work()
	}
	o.mu.Unlock()
}

func (o *outbox) work() {
	bp := o.buf()
	for {
		o.mu.Lock()
		if o.head == len(o.ready) {
			o.ready, o.head = o.ready[:0], 0
			o.running--
			o.mu.Unlock()
			o.put(bp, *bp)
			return
		}
		c := o.ready[o.head]
		o.ready[o.head] = nil
		o.head++
		if o.head > 1024 && 2*o.head > len(o.ready) { // never empty under load: compact
			n := copy(o.ready, o.ready[o.head:])
			clear(o.ready[n:])
			o.ready, o.head = o.ready[:n], 0
		}
		o.mu.Unlock()
		c.serve(bp)
	}
}

func (o *outbox) buf() *[]byte {
	if bp, ok := o.bufs.Get().(*[]byte); ok {
		return bp
	}
	return new([]byte)
}

// put returns a buffer (grown to buf) to the pool; a snapshot fits, a rare
// huge batch is not kept.
func (o *outbox) put(bp *[]byte, buf []byte) {
	if cap(buf) <= 64<<10 {
		*bp = buf[:0]
		o.bufs.Put(bp)
	}
}

// now is a monotonic clock reading, never 0.
func (o *outbox) now() int64 { return int64(time.Since(o.epoch)) + 1 }
