package sfu

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Keyframe requests reach a source at most once per keyframeInterval; a
// request inside the interval is merged into one sent at the first
// router tick after its end. Both go by Config.Now.
const keyframeInterval = 500 * time.Millisecond

// freezeAfter: a forwarded video track silent this long while its
// publisher is joined counts as one freeze.
const freezeAfter = 500 * time.Millisecond

// source is where a forwarded track currently comes from: one remote
// track of one up peer connection. A publisher that reconnects gives its
// forwarded tracks a new source.
type source struct {
	pc      *webrtc.PeerConnection
	ssrc    uint32
	levelID uint8 // negotiated ID of the audio-level extension, 0 = none
}

// fwdTrack is one published track as every subscriber sees it: a
// TrackLocal bound to each subscriber's down peer connection. Its
// sequence numbers and timestamps are rewritten once per packet (not per
// subscriber) so that they stay continuous across source changes.
type fwdTrack struct {
	r     *Router
	pub   string // publisher member ID (stream ID)
	id    string // "audio", "video" or "screen"
	kind  webrtc.RTPCodecType
	codec webrtc.RTPCodecParameters

	src      atomic.Pointer[source]
	bindings atomic.Pointer[[]*binding] // copy on write under bmu
	bmu      sync.Mutex

	// Forwarding state, under mu (one packet at a time).
	mu       sync.Mutex
	curSrc   *source // the source the offsets belong to
	started  bool
	lastSeq  uint16
	lastTs   uint32
	lastAt   time.Time
	seqOff   uint16
	tsOff    uint32
	scratch  rtp.Header // outgoing header, reused
	loudFrom time.Time  // audio: start of the current loud run
	lastLoud time.Time
	speaking bool

	lastPacket atomic.Int64 // unix ns of the last forwarded packet
	frozen     atomic.Bool

	// Keyframe request limiter, under kmu.
	kmu     sync.Mutex
	kfSrc   *source
	lastKF  time.Time
	pending bool
}

func newFwdTrack(r *Router, pub, id string, kind webrtc.RTPCodecType) *fwdTrack {
	t := &fwdTrack{r: r, pub: pub, id: id, kind: kind, codec: r.codecFor(kind)}
	t.bindings.Store(&[]*binding{})
	return t
}

// ID, RID, StreamID, Kind and Unbind, with subTrack's Bind, make a
// webrtc.TrackLocal.
func (t *fwdTrack) ID() string                { return t.id }
func (t *fwdTrack) RID() string               { return "" }
func (t *fwdTrack) StreamID() string          { return t.pub }
func (t *fwdTrack) Kind() webrtc.RTPCodecType { return t.kind }

// binding is the track on one subscriber's down connection.
type binding struct {
	id   string // TrackLocalContext ID
	ssrc uint32
	pt   uint8
	ws   webrtc.TrackLocalWriter
	sink *sink
}

// subTrack is a fwdTrack as added to one subscriber's down connection:
// it tells Bind which sink the binding writes to. fwdTrack has no Bind
// of its own: one without the subscriber's sink would write inline.
type subTrack struct {
	*fwdTrack
	sink *sink
}

func (s subTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	return s.bind(ctx, s.sink)
}

func (t *fwdTrack) bind(ctx webrtc.TrackLocalContext, sk *sink) (webrtc.RTPCodecParameters, error) {
	var codec webrtc.RTPCodecParameters
	found := false
	for _, c := range ctx.CodecParameters() {
		if strings.EqualFold(c.MimeType, t.codec.MimeType) {
			codec, found = c, true
			break
		}
	}
	if !found {
		return codec, webrtc.ErrUnsupportedCodec
	}
	b := &binding{id: ctx.ID(), ssrc: uint32(ctx.SSRC()), pt: uint8(codec.PayloadType), ws: ctx.WriteStream(), sink: sk}
	t.bmu.Lock()
	old := *t.bindings.Load()
	nb := make([]*binding, 0, len(old)+1)
	nb = append(append(nb, old...), b)
	t.bindings.Store(&nb)
	t.bmu.Unlock()
	t.requestKeyframe() // the new subscriber needs one to start decoding
	return codec, nil
}

func (t *fwdTrack) Unbind(ctx webrtc.TrackLocalContext) error {
	t.bmu.Lock()
	defer t.bmu.Unlock()
	old := *t.bindings.Load()
	nb := make([]*binding, 0, len(old))
	for _, b := range old {
		if b.id != ctx.ID() {
			nb = append(nb, b)
		}
	}
	t.bindings.Store(&nb)
	return nil
}

