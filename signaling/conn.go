package signaling

import (
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"crisisroom/protocol"
	"crisisroom/rooms"
)

// conn is one WebSocket. Two goroutines use it: the reader (the HTTP
// handler's goroutine) and the writer. Only the writer writes to the socket;
// everyone else enqueues. Either one ending stops both.
type conn struct {
	ws  *websocket.Conn
	cfg *Config

	mu       sync.Mutex
	queue    []rooms.Frame
	keyed    map[string]int // coalesce key → index in queue
	wake     chan struct{}  // cap 1: "the queue has something"
	done     chan struct{}  // closed once, by stop
	readDone chan struct{}  // closed when the reader has ended
	stopOnce sync.Once
	code     int // close code the writer sends
	reason   string
}

func newConn(ws *websocket.Conn, cfg *Config) *conn {
	return &conn{ws: ws, cfg: cfg, keyed: map[string]int{}, wake: make(chan struct{}, 1), done: make(chan struct{}),
		readDone: make(chan struct{})}
}

// Send implements rooms.Peer. It never blocks. A latest-wins frame replaces
// its queued predecessor; any other frame that does not fit disconnects the
// connection: a peer that cannot keep up with signaling is broken anyway,
// and dropping an ICE candidate would fail silently later.
func (c *conn) Send(f rooms.Frame) {
	c.mu.Lock()
	select {
	case <-c.done:
		c.mu.Unlock()
		return
	default:
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
	if f.Coalesce != "" {
		c.keyed[f.Coalesce] = len(c.queue)
	}
	c.queue = append(c.queue, f)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Close implements rooms.Peer: the writer sends a bye and a close frame with
// code, then the socket closes, which ends the reader.
func (c *conn) Close(code int, reason string) {
	c.stop(code, reason)
}

func (c *conn) stop(code int, reason string) {
	c.stopOnce.Do(func() {
		c.mu.Lock()
		c.code, c.reason = code, reason
		c.mu.Unlock()
		close(c.done)
	})
}

func (c *conn) closeCode() (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.code, c.reason
}

func (c *conn) take() []rooms.Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.queue
	c.queue = nil
	clear(c.keyed)
	return q
}

// writeLoop runs until stop; every write has a deadline so a dead TCP peer
// cannot hold the goroutine.
func (c *conn) writeLoop() {
	ping := time.NewTicker(c.cfg.PingInterval)
	defer ping.Stop()
	defer c.ws.Close()
	for {
		select {
		case <-c.wake:
			for _, f := range c.take() {
				if err := c.write(websocket.TextMessage, f.Data); err != nil {
					c.stop(0, "write: "+err.Error())
					return
				}
			}
		case <-ping.C:
			if err := c.write(websocket.PingMessage, nil); err != nil {
				c.stop(0, "ping: "+err.Error())
				return
			}
		case <-c.done:
			if c.farewell() {
				c.awaitCloseReply()
			}
			return
		}
	}
}

// farewell flushes what is queued (a final error explains the close), then
// says why we close, in a bye message (some proxies lose close frames) and
// in the close frame itself. It reports whether the close frame went out.
func (c *conn) farewell() bool {
	code, reason := c.closeCode()
	if code == 0 {
		return false // the socket itself failed; nothing can be said
	}
	for _, f := range c.take() {
		if c.write(websocket.TextMessage, f.Data) != nil {
			return false
		}
	}
	bye := protocol.Encode(protocol.TypeBye, "", protocol.Bye{Code: code, Reason: reason, Reconnect: protocol.ShouldReconnect(code)})
	if c.write(websocket.TextMessage, bye) != nil {
		return false
	}
	if len(reason) > 120 { // control frames carry at most 125 bytes
		reason = reason[:120]
	}
	return c.write(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason)) == nil
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

func (c *conn) write(kind int, data []byte) error {
	if err := c.ws.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout)); err != nil {
		return err
	}
	if err := c.ws.WriteMessage(kind, data); err != nil {
		return err
	}
	c.cfg.Metrics.messagesOut.Add(1)
	return nil
}
