package sfu

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Member is one member's two connections with its router.
type Member struct {
	r    *Router
	id   string
	send func(Signal)
	opt  JoinOptions
	sink *sink
	done chan struct{}
	wg   sync.WaitGroup

	// Down connection (server offers), under dmu. Lock order: r.mu, then
	// dmu or umu.
	dmu       sync.Mutex
	down      *webrtc.PeerConnection
	senders   map[*fwdTrack]*webrtc.RTPSender
	inFlight  bool // an offer waits for its answer
	pending   bool // a change waits for that answer
	offered   bool
	downReady bool // a remote description is set
	downCands []webrtc.ICECandidateInit
	closed    bool

	// Up connection (member offers), under umu.
	umu     sync.Mutex
	up      *webrtc.PeerConnection
	upInfo  offerInfo
	upMids  map[string]string // mid → track ID published from it
	upCands []webrtc.ICECandidateInit

	// Local candidates wait until their connection's description is
	// sent (pion gathers as soon as the description is set), under cmu.
	cmu  sync.Mutex
	held map[string][]*webrtc.ICECandidateInit // by PC; nil entry: sent
	sent map[string]bool

	// Bitrate cap, under bmu.
	bmu    sync.Mutex
	tokens float64 // bits
	filled time.Time
}

func newMember(r *Router, id string, send func(Signal), opt JoinOptions) (*Member, error) {
	m := &Member{r: r, id: id, send: send, opt: opt, sink: newSink(r), done: make(chan struct{}),
		senders: map[*fwdTrack]*webrtc.RTPSender{}, upMids: map[string]string{},
		held: map[string][]*webrtc.ICECandidateInit{}, sent: map[string]bool{}}
	pc, err := r.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, fmt.Errorf("sfu: down connection: %w", err)
	}
	m.down = pc
	pc.OnICECandidate(m.candidateSender(PCDown))
	// Over TCP a peer that stops reading blocks its writer: queue (see
	// sink). Only a pair known to be UDP writes directly, so that a TCP
	// subscriber is never written inline, even before this runs.
	pc.SCTP().Transport().ICETransport().OnSelectedCandidatePairChange(func(p *webrtc.ICECandidatePair) {
		m.sink.queued.Store(p == nil || p.Local == nil || p.Local.Protocol != webrtc.ICEProtocolUDP)
	})
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.sink.run(m.done)
	}()
	return m, nil
}

func (m *Member) candidateSender(pc string) func(*webrtc.ICECandidate) {
	return func(c *webrtc.ICECandidate) {
		var init *webrtc.ICECandidateInit
		if c != nil {
			j := c.ToJSON()
			init = &j
		}
		m.cmu.Lock()
		defer m.cmu.Unlock()
		if !m.sent[pc] {
			m.held[pc] = append(m.held[pc], init)
			return
		}
		m.send(Signal{PC: pc, Kind: "candidate", Candidate: init})
	}
}

// sendDescription sends an offer or answer, then the candidates held for
// it.
func (m *Member) sendDescription(pc, kind, sdp string) {
	m.cmu.Lock()
	defer m.cmu.Unlock()
	m.send(Signal{PC: pc, Kind: kind, SDP: sdp})
	m.sent[pc] = true
	for _, c := range m.held[pc] {
		m.send(Signal{PC: pc, Kind: "candidate", Candidate: c})
	}
	m.held[pc] = nil
}

// Signal takes one message from the member: an offer on PCUp (answered
// through send), an answer on PCDown, or a candidate for either.
func (m *Member) Signal(s Signal) error {
	switch {
	case s.PC == PCUp && s.Kind == "offer":
		return m.upOffer(s.SDP)
	case s.PC == PCDown && s.Kind == "answer":
		return m.downAnswer(s.SDP)
	case s.Kind == "candidate" && (s.PC == PCUp || s.PC == PCDown):
		return m.candidate(s.PC, s.Candidate)
	}
	return fmt.Errorf("%w: %q on %q", ErrBadSignal, truncate(s.Kind), truncate(s.PC))
}

func (m *Member) candidate(pc string, c *webrtc.ICECandidateInit) error {
	if c == nil {
		return nil // end of candidates: nothing to do for pion
	}
	if pc == PCDown {
		m.dmu.Lock()
		defer m.dmu.Unlock()
		if m.closed {
			return ErrClosed
		}
		if !m.downReady {
			if len(m.downCands) < 64 {
				m.downCands = append(m.downCands, *c)
			}
			return nil
		}
		return m.addCandidate(m.down, *c)
	}
	m.umu.Lock()
	defer m.umu.Unlock()
	if m.up == nil {
		if !m.opt.Publish {
			return ErrNotPublisher
		}
		if len(m.upCands) < 64 {
			m.upCands = append(m.upCands, *c)
		}
		return nil
	}
	return m.addCandidate(m.up, *c)
}

func (m *Member) addCandidate(pc *webrtc.PeerConnection, c webrtc.ICECandidateInit) error {
	if err := pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("%w: candidate: %v", ErrBadSignal, err)
	}
	return nil
}

