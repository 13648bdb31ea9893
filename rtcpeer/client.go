package rtcpeer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"crisisroom/protocol"
)

// Options of Dial.
type Options struct {
	Config
	// URL is the server (http://host:port), its WebSocket endpoint
	// (ws://host:port/ws) or a room link (http://host/r/main#t=TOKEN, whose
	// token is used when Token is empty).
	URL   string
	Token string
	Name  string
}

// RefusedError is the server's answer to a join or resume it refused.
type RefusedError struct {
	Code    string // protocol error code, e.g. bad_token, room_full
	Message string
	Close   int // WebSocket close code, when one arrived
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("rtcpeer: refused: %s (%s), close %d", e.Code, e.Message, e.Close)
}

var errNoSocket = errors.New("rtcpeer: no open WebSocket")

// Client is a Node joined to a room through the signaling server.
type Client struct {
	*Node
	wsURL string
	seq   atomic.Int64

	wmu sync.Mutex // serialises writes; guards ws
	ws  *websocket.Conn

	mu         sync.Mutex
	joined     protocol.Joined
	readerDone chan struct{} // closed when the current socket's reader ends
	closed     bool
	members    map[string]bool // the other members, as the server described them
	mode       string          // the room's media mode (sfu.go)
	sfu        *sfuSide        // our SFU connections while we use them
}

// Dial opens the WebSocket, joins with opts.Token, and starts the mesh: it
// offers to every peer already in the room (the newcomer's duty) and answers
// those who join later. It returns once the server has seated it.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	wsURL, linkToken, err := endpoint(opts.URL)
	if err != nil {
		return nil, err
	}
	if opts.Token == "" {
		opts.Token = linkToken
	}
	c := &Client{wsURL: wsURL}
	if c.Node, err = newNode(opts.Config, c); err != nil {
		return nil, err
	}
	ws, j, err := c.enter(ctx, protocol.TypeJoin, protocol.Join{Token: opts.Token, Name: opts.Name})
	if err != nil {
		return nil, err
	}
	c.start(ws, j)
	return c, nil
}

// endpoint turns a server URL or room link into the /ws URL and the link's
// token, if any.
func endpoint(raw string) (wsURL, token string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("rtcpeer: URL %q: %w", raw, err)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", "", fmt.Errorf("rtcpeer: URL %q: want http(s) or ws(s)", raw)
	}
	if v, err := url.ParseQuery(u.Fragment); err == nil {
		token = v.Get("t")
	}
	if u.Path != "/ws" {
		u.Path = "/ws"
	}
	u.Fragment, u.RawQuery = "", ""
	return u.String(), token, nil
}

// PeerID is the ID the server gave this client (stable across resumes).
func (c *Client) PeerID() string { return c.ID() }

// Joined returns the latest "joined" the server sent (after a resume, the
// resumed one, with its new resume token).
func (c *Client) Joined() protocol.Joined {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.joined
}

// enter opens a socket and sends a join or resume, then reads until the
// server answers "joined" or refuses.
func (c *Client) enter(ctx context.Context, typ string, payload any) (*websocket.Conn, protocol.Joined, error) {
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, c.wsURL, nil)
	if err != nil {
		return nil, protocol.Joined{}, fmt.Errorf("rtcpeer: dial %s: %w", c.wsURL, err)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(10 * time.Second)
	}
	_ = ws.SetReadDeadline(deadline)
	_ = ws.SetWriteDeadline(deadline)
	j, err := c.awaitJoined(ws, typ, payload)
	if err != nil {
		_ = ws.Close()
		return nil, protocol.Joined{}, err
	}
	_ = ws.SetReadDeadline(time.Time{})
	return ws, j, nil
}

func (c *Client) awaitJoined(ws *websocket.Conn, typ string, payload any) (protocol.Joined, error) {
	if err := ws.WriteMessage(websocket.TextMessage, protocol.Encode(typ, c.nextID(), payload)); err != nil {
		return protocol.Joined{}, err
	}
	var refused *RefusedError
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			if refused == nil {
				return protocol.Joined{}, fmt.Errorf("rtcpeer: %s: %w", typ, err)
			}
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				refused.Close = ce.Code
			}
			return protocol.Joined{}, refused
		}
		var env protocol.Envelope
		if err := json.Unmarshal(data, &env); err != nil {
			return protocol.Joined{}, fmt.Errorf("rtcpeer: %s: bad frame: %w", typ, err)
		}
		switch env.Type {
		case protocol.TypeJoined:
			var j protocol.Joined
			err := json.Unmarshal(env.Data, &j)
			return j, err
		case protocol.TypeError:
			var e protocol.Error
			_ = json.Unmarshal(env.Data, &e)
			refused = &RefusedError{Code: e.Code, Message: e.Message}
		}
	}
}

