package main

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"crisisroom/rtcpeer"
	"crisisroom/sfu"
	"crisisroom/turnserver"
)

// The synthetic load: VP8 at about 1.5 Mbit/s in 30 frames a second, each
// frame cut into packets of at most 1200 bytes, a keyframe (four times
// larger) at start and whenever a receiver asks; and Opus-sized audio, 50
// packets of 100 bytes a second with the RFC 6464 audio level.
const (
	sfuVideoBitrate = 1_500_000
	sfuVideoFPS     = 30
	sfuMaxPayload   = 1200
	sfuAudioPayload = 100
	sfuAudioEvery   = 20 * time.Millisecond
	sfuFreezeGap    = 500 * time.Millisecond
)

// newSFUClientAPI builds the pion API of the clients' peer connections:
// the browser's codecs, the audio level extension, pion's default
// interceptors (so receivers send NACKs and reports, and publishers answer
// NACKs from a ring of sent packets), loopback only, and sockets that
// count.
func newSFUClientAPI(sent, recv *wireCount, ports *portSet) (*webrtc.API, error) {
	n, err := newCountingNet(sent, recv, ports)
	if err != nil {
		return nil, err
	}
	return newBenchAPI(func(se *webrtc.SettingEngine) { se.SetNet(n) })
}

// newBenchAPI is the pion API both the clients and the floor forwarder
// use: the browser's codecs, the audio level extension (the floor forwards
// it as is, negotiated as the sfu package does), pion's default
// interceptors, loopback only; tune adjusts the settings.
func newBenchAPI(tune func(*webrtc.SettingEngine)) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		return nil, err
	}
	se := turnserver.SettingEngine()
	rtcpeer.Loopback(&se)
	if tune != nil {
		tune(&se)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// sfuClient is one member: a publisher (an up connection that sends audio
// and video, and a down one that receives the other publishers) or a
// subscriber (a down connection only). Signals from the forwarder are
// applied in order on one goroutine, as a page's socket reader would.
type sfuClient struct {
	run     *sfuRun
	id      string
	pub     *sfuPublisher // nil for a subscriber
	signal  func(sfu.Signal) error
	q       signalQueue
	up      *webrtc.PeerConnection
	down    *webrtc.PeerConnection // set and used by the signal loop only
	pending map[string][]webrtc.ICECandidateInit

	mu     sync.Mutex
	tracks []*trackRx // written by OnTrack, read after the readers end
	downOK chan struct{}
	once   sync.Once
}

// signalQueue never blocks the forwarder that pushes into it.
type signalQueue struct {
	mu   sync.Mutex
	q    []sfu.Signal
	wake chan struct{}
	done chan struct{}
}

func (q *signalQueue) push(s sfu.Signal) {
	q.mu.Lock()
	q.q = append(q.q, s)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func newSFUClient(run *sfuRun, id string, publish bool) *sfuClient {
	c := &sfuClient{run: run, id: id, pending: map[string][]webrtc.ICECandidateInit{}, downOK: make(chan struct{})}
	c.q.wake, c.q.done = make(chan struct{}, 1), make(chan struct{})
	if publish {
		c.pub = &sfuPublisher{c: c, done: make(chan struct{})}
	}
	return c
}

// loop applies the forwarder's signals until stop.
func (c *sfuClient) loop() {
	defer c.run.loops.Done()
	for {
		select {
		case <-c.q.done:
			return
		case <-c.q.wake:
		}
		c.q.mu.Lock()
		q := c.q.q
		c.q.q = nil
		c.q.mu.Unlock()
		for _, s := range q {
			if err := c.apply(s); err != nil {
				c.run.fail(fmt.Errorf("%s: %s %s: %w", c.id, s.PC, s.Kind, err))
			}
		}
	}
}

func (c *sfuClient) apply(s sfu.Signal) error {
	switch {
	case s.Kind == "candidate":
		pc := c.up
		if s.PC == sfu.PCDown {
			pc = c.down
		}
		if s.Candidate == nil {
			return nil
		}
		if pc == nil || pc.RemoteDescription() == nil {
			c.pending[s.PC] = append(c.pending[s.PC], *s.Candidate)
			return nil
		}
		return pc.AddICECandidate(*s.Candidate)
	case s.PC == sfu.PCUp && s.Kind == "answer":
		if err := c.up.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: s.SDP}); err != nil {
			return err
		}
		return c.flush(sfu.PCUp, c.up)
	case s.PC == sfu.PCDown && s.Kind == "offer":
		return c.answerDown(s.SDP)
	}
	return fmt.Errorf("unexpected signal")
}

func (c *sfuClient) flush(name string, pc *webrtc.PeerConnection) error {
	for _, ci := range c.pending[name] {
		if err := pc.AddICECandidate(ci); err != nil {
			return err
		}
	}
	delete(c.pending, name)
	return nil
}

