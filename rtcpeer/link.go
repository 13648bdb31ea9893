package rtcpeer

import (
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// vp8Payload is a synthetic VP8 payload: a payload descriptor with the
// start-of-partition bit and a key-frame header. Receivers only count
// packets, nothing decodes it.
var vp8Payload = []byte{0x10, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00, 0x00, 0x00, 0x00}

// link is the PeerConnection with one remote peer.
//
// Local candidates are held back until the description they belong to has
// been sent (after an ICE restart offer, until its answer is in: see offer):
// pion gathers as soon as CreateOffer asks for an ICE restart, and a
// candidate overtaking its offer would be applied by the remote to the old
// ICE generation, then wiped by the restart. Remote candidates that arrive
// before any remote description are buffered, as pion refuses them.
type link struct {
	n     *Node
	peer  string
	pc    *webrtc.PeerConnection
	track *webrtc.TrackLocalStaticRTP
	done  chan struct{} // closed by close: stops the video writer

	mu           sync.Mutex
	dc           *webrtc.DataChannel
	canSend      bool                      // our latest description has been sent
	held         []webrtc.ICECandidateInit // local candidates waiting for it
	pending      []webrtc.ICECandidateInit // remote candidates waiting for a remote description
	gotRTP       bool
	sawConnected bool // a handler reported "connected" at least once
	closed       bool
	wg           sync.WaitGroup // our goroutines: video writer, track readers
}

func newLink(n *Node, peer string, conf webrtc.Configuration, offerer bool) (*link, error) {
	pc, err := n.api.NewPeerConnection(conf)
	if err != nil {
		return nil, err
	}
	l := &link{n: n, peer: peer, pc: pc, done: make(chan struct{})}
	if err := l.setup(offerer); err != nil {
		_ = pc.Close()
		return nil, err
	}
	l.wg.Add(1)
	go l.sendVideo()
	return l, nil
}

func (l *link) setup(offerer bool) error {
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8},
		"video", "rtcpeer")
	if err != nil {
		return err
	}
	if _, err := l.pc.AddTrack(track); err != nil {
		return err
	}
	l.track = track
	l.pc.OnICECandidate(l.onLocalCandidate)
	// pion runs each state handler on its own goroutine, so two close
	// changes (connecting, connected) may be reported out of order: the
	// events keep one "connected" per transition, and connected() reads
	// the state pion stored, not the order handlers ran in.
	l.pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.n.t.add(EventState, l.peer, s.String())
		if s == webrtc.PeerConnectionStateConnected {
			l.sawConnected = true
			l.n.t.add(EventConnected, l.peer, "")
		}
	})
	l.pc.OnTrack(l.onTrack)
	if !offerer {
		l.pc.OnDataChannel(l.setupChannel)
		return nil
	}
	dc, err := l.pc.CreateDataChannel("data", nil)
	if err != nil {
		return err
	}
	l.setupChannel(dc)
	return nil
}

func (l *link) setupChannel(dc *webrtc.DataChannel) {
	dc.OnOpen(func() {
		l.mu.Lock()
		l.dc = dc
		l.mu.Unlock()
		l.n.t.add(EventDataOpen, l.peer, dc.Label())
	})
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		l.n.t.add(EventData, l.peer, string(m.Data))
	})
}

// openChannel returns the data channel once it is open, else nil.
func (l *link) openChannel() *webrtc.DataChannel {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dc == nil || l.dc.ReadyState() != webrtc.DataChannelStateOpen {
		return nil
	}
	return l.dc
}

// hasRTP: video from the peer has arrived on this link.
func (l *link) hasRTP() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gotRTP
}

// connected: pion says connected and our handler has recorded it, so that
// a waiter woken by "connected" finds its event.
func (l *link) connected() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sawConnected && l.pc.ConnectionState() == webrtc.PeerConnectionStateConnected
}

func (l *link) onTrack(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	// Added under l.mu before close sets closed, so close's Wait sees it.
	l.wg.Add(1)
	go l.readTrack(tr)
}

// readTrack counts packets until the PeerConnection closes.
func (l *link) readTrack(tr *webrtc.TrackRemote) {
	defer l.wg.Done()
	for {
		if _, _, err := tr.ReadRTP(); err != nil {
			return
		}
		l.mu.Lock()
		first := !l.gotRTP
		l.gotRTP = true
		l.mu.Unlock()
		l.n.t.packet(l.peer, first)
	}
}