// setSource makes src the track's source; the next packet from it
// re-bases the sequence numbers and timestamps.
func (t *fwdTrack) setSource(src *source) {
	t.src.Store(src)
	t.requestKeyframe()
}

// clearSource forgets src if it is still the source (its connection is
// gone).
func (t *fwdTrack) clearSource(src *source) {
	t.src.CompareAndSwap(src, nil)
}

// forward rewrites one packet from src and writes it to every
// subscriber. It is called by src's reader only; hdr and payload are
// reused by the caller after it returns.
func (t *fwdTrack) forward(src *source, hdr *rtp.Header, payload []byte, now time.Time) {
	if t.src.Load() != src {
		return // a reader of a replaced connection
	}
	var speakingChanged bool
	t.mu.Lock()
	if src != t.curSrc {
		if t.kind == webrtc.RTPCodecTypeVideo && !isVP8Keyframe(payload) {
			// Starting or switching mid-frame would show garbage until
			// the next keyframe: wait for one.
			t.mu.Unlock()
			t.requestKeyframe()
			return
		}
		if t.started {
			step := uint32(now.Sub(t.lastAt).Seconds() * float64(t.codec.ClockRate))
			if step == 0 {
				step = 1
			}
			t.seqOff = t.lastSeq + 1 - hdr.SequenceNumber
			t.tsOff = t.lastTs + step - hdr.Timestamp
		}
		t.curSrc = src
	}
	seq := hdr.SequenceNumber + t.seqOff
	ts := hdr.Timestamp + t.tsOff
	if !t.started || int16(seq-t.lastSeq) > 0 {
		t.lastSeq, t.lastTs, t.lastAt = seq, ts, now
	}
	t.started = true
	if src.levelID != 0 {
		speakingChanged = t.audioLevel(hdr.GetExtension(src.levelID), now)
	}
	h := &t.scratch
	bs := *t.bindings.Load()
	size := uint64(12 + len(payload)) // the header without extensions
	var sent uint64
	for _, b := range bs {
		*h = rtp.Header{
			Version:        2,
			Padding:        hdr.Padding,
			PaddingSize:    hdr.PaddingSize,
			Marker:         hdr.Marker,
			PayloadType:    b.pt,
			SequenceNumber: seq,
			Timestamp:      ts,
			SSRC:           b.ssrc,
		}
		if b.sink.write(b, h, payload) {
			sent++
		}
	}
	t.mu.Unlock()
	t.lastPacket.Store(now.UnixNano())
	if t.frozen.Load() { // a store per packet only when it thawed
		t.frozen.Store(false)
	}
	st := &t.r.stats
	st.packetsOut.Add(sent)
	st.bytesOut.Add(sent * size)
	if speakingChanged {
		t.r.speakingEvent(t.pub, true)
	}
}

// Speaking thresholds (RFC 6464 levels are −dBov, 0 loudest, 127 silent).
const (
	loudLevel    = 40                     // louder than −40 dBov
	speakAfter   = 300 * time.Millisecond // of loud audio
	loudGap      = 150 * time.Millisecond // a gap this long ends a loud run
	silenceAfter = 800 * time.Millisecond // without loud audio
)

// audioLevel updates the speaking state from one packet's extension;
// under t.mu. It reports a change to speaking (silence is found by tick).
func (t *fwdTrack) audioLevel(ext []byte, now time.Time) bool {
	if len(ext) < 1 || ext[0]&0x7f >= loudLevel {
		return false
	}
	if t.loudFrom.IsZero() || now.Sub(t.lastLoud) > loudGap {
		t.loudFrom = now
	}
	t.lastLoud = now
	if !t.speaking && now.Sub(t.loudFrom) >= speakAfter {
		t.speaking = true
		return true
	}
	return false
}

// tick runs every router tick: silence and freeze detection, trailing
// keyframe requests.
func (t *fwdTrack) tick(now time.Time) {
	if t.kind == webrtc.RTPCodecTypeAudio {
		t.mu.Lock()
		stop := t.speaking && now.Sub(t.lastLoud) > silenceAfter
		if stop {
			t.speaking = false
		}
		t.mu.Unlock()
		if stop {
			t.r.speakingEvent(t.pub, false)
		}
		return
	}
	t.trailingKeyframe(now)
	last := t.lastPacket.Load()
	if last == 0 || t.frozen.Load() {
		return
	}
	if now.Sub(time.Unix(0, last)) > freezeAfter {
		t.frozen.Store(true)
		t.r.stats.freezes.Add(1)
	}
}

