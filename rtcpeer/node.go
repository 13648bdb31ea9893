// Package rtcpeer is a WebRTC participant written with pion, for tests and
// benchmarks: it joins a crisisroom through the real signaling server (Client)
// or talks to another in-process participant directly (NewPair, the floor a
// signaling server can be compared with), and runs the same full mesh a
// browser does: one PeerConnection per remote peer, each carrying one VP8
// video track fed with synthetic RTP and one data channel.
//
// A Node is the WebRTC half (PeerConnections and what was observed); a Client
// is a Node plus its WebSocket. Everything a Node sees is recorded as Events
// that tests wait on with the Wait* methods.
package rtcpeer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"crisisroom/internal/pionlog"
)

// Config is what every PeerConnection of a Node is built with.
type Config struct {
	// Settings tunes pion (ICE waits, interfaces, network types). Nil means
	// pion's defaults; Loopback suits tests on one machine.
	Settings *webrtc.SettingEngine
	// ICEServers, when not nil, replaces the list the server hands out in
	// "joined" (for instance to point at a test TURN server).
	ICEServers []webrtc.ICEServer
	// RelayOnly makes ICE use TURN relay candidates only, as a browser does
	// with iceTransportPolicy "relay".
	RelayOnly bool
	// RTPInterval is the period of the synthetic video packets (default 20 ms).
	RTPInterval time.Duration
	Logger      *slog.Logger
}

// Loopback restricts se to IPv4 loopback host candidates without mDNS, so
// that test peers never leave the machine and gather in microseconds. It
// returns se for use in Config.Settings. Compose it with the project's tuned
// settings: rtcpeer.Loopback(ptr(turnserver.SettingEngine())).
func Loopback(se *webrtc.SettingEngine) *webrtc.SettingEngine {
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return se
}

// signaler carries one Node's offers, answers and candidates to a peer: over
// the WebSocket for a Client, by function call for a Pair.
type signaler interface {
	sendSDP(typ, to, sdp string) error
	sendCandidate(to string, c webrtc.ICECandidateInit) error
}

// Node is one participant's WebRTC side. Its negotiation methods (offerTo,
// onOffer, onAnswer, onCandidate) are called from one goroutine at a time —
// the socket reader of a Client, the pump of a Pair — so that signaling
// messages are applied in the order they were sent.
type Node struct {
	cfg Config
	api *webrtc.API
	log *slog.Logger
	sig signaler
	t   *tracker

	mu     sync.Mutex
	id     string
	ice    []webrtc.ICEServer
	links  map[string]*link
	closed bool
}

func newNode(cfg Config, sig signaler) (*Node, error) {
	if cfg.RTPInterval <= 0 {
		cfg.RTPInterval = 20 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	me := &webrtc.MediaEngine{}
	// The browser's codecs, so that a pion peer can also meet a browser.
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, fmt.Errorf("rtcpeer: codecs: %w", err)
	}
	se := webrtc.SettingEngine{}
	if cfg.Settings != nil {
		se = *cfg.Settings
	}
	if se.LoggerFactory == nil {
		se.LoggerFactory = pionlog.New(cfg.Logger)
	}
	// No interceptors (NACK, reports, TWCC): the synthetic video needs no
	// feedback, and fewer goroutines keep many peers light on two cores.
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
	return &Node{cfg: cfg, api: api, log: cfg.Logger, sig: sig, t: newTracker(),
		ice: cfg.ICEServers, links: map[string]*link{}}, nil
}

// ID is this participant's peer ID ("" before a Client has joined).
func (n *Node) ID() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.id
}

func (n *Node) setIdentity(id string, ice []webrtc.ICEServer) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.id = id
	if n.cfg.ICEServers == nil {
		n.ice = ice
	}
}

func (n *Node) label() string {
	if id := n.ID(); id != "" {
		return "peer " + id
	}
	return "peer (not joined)"
}

// Peers returns the remote peers this Node has a PeerConnection with.
func (n *Node) Peers() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]string, 0, len(n.links))
	for id := range n.links {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func (n *Node) link(peer string) *link {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.links[peer]
}

// ensureLink returns the link with peer, creating it (offerer tells which
// side creates the data channel) when there is none.
func (n *Node) ensureLink(peer string, offerer bool) (*link, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, errors.New("rtcpeer: closed")
	}
	if l := n.links[peer]; l != nil {
		return l, nil
	}
	l, err := newLink(n, peer, n.pcConfigLocked(), offerer)
	if err != nil {
		return nil, err
	}
	n.links[peer] = l
	return l, nil
}