// start makes ws the client's socket and runs its reader, which first
// negotiates with the peers listed in j.
func (c *Client) start(ws *websocket.Conn, j protocol.Joined) {
	c.setIdentity(j.PeerID, iceServers(j.ICEServers))
	done := make(chan struct{})
	c.mu.Lock()
	c.joined, c.readerDone = j, done
	c.members = map[string]bool{}
	for _, p := range j.Peers {
		c.members[p.ID] = true
	}
	c.mu.Unlock()
	c.wmu.Lock()
	c.ws = ws
	c.wmu.Unlock()
	detail := ""
	if j.Resumed {
		detail = "resumed"
	}
	c.t.add(EventJoined, "", detail)
	go func() {
		defer close(done)
		c.negotiate(j)
		c.readLoop(ws)
	}()
}

func iceServers(in []protocol.ICEServer) []webrtc.ICEServer {
	out := make([]webrtc.ICEServer, 0, len(in))
	for _, s := range in {
		out = append(out, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return out
}

// negotiate offers to every peer in j. After a resume the existing
// PeerConnections restart ICE (the network may have changed under us),
// peers that joined meanwhile get a first offer, and those that left while
// we were away (we missed their peer-left) are closed.
func (c *Client) negotiate(j protocol.Joined) {
	if j.Mode == protocol.ModeSFU {
		c.setMode(j.Mode)
		return
	}
	// A room back in the mesh while we were away: our SFU connections go
	// (the server ended its side), and the mesh is negotiated below.
	c.mu.Lock()
	changed, side := c.mode == protocol.ModeSFU, c.sfu
	c.mode, c.sfu = protocol.ModeMesh, nil
	c.mu.Unlock()
	if changed {
		c.t.add(EventMode, "", protocol.ModeMesh)
	}
	if side != nil {
		side.close()
	}
	present := map[string]bool{}
	for _, p := range j.Peers {
		present[p.ID] = true
		c.offerTo(p.ID, j.Resumed && c.link(p.ID) != nil)
	}
	for _, id := range c.Peers() {
		if !present[id] {
			c.dropLink(id)
		}
	}
}

func (c *Client) readLoop(ws *websocket.Conn) {
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			detail := err.Error()
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				detail = strconv.Itoa(ce.Code)
			}
			c.t.add(EventSocketClosed, "", detail)
			return
		}
		c.dispatch(data)
	}
}

func (c *Client) dispatch(data []byte) {
	var env protocol.Envelope
	if err := json.Unmarshal(data, &env); err != nil {
		c.fail("", "decode frame", err)
		return
	}
	switch env.Type {
	case protocol.TypeOffer, protocol.TypeAnswer:
		var m protocol.SDP
		if c.decode(env, &m) {
			if env.Type == protocol.TypeOffer {
				c.onOffer(m.From, m.SDP)
			} else {
				c.onAnswer(m.From, m.SDP)
			}
		}
	case protocol.TypeCandidate:
		var m protocol.Candidate
		if c.decode(env, &m) {
			c.onCandidate(m.From, webrtc.ICECandidateInit{Candidate: m.Candidate, SDPMid: m.SDPMid, SDPMLineIndex: m.SDPMLineIndex})
		}
	case protocol.TypePeerJoined:
		var m protocol.PeerInfo
		if c.decode(env, &m) {
			c.mu.Lock()
			c.members[m.ID] = true
			c.mu.Unlock()
			c.t.add(EventPeerJoined, m.ID, m.Name) // the newcomer will offer
		}
	case protocol.TypePeerLeft:
		var m protocol.PeerLeft
		if c.decode(env, &m) {
			c.mu.Lock()
			delete(c.members, m.ID)
			c.mu.Unlock()
			c.t.add(EventPeerLeft, m.ID, "")
			c.dropLink(m.ID)
		}
	case protocol.TypeMode:
		var m protocol.Mode
		if c.decode(env, &m) {
			c.setMode(m.Mode)
		}
	case protocol.TypeSFU:
		var m protocol.SFU
		if c.decode(env, &m) {
			c.mu.Lock()
			side := c.sfu
			c.mu.Unlock()
			if side == nil {
				c.fail("sfu", "sfu message", errors.New("no SFU connection"))
			} else if err := side.onSignal(m); err != nil {
				c.fail("sfu", "sfu "+m.PC+" "+m.Kind, err)
			}
		}
	case protocol.TypeError:
		var m protocol.Error
		if c.decode(env, &m) {
			c.t.add(EventError, "", m.Code)
		}
	case protocol.TypeBye:
		var m protocol.Bye
		if c.decode(env, &m) {
			c.t.add(EventBye, "", strconv.Itoa(m.Code))
		}
	}
}