// answerDown answers the forwarder's offer (the first or a renegotiation).
// The client trickles nothing: loopback host candidates gather in
// microseconds, so it waits for them and sends them in its SDP.
func (c *sfuClient) answerDown(offer string) error {
	if c.down == nil {
		pc, err := c.run.downAPI.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			return err
		}
		c.down = pc
		pc.OnTrack(c.onTrack)
		pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
			switch s {
			case webrtc.PeerConnectionStateConnected:
				c.once.Do(func() { close(c.downOK) })
			case webrtc.PeerConnectionStateFailed:
				// Said at once, rather than as a timeout minutes later.
				c.run.fail(fmt.Errorf("%s: down connection failed", c.id))
			}
		})
	}
	if err := c.down.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return err
	}
	if err := c.flush(sfu.PCDown, c.down); err != nil {
		return err
	}
	answer, err := c.down.CreateAnswer(nil)
	if err != nil {
		return err
	}
	gathered := webrtc.GatheringCompletePromise(c.down)
	if err := c.down.SetLocalDescription(answer); err != nil {
		return err
	}
	<-gathered
	return c.signal(sfu.Signal{PC: sfu.PCDown, Kind: "answer", SDP: c.down.LocalDescription().SDP})
}

// onTrack starts a reader. A subscriber asks for a keyframe once, as a
// browser that joins mid-stream does.
func (c *sfuClient) onTrack(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	rx := &trackRx{pub: -1, video: tr.Kind() == webrtc.RTPCodecTypeVideo, counted: c.pub == nil}
	if i, ok := c.run.pubIndex[tr.StreamID()]; ok {
		rx.pub = i
	}
	c.mu.Lock()
	c.tracks = append(c.tracks, rx)
	c.mu.Unlock()
	if rx.video && c.pub == nil {
		_ = c.down.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(tr.SSRC())}})
	}
	c.run.wg.Add(1)
	go c.run.read(tr, rx)
}

// trackRx is what a receiver saw of one track. Its reader goroutine alone
// writes it; the tally reads it once the readers have ended.
type trackRx struct {
	pub            int // index of the publisher, -1 if unknown
	video, counted bool
	flowing        bool
	seen           seqSet
	recv, dups     int64
	freezes        int
	lastRx, maxGap time.Duration
	lat            latHist
}

// read counts one track's packets into a reused buffer: sequence number,
// and the send time the publisher wrote in the payload's last 8 bytes.
func (run *sfuRun) read(tr *webrtc.TrackRemote, rx *trackRx) {
	defer run.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, _, err := tr.Read(buf)
		if err != nil {
			return
		}
		now := time.Since(run.base)
		seq, sent, ok := rtpSeqStamp(buf[:n])
		if !ok {
			continue
		}
		if !rx.flowing {
			rx.flowing = true
			if rx.counted {
				run.flowing.Add(1)
			}
		}
		t0, t1 := time.Duration(run.t0.Load()), time.Duration(run.t1.Load())
		if t0 == 0 {
			continue
		}
		if rx.video && now >= t0 && now < t1 {
			gap := now - max(rx.lastRx, t0)
			if gap > sfuFreezeGap {
				rx.freezes++
			}
			rx.maxGap = max(rx.maxGap, gap)
			rx.lastRx = now
		}
		if sent < t0 || sent >= t1 {
			continue
		}
		if !rx.seen.add(seq) {
			rx.dups++
			continue
		}
		rx.recv++
		rx.lat.add(int64((now - sent) / time.Microsecond))
	}
}

// rtpSeqStamp reads a packet's sequence number and the stamp at the end
// of its payload without unmarshalling it.
func rtpSeqStamp(b []byte) (uint16, time.Duration, bool) {
	if len(b) < 12 {
		return 0, 0, false
	}
	off := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 {
		if len(b) < off+4 {
			return 0, 0, false
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:]))
	}
	end := len(b)
	if b[0]&0x20 != 0 {
		end -= int(b[end-1])
	}
	if end-off < 8 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint16(b[2:]), time.Duration(binary.BigEndian.Uint64(b[end-8 : end])), true
}

// sfuPublisher sends the synthetic audio and video on the up connection.
type sfuPublisher struct {
	c            *sfuClient
	audio, video *webrtc.TrackLocalStaticRTP
	aSender      *webrtc.RTPSender
	vSender      *webrtc.RTPSender
	upOK         chan struct{}
	done         chan struct{}
	keyframe     atomic.Bool
	// Written by the senders, read after they end.
	sentA, sentV     int64 // first transmissions stamped inside the window
	keyframes        int64
	plisSeen         atomic.Int64
	startOnce, close sync.Once
}