// offerTo sends an offer to peer, creating the PeerConnection if needed;
// restart asks for new ICE credentials (after a resume).
func (n *Node) offerTo(peer string, restart bool) {
	l, err := n.ensureLink(peer, true)
	if err == nil {
		err = l.offer(restart)
	}
	if err != nil {
		n.fail(peer, "offer", err)
	}
}

func (n *Node) onOffer(from, sdp string) {
	l, err := n.ensureLink(from, false)
	if err == nil {
		err = l.answer(sdp)
	}
	if err != nil {
		n.fail(from, "answer", err)
	}
}

func (n *Node) onAnswer(from, sdp string) {
	l := n.link(from)
	if l == nil {
		n.fail(from, "answer received", errors.New("no offer was sent to this peer"))
		return
	}
	if err := l.accept(sdp); err != nil {
		n.fail(from, "set answer", err)
	}
}

func (n *Node) onCandidate(from string, c webrtc.ICECandidateInit) {
	if c.Candidate == "" {
		return // end of candidates: pion needs no marker
	}
	l := n.link(from)
	if l == nil {
		n.fail(from, "candidate", errors.New("candidate from a peer with no PeerConnection"))
		return
	}
	if err := l.addRemote(c); err != nil {
		n.fail(from, "add candidate", err)
	}
}

func (n *Node) fail(peer, step string, err error) {
	n.log.Warn("rtcpeer: negotiation step failed", "self", n.ID(), "peer", peer, "step", step, "err", err)
	n.t.add(EventFailure, peer, step+": "+err.Error())
}

// dropLink closes the PeerConnection with peer (it left).
func (n *Node) dropLink(peer string) {
	n.mu.Lock()
	l := n.links[peer]
	delete(n.links, peer)
	n.mu.Unlock()
	if l != nil {
		l.close()
	}
}

// closeLinks closes every PeerConnection and refuses new ones. The links
// close in parallel: each GracefulClose waits for pion's goroutines.
func (n *Node) closeLinks() {
	n.mu.Lock()
	n.closed = true
	ls := n.links
	n.links = map[string]*link{}
	n.mu.Unlock()
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Go(l.close)
	}
	wg.Wait()
}

// SendData sends text on the data channel with peer, waiting for the channel
// to open.
func (n *Node) SendData(ctx context.Context, peer, text string) error {
	var dc *webrtc.DataChannel
	err := n.t.wait(ctx, fmt.Sprintf("%s: data channel to %q open", n.label(), peer), func() bool {
		if l := n.link(peer); l != nil {
			dc = l.openChannel()
		}
		return dc != nil
	})
	if err != nil {
		return err
	}
	return dc.SendText(text)
}

// pcConfigLocked is what every PeerConnection of the Node is made with
// (the mesh's and the SFU's). Called with n.mu held.
func (n *Node) pcConfigLocked() webrtc.Configuration {
	conf := webrtc.Configuration{ICEServers: n.ice}
	if n.cfg.RelayOnly {
		conf.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	return conf
}

// SelectedPair returns the ICE candidate pair carrying the PeerConnection
// with peer (to check, say, that a relay-only call really is relayed).
func (n *Node) SelectedPair(peer string) (*webrtc.ICECandidatePair, error) {
	l := n.link(peer)
	if l == nil {
		return nil, fmt.Errorf("rtcpeer: no PeerConnection with %q", peer)
	}
	return selectedPair(l.pc)
}

// selectedPair is the candidate pair pc's ICE transport chose.
func selectedPair(pc *webrtc.PeerConnection) (*webrtc.ICECandidatePair, error) {
	sctp := pc.SCTP()
	if sctp == nil {
		return nil, errors.New("rtcpeer: not negotiated yet")
	}
	pair, err := sctp.Transport().ICETransport().GetSelectedCandidatePair()
	if err == nil && pair == nil {
		err = errors.New("rtcpeer: no selected candidate pair yet")
	}
	return pair, err
}