// upOffer answers a publisher's offer. An offer with a new DTLS
// fingerprint is a new connection (the member reconnected): it replaces
// the old one, and the member's forwarded tracks take their packets from
// it, continuing their sequence numbers and timestamps.
func (m *Member) upOffer(raw string) error {
	if !m.opt.Publish {
		return ErrNotPublisher
	}
	info, err := checkOffer(raw)
	if err != nil {
		return err
	}
	m.umu.Lock()
	defer m.umu.Unlock()
	select {
	case <-m.done:
		return ErrClosed
	default:
	}
	var old *webrtc.PeerConnection
	fresh := false
	if m.up != nil && m.upInfo.fingerprint != info.fingerprint {
		old, m.up = m.up, nil
	}
	if m.up == nil {
		pc, err := m.r.api.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			return fmt.Errorf("sfu: up connection: %w", err)
		}
		m.cmu.Lock()
		m.sent[PCUp], m.held[PCUp] = false, nil
		m.cmu.Unlock()
		pc.OnICECandidate(m.candidateSender(PCUp))
		pc.OnTrack(func(tr *webrtc.TrackRemote, rc *webrtc.RTPReceiver) { m.onTrack(pc, tr, rc) })
		m.up, fresh = pc, true
		m.upMids = map[string]string{}
	}
	pc := m.up
	fail := func(err error) error {
		if fresh {
			m.up = nil
			_ = pc.Close()
			if old != nil { // the member keeps its working connection
				m.up = old
			}
		}
		return err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: raw}); err != nil {
		return fail(fmt.Errorf("%w: %v", ErrBadOffer, err))
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(fmt.Errorf("%w: answer: %v", ErrBadOffer, err))
	}
	if err := pc.SetLocalDescription(answer); err != nil {
		return fail(fmt.Errorf("%w: answer: %v", ErrBadOffer, err))
	}
	m.upInfo = info
	m.sendDescription(PCUp, "answer", answer.SDP)
	for _, c := range m.upCands {
		_ = pc.AddICECandidate(c)
	}
	m.upCands = nil
	if old != nil {
		go func() { _ = old.Close() }()
	}
	if !fresh {
		// A renegotiation that stops a section unpublishes its track.
		var gone []string
		for mid, id := range m.upMids {
			if !info.sending[mid] {
				gone = append(gone, id)
				delete(m.upMids, mid)
			}
		}
		if len(gone) > 0 {
			go m.r.unpublish(m, gone)
		}
	}
	return nil
}

// onTrack starts forwarding a remote track of the up connection pc.
func (m *Member) onTrack(pc *webrtc.PeerConnection, tr *webrtc.TrackRemote, rc *webrtc.RTPReceiver) {
	m.umu.Lock()
	if m.up != pc {
		m.umu.Unlock()
		return
	}
	mid := ""
	for _, x := range pc.GetTransceivers() {
		if x.Receiver() == rc {
			mid = x.Mid()
		}
	}
	id := "audio"
	if tr.Kind() == webrtc.RTPCodecTypeVideo {
		id = "video"
		for i, v := range m.upInfo.videoMids {
			if v == mid && i == 1 {
				id = "screen"
			}
		}
		if tid := tr.ID(); tid == "video" || tid == "screen" {
			id = tid
		}
	}
	for om, oid := range m.upMids {
		if oid == id && om != mid { // two sections claim one name
			m.umu.Unlock()
			m.r.log.Warn("sfu: track ignored: name taken", "member", m.id, "track", id)
			return
		}
	}
	m.upMids[mid] = id
	m.wg.Add(1) // under umu: close has not started waiting
	m.umu.Unlock()
	src := &source{pc: pc, ssrc: uint32(tr.SSRC())}
	if tr.Kind() == webrtc.RTPCodecTypeAudio {
		for _, e := range rc.GetParameters().HeaderExtensions {
			if e.URI == sdp.AudioLevelURI {
				src.levelID = uint8(e.ID)
			}
		}
	}
	t := m.r.publish(m, id, tr.Kind(), src)
	if t == nil {
		m.wg.Done()
		return
	}
	go m.read(t, src, tr)
}

// read forwards a remote track's packets until its connection ends.
func (m *Member) read(t *fwdTrack, src *source, tr *webrtc.TrackRemote) {
	defer m.wg.Done()
	defer t.clearSource(src)
	buf := make([]byte, 1500)
	var hdr rtp.Header
	st := &m.r.stats
	for {
		n, _, err := tr.Read(buf)
		if err != nil {
			return
		}
		hn, err := hdr.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		st.packetsIn.Add(1)
		st.bytesIn.Add(uint64(n))
		now := m.r.now()
		if !m.allow(n, now) {
			st.droppedRateCap.Add(1)
			continue
		}
		// The payload keeps any padding: the P bit is forwarded.
		t.forward(src, &hdr, buf[hn:n], now)
	}
}

