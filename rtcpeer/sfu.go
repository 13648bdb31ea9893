package rtcpeer

import (
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"crisisroom/protocol"
)

// sfuSide is a Client's media through the server's SFU: the "up"
// connection it offers and publishes on (synthetic Opus and VP8), and the
// "down" connection the server offers, on which it receives the others'
// tracks (stream ID: the publisher's peer ID). Counts go to the same
// tracker as the mesh's: video packets under the publisher's ID, audio
// under ID+AudioSuffix.
type sfuSide struct {
	n       *Node
	publish bool
	send    func(protocol.SFU) error // to the server
	// first is told of the first packet of each publisher's video (the
	// mesh link with it may then close).
	first func(peer string)

	mu      sync.Mutex
	up      *webrtc.PeerConnection
	down    *webrtc.PeerConnection
	pending map[string][]webrtc.ICECandidateInit // remote candidates before a remote description, by PC
	seen    map[string]bool                      // streams whose first packet arrived
	closed  bool
	done    chan struct{}
	wg      sync.WaitGroup
}

// AudioSuffix marks audio counts: RTPCount(peer+AudioSuffix) is the audio
// received from peer through the SFU.
const AudioSuffix = "/audio"

func newSFUSide(n *Node, publish bool, send func(protocol.SFU) error, first func(peer string)) *sfuSide {
	return &sfuSide{n: n, publish: publish, send: send, first: first, pending: map[string][]webrtc.ICECandidateInit{},
		seen: map[string]bool{}, done: make(chan struct{})}
}

func (s *sfuSide) conf() webrtc.Configuration {
	s.n.mu.Lock()
	defer s.n.mu.Unlock()
	return s.n.pcConfigLocked()
}

// start publishes: the up connection with an audio and a video track,
// offered to the server. A watch-only member publishes nothing.
func (s *sfuSide) start() error {
	if !s.publish {
		return nil
	}
	pc, err := s.n.api.NewPeerConnection(s.conf())
	if err != nil {
		return err
	}
	audio, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "rtcpeer")
	if err != nil {
		return errors.Join(err, pc.Close())
	}
	video, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", "rtcpeer")
	if err != nil {
		return errors.Join(err, pc.Close())
	}
	for _, tr := range []*webrtc.TrackLocalStaticRTP{audio, video} {
		if _, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			return errors.Join(err, pc.Close())
		}
	}
	s.watch(pc, protocol.SFUUp)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return pc.Close()
	}
	s.up = pc
	s.wg.Add(2)
	s.mu.Unlock()
	go func() { defer s.wg.Done(); sendSynthetic(s.done, video, 90000, vp8Payload, s.n.cfg.RTPInterval) }()
	go func() { defer s.wg.Done(); sendSynthetic(s.done, audio, 48000, opusPayload, s.n.cfg.RTPInterval) }()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		return err
	}
	return s.send(protocol.SFU{PC: protocol.SFUUp, Kind: "offer", SDP: offer.SDP})
}

// opusPayload is a silent Opus frame's size class; nothing decodes it.
var opusPayload = make([]byte, 80)

// watch sends pc's candidates to the server and records its states under
// the peer name "sfu-up" or "sfu-down".
func (s *sfuSide) watch(pc *webrtc.PeerConnection, which string) {
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		init := c.ToJSON()
		_ = s.send(protocol.SFU{PC: which, Kind: "candidate",
			Candidate: &protocol.ICECandidate{Candidate: init.Candidate, SDPMid: init.SDPMid, SDPMLineIndex: init.SDPMLineIndex}})
	})
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		s.n.t.add(EventState, "sfu-"+which, st.String())
		if st == webrtc.PeerConnectionStateConnected {
			s.n.t.add(EventConnected, "sfu-"+which, "")
		}
	})
}

// onSignal applies one of the server's SFU messages.
func (s *sfuSide) onSignal(m protocol.SFU) error {
	switch {
	case m.PC == protocol.SFUUp && m.Kind == "answer":
		s.mu.Lock()
		up := s.up
		s.mu.Unlock()
		if up == nil {
			return errors.New("answer for an up connection never offered")
		}
		if err := up.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP}); err != nil {
			return err
		}
		return s.flush(protocol.SFUUp, up)
	case m.PC == protocol.SFUDown && m.Kind == "offer":
		return s.answerDown(m.SDP)
	case m.Kind == "candidate":
		if m.Candidate == nil || m.Candidate.Candidate == "" {
			return nil
		}
		c := webrtc.ICECandidateInit{Candidate: m.Candidate.Candidate, SDPMid: m.Candidate.SDPMid, SDPMLineIndex: m.Candidate.SDPMLineIndex}
		s.mu.Lock()
		pc := s.up
		if m.PC == protocol.SFUDown {
			pc = s.down
		}
		if pc == nil || pc.RemoteDescription() == nil {
			s.pending[m.PC] = append(s.pending[m.PC], c)
			s.mu.Unlock()
			return nil
		}
		s.mu.Unlock()
		return pc.AddICECandidate(c)
	}
	return errors.New("unexpected sfu message " + m.PC + " " + m.Kind)
}