// requestKeyframe asks the source for a keyframe, at most once per
// keyframeInterval; requests inside the interval are merged into one that
// tick sends after its end. A new source has a fresh interval.
func (t *fwdTrack) requestKeyframe() {
	if t.kind != webrtc.RTPCodecTypeVideo {
		return
	}
	src := t.src.Load()
	if src == nil {
		return
	}
	now := t.r.now()
	t.kmu.Lock()
	if src != t.kfSrc {
		t.kfSrc, t.lastKF, t.pending = src, time.Time{}, false
	}
	if !t.lastKF.IsZero() && now.Sub(t.lastKF) < keyframeInterval {
		// Not a timer: it would run on the wall clock, not Config.Now.
		t.pending = true
		t.kmu.Unlock()
		return
	}
	t.lastKF = now
	t.kmu.Unlock()
	t.sendPLI(src)
}

// trailingKeyframe sends the merged request once the interval is over.
func (t *fwdTrack) trailingKeyframe(now time.Time) {
	src := t.src.Load()
	t.kmu.Lock()
	if !t.pending {
		t.kmu.Unlock()
		return
	}
	if src == nil || src != t.kfSrc {
		t.pending = false // the new source had its own request
		t.kmu.Unlock()
		return
	}
	if now.Sub(t.lastKF) < keyframeInterval {
		t.kmu.Unlock()
		return
	}
	t.pending = false
	t.lastKF = now
	t.kmu.Unlock()
	t.sendPLI(src)
}

func (t *fwdTrack) sendPLI(src *source) {
	if err := src.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: src.ssrc}}); err == nil {
		t.r.stats.plisSent.Add(1)
	}
}

// isVP8Keyframe: the packet starts a VP8 keyframe (RFC 7741: S bit and
// partition 0 in the payload descriptor, P bit clear in the payload
// header).
func isVP8Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	d := p[0]
	if d&0x10 == 0 || d&0x07 != 0 { // S, PID
		return false
	}
	i := 1
	if d&0x80 != 0 { // X
		if len(p) < 2 {
			return false
		}
		x := p[1]
		i = 2
		if x&0x80 != 0 { // I
			if len(p) <= i {
				return false
			}
			if p[i]&0x80 != 0 { // M: 15-bit picture ID
				i++
			}
			i++
		}
		if x&0x40 != 0 { // L
			i++
		}
		if x&0x30 != 0 { // T or K
			i++
		}
	}
	return len(p) > i && p[i]&0x01 == 0
}

// sink is one subscriber's way out. Writes are direct (the forwarding
// goroutine encrypts and sends) while the down connection runs over UDP,
// where a write never waits for the peer. Over TCP a peer that stops
// reading would block the writer, and with it every other subscriber of
// the track: packets then go through a bounded queue to a goroutine of
// the subscriber's own, and are dropped (and counted) when it is full.
type sink struct {
	r      *Router
	queued atomic.Bool
	q      chan *qpkt
}

// sinkQueue: about a second of 1 Mbit/s video.
const sinkQueue = 128

type qpkt struct {
	ws  webrtc.TrackLocalWriter
	hdr rtp.Header
	n   int
	buf [1500]byte
}

var qpool = sync.Pool{New: func() any { return new(qpkt) }}

// newSink starts queued: the transport is not known yet.
func newSink(r *Router) *sink {
	s := &sink{r: r, q: make(chan *qpkt, sinkQueue)}
	s.queued.Store(true)
	return s
}

// write sends or queues one packet; it reports whether the packet left
// (or was queued).
func (s *sink) write(b *binding, h *rtp.Header, payload []byte) bool {
	if !s.queued.Load() {
		_, err := b.ws.WriteRTP(h, payload)
		return err == nil
	}
	if len(payload) > len(qpkt{}.buf) {
		s.r.stats.droppedStuck.Add(1)
		return false
	}
	p := qpool.Get().(*qpkt)
	p.ws, p.hdr, p.n = b.ws, *h, copy(p.buf[:], payload)
	select {
	case s.q <- p:
		return true
	default:
		p.ws = nil
		qpool.Put(p)
		s.r.stats.droppedStuck.Add(1)
		return false
	}
}

// run writes queued packets until done is closed.
func (s *sink) run(done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case p := <-s.q:
			_, _ = p.ws.WriteRTP(&p.hdr, p.buf[:p.n])
			p.ws = nil
			qpool.Put(p)
		}
	}
}