// allow is the publisher's token bucket: MaxPublisherBitrate with a
// quarter second of burst.
func (m *Member) allow(size int, now time.Time) bool {
	rate := float64(m.r.s.cfg.MaxPublisherBitrate)
	burst := rate / 4
	bits := float64(size * 8)
	m.bmu.Lock()
	defer m.bmu.Unlock()
	if m.filled.IsZero() {
		m.tokens = burst
	} else {
		m.tokens += now.Sub(m.filled).Seconds() * rate
		if m.tokens > burst {
			m.tokens = burst
		}
	}
	m.filled = now
	if m.tokens < bits {
		return false
	}
	m.tokens -= bits
	return true
}

// addDownLocked adds a track to the down connection; under dmu.
func (m *Member) addDownLocked(t *fwdTrack) {
	if m.closed || m.senders[t] != nil {
		return
	}
	s, err := m.down.AddTrack(subTrack{t, m.sink})
	if err != nil {
		m.r.log.Warn("sfu: add track", "member", m.id, "track", t.pub+"/"+t.id, "err", err)
		return
	}
	m.senders[t] = s
	m.wg.Add(1)
	go m.readRTCP(t, s)
}

// removeDownLocked removes a track from the down connection; under dmu.
func (m *Member) removeDownLocked(t *fwdTrack) bool {
	s := m.senders[t]
	if s == nil {
		return false
	}
	delete(m.senders, t)
	if m.closed {
		return false
	}
	if err := m.down.RemoveTrack(s); err != nil {
		m.r.log.Debug("sfu: remove track", "member", m.id, "err", err)
	}
	return true
}

// readRTCP reads a down sender's RTCP (which runs the interceptors:
// NACK responder, reports) and passes keyframe requests upstream.
func (m *Member) readRTCP(t *fwdTrack, s *webrtc.RTPSender) {
	defer m.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, _, err := s.Read(buf)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				t.requestKeyframe()
			}
		}
	}
}

// negotiateLocked offers the down connection's tracks, one offer at a
// time: a change during an offer is offered again after its answer.
// Under dmu.
func (m *Member) negotiateLocked() {
	if m.closed {
		return
	}
	if m.inFlight {
		m.pending = true
		return
	}
	if len(m.senders) == 0 && !m.offered {
		return // nothing to send yet
	}
	offer, err := m.down.CreateOffer(nil)
	if err == nil {
		err = m.down.SetLocalDescription(offer)
	}
	if err != nil {
		m.r.log.Warn("sfu: down offer", "member", m.id, "err", err)
		return
	}
	m.inFlight, m.pending, m.offered = true, false, true
	m.sendDescription(PCDown, "offer", offer.SDP)
}

func (m *Member) downAnswer(raw string) error {
	if len(raw) > maxOfferSize {
		return fmt.Errorf("%w: answer of %d bytes", ErrBadSignal, len(raw))
	}
	m.dmu.Lock()
	defer m.dmu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if !m.inFlight {
		return fmt.Errorf("%w: answer without an offer", ErrBadSignal)
	}
	if err := m.down.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: raw}); err != nil {
		// Roll back so that a correct answer is not needed: offer again.
		m.inFlight = false
		_ = m.down.SetLocalDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeRollback})
		m.negotiateLocked()
		return fmt.Errorf("%w: answer: %v", ErrBadSignal, err)
	}
	m.inFlight = false
	if !m.downReady {
		m.downReady = true
		for _, c := range m.downCands {
			_ = m.down.AddICECandidate(c)
		}
		m.downCands = nil
	}
	if m.pending {
		m.negotiateLocked()
	}
	return nil
}

// RequestKeyframe asks every source the member receives for a keyframe
// (rate-limited per source), e.g. after its tile became visible.
func (m *Member) RequestKeyframe() {
	m.dmu.Lock()
	ts := make([]*fwdTrack, 0, len(m.senders))
	for t := range m.senders {
		ts = append(ts, t)
	}
	m.dmu.Unlock()
	for _, t := range ts {
		t.requestKeyframe()
	}
}

// close closes both connections and waits for the member's goroutines.
func (m *Member) close() {
	m.dmu.Lock()
	if m.closed {
		m.dmu.Unlock()
		return
	}
	m.closed = true
	down := m.down
	m.dmu.Unlock()
	m.umu.Lock()
	up := m.up
	m.up = nil
	close(m.done)
	m.umu.Unlock()
	var errs []error
	if up != nil {
		errs = append(errs, up.Close())
	}
	if m.sink.queued.Load() {
		// Over TCP, closing says goodbye (DTLS close_notify) through a
		// socket that a stuck peer never drains: that write would wait
		// forever. Stopping ICE first closes the socket, which also
		// frees a writer blocked in it.
		errs = append(errs, down.SCTP().Transport().ICETransport().Stop())
	}
	errs = append(errs, down.Close())
	m.wg.Wait()
	if err := errors.Join(errs...); err != nil {
		m.r.log.Debug("sfu: close", "member", m.id, "err", err)
	}
}