// answerDown answers the server's offer on the down connection, creating
// it the first time.
func (s *sfuSide) answerDown(sdp string) error {
	s.mu.Lock()
	pc := s.down
	s.mu.Unlock()
	if pc == nil {
		var err error
		if pc, err = s.n.api.NewPeerConnection(s.conf()); err != nil {
			return err
		}
		s.watch(pc, protocol.SFUDown)
		pc.OnTrack(s.onTrack)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return pc.Close()
		}
		s.down = pc
		s.mu.Unlock()
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return err
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return err
	}
	if err := pc.SetLocalDescription(answer); err != nil {
		return err
	}
	if err := s.flush(protocol.SFUDown, pc); err != nil {
		return err
	}
	return s.send(protocol.SFU{PC: protocol.SFUDown, Kind: "answer", SDP: answer.SDP})
}

// flush applies the remote candidates that came before the description.
func (s *sfuSide) flush(which string, pc *webrtc.PeerConnection) error {
	s.mu.Lock()
	cs := s.pending[which]
	delete(s.pending, which)
	s.mu.Unlock()
	for _, c := range cs {
		if err := pc.AddICECandidate(c); err != nil {
			return err
		}
	}
	return nil
}

func (s *sfuSide) onTrack(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	key := tr.StreamID()
	if tr.Kind() == webrtc.RTPCodecTypeAudio {
		key += AudioSuffix
	}
	s.wg.Add(1)
	go s.read(tr, key)
}

// read counts a forwarded track's packets until the connection closes.
func (s *sfuSide) read(tr *webrtc.TrackRemote, key string) {
	defer s.wg.Done()
	for {
		if _, _, err := tr.ReadRTP(); err != nil {
			return
		}
		s.mu.Lock()
		first := !s.seen[key]
		s.seen[key] = true
		s.mu.Unlock()
		s.n.t.packet(key, first)
		if first && s.first != nil && tr.Kind() == webrtc.RTPCodecTypeVideo {
			s.first(tr.StreamID())
		}
	}
}

// close ends both connections and waits for the writers and readers.
func (s *sfuSide) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	up, down := s.up, s.down
	s.mu.Unlock()
	for _, pc := range []*webrtc.PeerConnection{up, down} {
		if pc != nil {
			_ = pc.GracefulClose()
		}
	}
	s.wg.Wait()
}

// Mode is the room's media mode as this client last heard it.
func (c *Client) Mode() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mode
}

// setMode follows the room into a mode, as a page does: prepare, then
// flip. Into the SFU, it publishes there, and closes the mesh link with a
// member once that member's video arrives through the SFU. Back to the
// mesh, it offers to the members whose ID sorts after its own (one side
// offers, no glare), and closes its SFU connections once every mesh link
// carries video, or after meshBackWait.
func (c *Client) setMode(mode string) {
	c.mu.Lock()
	if c.mode == mode || c.closed {
		c.mu.Unlock()
		return
	}
	c.mode = mode
	c.t.add(EventMode, "", mode)
	side, watchOnly := c.sfu, c.joined.WatchOnly
	var stale *sfuSide
	if mode == protocol.ModeSFU {
		// Connections left from a previous SFU period are ended: the
		// server makes the member's attachment afresh too.
		stale = side
		side = newSFUSide(c.Node, !watchOnly, func(m protocol.SFU) error { return c.send(protocol.TypeSFU, m) }, c.flipped)
		c.sfu = side
	}
	c.mu.Unlock()
	if stale != nil {
		stale.close()
	}
	if mode == protocol.ModeSFU {
		if err := side.start(); err != nil {
			c.fail("sfu-up", "publish", err)
		}
		return
	}
	self := c.ID()
	for _, id := range c.roomPeers() {
		if id > self {
			c.offerTo(id, false)
		}
	}
	go c.closeSFUWhenMeshPlays()
}

// flipped: a member's video arrived through the SFU; the mesh link with
// it is no longer needed.
func (c *Client) flipped(peer string) {
	if c.Mode() == protocol.ModeSFU {
		c.dropLink(peer)
	}
}

// meshBackWait bounds how long the SFU connections outlive a switch back
// to the mesh (the server ends them 10 s after it).
const meshBackWait = 10 * time.Second

// closeSFUWhenMeshPlays closes the SFU connections once every member's
// mesh link carries video (or after meshBackWait), unless the room went
// back to the SFU meanwhile.
func (c *Client) closeSFUWhenMeshPlays() {
	deadline := time.Now().Add(meshBackWait)
	for time.Now().Before(deadline) && c.Mode() == protocol.ModeMesh {
		all := true
		for _, id := range c.roomPeers() {
			if l := c.link(id); l == nil || !l.hasRTP() {
				all = false
			}
		}
		if all {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.mu.Lock()
	side := c.sfu
	if c.mode == protocol.ModeMesh {
		c.sfu = nil
	} else {
		side = nil
	}
	c.mu.Unlock()
	if side != nil {
		side.close()
	}
}

// roomPeers are the other members as the server last described them.
func (c *Client) roomPeers() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Collect(maps.Keys(c.members))
}

// ChooseMode asks the server for the room's media mode (a host's
// right): protocol.ModeMesh, protocol.ModeSFU or "auto".
func (c *Client) ChooseMode(mode string) error {
	return c.send(protocol.TypeMode, protocol.Mode{Mode: mode})
}

// SFUPair is the candidate pair of the down connection with the SFU.
func (c *Client) SFUPair() (*webrtc.ICECandidatePair, error) {
	c.mu.Lock()
	side := c.sfu
	c.mu.Unlock()
	if side == nil {
		return nil, errors.New("rtcpeer: no SFU connection")
	}
	side.mu.Lock()
	pc := side.down
	side.mu.Unlock()
	if pc == nil {
		return nil, errors.New("rtcpeer: no down connection yet")
	}
	return selectedPair(pc)
}