// sendVideo writes a synthetic VP8 packet every RTPInterval.
func (l *link) sendVideo() {
	defer l.wg.Done()
	sendSynthetic(l.done, l.track, 90000, vp8Payload, l.n.cfg.RTPInterval)
}

// sendSynthetic writes a synthetic packet on track every interval, with
// timestamps on its clock, until done. Writes before the transport is up
// are dropped by pion, as a camera's frames would be.
func sendSynthetic(done <-chan struct{}, track *webrtc.TrackLocalStaticRTP, clock uint32, payload []byte, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, Marker: true}, Payload: payload}
	step := uint32(int64(clock) * int64(interval) / int64(time.Second))
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		pkt.SequenceNumber++
		pkt.Timestamp += step
		_ = track.WriteRTP(pkt)
	}
}

func (l *link) onLocalCandidate(c *webrtc.ICECandidate) {
	if c == nil {
		return // gathering complete; nothing to tell
	}
	init := c.ToJSON()
	l.mu.Lock()
	if !l.canSend {
		l.held = append(l.held, init)
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	l.sendCandidate(init)
}

func (l *link) sendCandidate(c webrtc.ICECandidateInit) {
	if err := l.n.sig.sendCandidate(l.peer, c); err != nil {
		// The socket is down (dropped, resuming): the resume's ICE restart
		// gathers and sends fresh candidates.
		l.n.log.Debug("rtcpeer: candidate not sent", "peer", l.peer, "err", err)
	}
}

// hold stops candidates until release: a new description is being made.
// Candidates still held from an earlier one (whose answer never came) are
// dropped: pion puts the current generation's candidates in the new SDP.
func (l *link) hold() {
	l.mu.Lock()
	l.canSend = false
	l.held = nil
	l.mu.Unlock()
}

// release sends the candidates gathered while the description was being
// made and lets later ones through.
func (l *link) release() {
	l.mu.Lock()
	l.canSend = true
	held := l.held
	l.held = nil
	l.mu.Unlock()
	for _, c := range held {
		l.sendCandidate(c)
	}
}

// offer sends an offer. After an ICE restart offer our candidates wait for
// the answer: until then we cannot check the remote's credentials and drop
// its connectivity checks, and when the remote is the controlling agent (we
// answered the first negotiation) pion only retries a dropped check on its
// next 200 ms tick. Sent once we hold the answer, the candidates' checks
// succeed at once.
func (l *link) offer(restart bool) error {
	l.hold()
	offer, err := l.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: restart})
	if err != nil {
		return err
	}
	if err := l.pc.SetLocalDescription(offer); err != nil {
		return err
	}
	if err := l.n.sig.sendSDP("offer", l.peer, offer.SDP); err != nil {
		return err
	}
	if !restart {
		l.release()
	}
	return nil
}

func (l *link) answer(sdp string) error {
	l.hold()
	if err := l.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return err
	}
	if err := l.flushPending(); err != nil {
		return err
	}
	ans, err := l.pc.CreateAnswer(nil)
	if err != nil {
		return err
	}
	if err := l.pc.SetLocalDescription(ans); err != nil {
		return err
	}
	if err := l.n.sig.sendSDP("answer", l.peer, ans.SDP); err != nil {
		return err
	}
	l.release()
	return nil
}

func (l *link) accept(sdp string) error {
	if err := l.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		return err
	}
	l.release()
	return l.flushPending()
}

func (l *link) addRemote(c webrtc.ICECandidateInit) error {
	if l.pc.RemoteDescription() == nil {
		l.mu.Lock()
		l.pending = append(l.pending, c)
		l.mu.Unlock()
		return nil
	}
	return l.pc.AddICECandidate(c)
}

func (l *link) flushPending() error {
	l.mu.Lock()
	pending := l.pending
	l.pending = nil
	l.mu.Unlock()
	for _, c := range pending {
		if err := l.pc.AddICECandidate(c); err != nil {
			return err
		}
	}
	return nil
}

// close ends the PeerConnection and waits for pion's goroutines and ours.
// It must not run inside a pion callback (GracefulClose waits for them).
func (l *link) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	close(l.done)
	if err := l.pc.GracefulClose(); err != nil {
		l.n.log.Debug("rtcpeer: close", "peer", l.peer, "err", err)
	}
	l.wg.Wait()
}