func (c *Client) decode(env protocol.Envelope, v any) bool {
	if err := json.Unmarshal(env.Data, v); err != nil {
		c.fail("", "decode "+env.Type, err)
		return false
	}
	return true
}

func (c *Client) nextID() string { return strconv.FormatInt(c.seq.Add(1), 10) }

func (c *Client) send(typ string, data any) error {
	frame := protocol.Encode(typ, c.nextID(), data)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.ws == nil {
		return errNoSocket
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, frame)
}

func (c *Client) sendSDP(typ, to, sdp string) error {
	return c.send(typ, protocol.SDP{To: to, SDP: sdp})
}

func (c *Client) sendCandidate(to string, ci webrtc.ICECandidateInit) error {
	return c.send(protocol.TypeCandidate, protocol.Candidate{To: to, Candidate: ci.Candidate,
		SDPMid: ci.SDPMid, SDPMLineIndex: ci.SDPMLineIndex})
}

// SendChat sends an in-room chat message through the server.
func (c *Client) SendChat(text string) error {
	return c.send(protocol.TypeChat, protocol.Chat{Text: text})
}

// detach forgets the socket and returns it and its reader's done channel.
func (c *Client) detach() (*websocket.Conn, <-chan struct{}) {
	c.wmu.Lock()
	ws := c.ws
	c.ws = nil
	c.wmu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	return ws, c.readerDone
}

// Drop cuts the TCP connection under the WebSocket without a leave or a
// close frame, as a network change does. The PeerConnections stay up; the
// server keeps our seat for its resume window.
func (c *Client) Drop() error {
	ws, done := c.detach()
	if ws == nil {
		return errNoSocket
	}
	err := ws.NetConn().Close()
	if done != nil {
		<-done
	}
	return err
}

// Resume reconnects with the resume token of the latest "joined" (dropping
// the current socket first if there is one), then restarts ICE with every
// peer. It returns once the server has re-seated us.
func (c *Client) Resume(ctx context.Context) error {
	if ws, done := c.detach(); ws != nil {
		_ = ws.NetConn().Close()
		<-done
	} else if done != nil {
		<-done // a reader whose socket the server closed may still be finishing
	}
	c.mu.Lock()
	closed, tok, id := c.closed, c.joined.ResumeToken, c.joined.PeerID
	c.mu.Unlock()
	if closed {
		return errors.New("rtcpeer: closed")
	}
	ws, j, err := c.enter(ctx, protocol.TypeResume, protocol.Resume{ResumeToken: tok})
	if err != nil {
		return err
	}
	if !j.Resumed || j.PeerID != id {
		_ = ws.Close()
		return fmt.Errorf("rtcpeer: resume answered resumed=%v peer %q, want resumed as %q", j.Resumed, j.PeerID, id)
	}
	c.start(ws, j)
	return nil
}

// Leave tells the server we leave, waits for it to close the socket (or
// ctx), and closes every PeerConnection.
func (c *Client) Leave(ctx context.Context) error {
	err := c.send(protocol.TypeLeave, struct{}{})
	c.mu.Lock()
	done := c.readerDone
	c.mu.Unlock()
	if err == nil && done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("rtcpeer: leave: %w", ctx.Err())
		}
	}
	return errors.Join(err, c.Close())
}

// Close closes the socket (abruptly: the server keeps the seat for its resume
// window) and every PeerConnection, and waits for all goroutines to end.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	ws, done := c.detach()
	if ws != nil {
		_ = ws.NetConn().Close()
	}
	if done != nil {
		<-done
	}
	c.closeLinks()
	c.mu.Lock()
	side := c.sfu
	c.sfu = nil
	c.mu.Unlock()
	if side != nil {
		side.close()
	}
	return nil
}