// publish offers the up connection with one audio and one video track.
func (p *sfuPublisher) publish() error {
	c := p.c
	var err error
	p.audio, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", c.id)
	if err != nil {
		return err
	}
	p.video, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", c.id)
	if err != nil {
		return err
	}
	pc, err := c.run.pubAPI.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	c.up = pc
	p.upOK = make(chan struct{})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			p.startOnce.Do(func() { close(p.upOK) })
		case webrtc.PeerConnectionStateFailed:
			c.run.fail(fmt.Errorf("%s: up connection failed", c.id))
		}
	})
	for _, t := range []*webrtc.TrackLocalStaticRTP{p.audio, p.video} {
		if _, err := pc.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			return err
		}
	}
	for _, tr := range pc.GetTransceivers() {
		if tr.Kind() == webrtc.RTPCodecTypeAudio {
			p.aSender = tr.Sender()
		} else {
			p.vSender = tr.Sender()
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return err
	}
	<-gathered
	return c.signal(sfu.Signal{PC: sfu.PCUp, Kind: "offer", SDP: pc.LocalDescription().SDP})
}

// start runs the senders and the RTCP readers (which also feed pion's
// NACK responder: it sees NACKs only when someone reads).
func (p *sfuPublisher) start() {
	run := p.c.run
	run.wg.Add(4)
	go p.readRTCP(p.aSender, false)
	go p.readRTCP(p.vSender, true)
	go p.sendAudio()
	go p.sendVideo()
}

func (p *sfuPublisher) stop() { p.close.Do(func() { close(p.done) }) }

func (p *sfuPublisher) readRTCP(s *webrtc.RTPSender, video bool) {
	defer p.c.run.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, _, err := s.Read(buf)
		if err != nil {
			return
		}
		if !video {
			continue
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, pk := range pkts {
			switch pk.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				p.plisSeen.Add(1)
				p.keyframe.Store(true)
			}
		}
	}
}

// stamp writes the send time into the payload's last 8 bytes and says
// whether it falls in the measured window.
func (run *sfuRun) stamp(payload []byte) bool {
	now := time.Since(run.base)
	binary.BigEndian.PutUint64(payload[len(payload)-8:], uint64(now))
	t0 := time.Duration(run.t0.Load())
	return t0 != 0 && now >= t0 && now < time.Duration(run.t1.Load())
}

func (p *sfuPublisher) sendAudio() {
	run := p.c.run
	defer run.wg.Done()
	id := 0
	for _, e := range p.aSender.GetParameters().HeaderExtensions {
		if e.URI == sdp.AudioLevelURI {
			id = e.ID
		}
	}
	payload := make([]byte, sfuAudioPayload)
	payload[0] = 0x78 // an Opus TOC byte: 20 ms frame
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(rand.Uint32()), Timestamp: rand.Uint32()}, Payload: payload}
	level := []byte{0}
	tick := time.NewTicker(sfuAudioEvery)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-p.done:
			return
		case <-tick.C:
		}
		if id != 0 {
			// Voice on, a level that moves like speech (0 is loudest).
			level[0] = 0x80 | byte(20+i%40)
			_ = pkt.Header.SetExtension(uint8(id), level)
		}
		if run.stamp(payload) {
			p.sentA++
		}
		// A write error is a closing connection: the stop follows.
		_ = p.audio.WriteRTP(&pkt)
		pkt.SequenceNumber++
		pkt.Timestamp += 960
	}
}

func (p *sfuPublisher) sendVideo() {
	run := p.c.run
	defer run.wg.Done()
	frameBytes := sfuVideoBitrate / 8 / sfuVideoFPS
	buf := make([]byte, sfuMaxPayload)
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(rand.Uint32()), Timestamp: rand.Uint32()}}
	pictureID := uint16(rand.UintN(1 << 15))
	tick := time.NewTicker(time.Second / sfuVideoFPS)
	defer tick.Stop()
	for frame := 0; ; frame++ {
		select {
		case <-p.done:
			return
		case <-tick.C:
		}
		key := frame == 0 || p.keyframe.Swap(false)
		size := frameBytes
		if key {
			size *= 4
			p.keyframes++
		}
		for first := true; size > 0; first = false {
			// The VP8 payload descriptor (RFC 7741): X and S on the first
			// packet of a frame, a 15-bit picture ID; then, at the start of
			// the frame, the frame tag (P=0 on a keyframe) and, on a
			// keyframe, the start code and a 640×480 size.
			const descLen = 4
			n := min(size, sfuMaxPayload-descLen)
			size -= n
			payload := buf[:descLen+max(n, 8)]
			clear(payload)
			payload[0] = 0x80
			if first {
				payload[0] |= 0x10
				tag := byte(0x10) // show_frame
				if !key {
					tag |= 0x01
				}
				payload[4] = tag
				if key {
					copy(payload[7:], []byte{0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01})
				}
			}
			payload[1] = 0x80
			binary.BigEndian.PutUint16(payload[2:], 0x8000|pictureID)
			pkt.Payload = payload
			pkt.Marker = size == 0
			if run.stamp(payload) {
				p.sentV++
			}
			_ = p.video.WriteRTP(&pkt)
			pkt.SequenceNumber++
		}
		pkt.Timestamp += 90000 / sfuVideoFPS
		pictureID = (pictureID + 1) & 0x7fff
	}
}
