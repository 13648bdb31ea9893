package sfu

import (
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// RoomStats are one room's counters. Counters are cumulative since the
// room was created (the caller computes rates); they do not depend on
// whether the room is a mesh or forwarded.
type RoomStats struct {
	Room        string
	Members     int // joined members
	Publishers  int // members with at least one forwarded track
	Subscribers int // members whose down connection carries at least one track
	Tracks      int // forwarded tracks

	PacketsIn  uint64 // RTP packets received from publishers (before the rate cap)
	BitsIn     uint64 // their size, RTP header and payload, in bits
	PacketsOut uint64 // RTP packets written to subscribers (one per subscriber)
	BitsOut    uint64 // their size in bits

	NACKsReceived uint64 // RTCP NACK packets from subscribers (answered by the NACK responder)
	NACKsSent     uint64 // RTCP NACK packets sent to publishers (NACK generator)
	PLIsSent      uint64 // keyframe requests (PLI) sent to publishers
	Freezes       uint64 // a forwarded video track silent > 500 ms while its publisher is joined

	DroppedRateCap uint64 // RTP packets dropped by the per-publisher bitrate cap
	DroppedStuck   uint64 // RTP packets dropped for subscribers that do not keep up
}

type counters struct {
	packetsIn, bytesIn, packetsOut, bytesOut atomic.Uint64
	nacksIn, nacksOut, plisSent, freezes     atomic.Uint64
	droppedRateCap, droppedStuck             atomic.Uint64
}

// tickEvery: silence and freeze detection resolution.
const tickEvery = 100 * time.Millisecond

// Router forwards one room's tracks.
type Router struct {
	s    *SFU
	name string
	log  *slog.Logger
	now  func() time.Time
	api  *webrtc.API

	mu      sync.Mutex
	members map[string]*Member
	tracks  map[string]*fwdTrack // publisher/trackID
	closed  bool

	onSpeaking atomic.Pointer[func(string, bool)]
	events     chan speakEvent
	done       chan struct{}
	wg         sync.WaitGroup
	stats      counters
}

type speakEvent struct {
	member   string
	speaking bool
}

// Payload types the server offers on down connections.
const (
	ptOpus = 111
	ptVP8  = 96
)

func newRouter(s *SFU, name string) *Router {
	r := &Router{
		s: s, name: name, log: s.log.With("room", name), now: s.now,
		members: map[string]*Member{}, tracks: map[string]*fwdTrack{},
		events: make(chan speakEvent, 64), done: make(chan struct{}),
	}
	api, err := r.newAPI()
	if err != nil {
		// Registering constant codecs cannot fail; a failure is a bug.
		panic("sfu: media engine: " + err.Error())
	}
	r.api = api
	r.wg.Add(1)
	go r.loop()
	return r
}

func (r *Router) codecFor(kind webrtc.RTPCodecType) webrtc.RTPCodecParameters {
	if kind == webrtc.RTPCodecTypeAudio {
		return webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
				SDPFmtpLine: "minptime=10;useinbandfec=1"},
			PayloadType: ptOpus,
		}
	}
	return webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000,
			RTCPFeedback: []webrtc.RTCPFeedback{{Type: "ccm", Parameter: "fir"}}},
		PayloadType: ptVP8,
	}
}

// newAPI: Opus and VP8 only, the audio-level extension, NACK generator
// (up) and responder (down), sender and receiver reports, TWCC feedback
// to publishers, and the room's RTCP counter. One API per room so that
// the counter knows its room.
func (r *Router) newAPI() (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if err := me.RegisterCodec(r.codecFor(k), k); err != nil {
			return nil, err
		}
	}
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI},
		webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	reg := &interceptor.Registry{}
	reg.Add(counterFactory{r}) // first: it sees the NACKs the generator writes
	if err := webrtc.ConfigureNack(me, reg); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureRTCPReports(reg); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureTWCCSender(me, reg); err != nil {
		return nil, err
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(reg),
		webrtc.WithSettingEngine(r.s.set)), nil
}

// OnSpeaking sets the function told when a member starts or stops
// speaking, from the RFC 6464 audio level of its packets: speaking after
// ~300 ms louder than −40 dBov, silent after ~800 ms without. fn runs on
// the router's goroutine, one call at a time; it must not block long.
func (r *Router) OnSpeaking(fn func(memberID string, speaking bool)) {
	r.onSpeaking.Store(&fn)
}

func (r *Router) speakingEvent(member string, speaking bool) {
	select {
	case r.events <- speakEvent{member, speaking}:
	default:
		r.log.Warn("sfu: speaking event dropped", "member", member)
	}
}

func (r *Router) loop() {
	defer r.wg.Done()
	tk := time.NewTicker(tickEvery)
	defer tk.Stop()
	var ts []*fwdTrack
	for {
		select {
		case <-r.done:
			return
		case e := <-r.events:
			if fn := r.onSpeaking.Load(); fn != nil && *fn != nil {
				(*fn)(e.member, e.speaking)
			}
		case <-tk.C:
			r.mu.Lock()
			ts = ts[:0]
			for _, t := range r.tracks {
				ts = append(ts, t)
			}
			r.mu.Unlock()
			now := r.now()
			for _, t := range ts {
				if t.src.Load() != nil || t.kind == webrtc.RTPCodecTypeAudio {
					t.tick(now)
				}
			}
		}
	}
}

// Join adds a member and makes its down connection; the server offers on
// it as soon as there are tracks to send. send is called from the SFU's
// goroutines and must not block.
func (r *Router) Join(memberID string, send func(Signal), opt JoinOptions) (*Member, error) {
	if send == nil {
		return nil, ErrBadSignal
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	if _, ok := r.members[memberID]; ok {
		return nil, ErrMemberExists
	}
	m, err := newMember(r, memberID, send, opt)
	if err != nil {
		return nil, err
	}
	r.members[memberID] = m
	m.dmu.Lock()
	for _, t := range r.tracks {
		if t.pub != memberID {
			m.addDownLocked(t)
		}
	}
	m.negotiateLocked()
	m.dmu.Unlock()
	r.log.Info("sfu: joined", "member", memberID, "publish", opt.Publish)
	return m, nil
}

// Leave closes the member's connections and removes its tracks from
// every other member's down connection (renegotiated).
func (r *Router) Leave(memberID string) {
	r.mu.Lock()
	m, ok := r.members[memberID]
	if !ok {
		r.mu.Unlock()
		return
	}
	delete(r.members, memberID)
	for key, t := range r.tracks {
		if t.pub == memberID {
			r.removeTrackLocked(key, t)
		}
	}
	r.mu.Unlock()
	m.close()
	r.log.Info("sfu: left", "member", memberID)
}

// removeTrackLocked drops a track from the room; under r.mu.
func (r *Router) removeTrackLocked(key string, t *fwdTrack) {
	delete(r.tracks, key)
	t.src.Store(nil)
	for _, o := range r.members {
		o.dmu.Lock()
		if o.removeDownLocked(t) {
			o.negotiateLocked()
		}
		o.dmu.Unlock()
	}
}

// publish makes src the source of the member's track id, creating the
// forwarded track (and offering it to the others) on first use.
func (r *Router) publish(m *Member, id string, kind webrtc.RTPCodecType, src *source) *fwdTrack {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.members[m.id] != m {
		return nil
	}
	key := m.id + "/" + id
	t := r.tracks[key]
	if t == nil { // the track ID says the kind: a key never changes kind
		t = newFwdTrack(r, m.id, id, kind)
		r.tracks[key] = t
		for _, o := range r.members {
			if o == m {
				continue
			}
			o.dmu.Lock()
			o.addDownLocked(t)
			o.negotiateLocked()
			o.dmu.Unlock()
		}
	}
	t.setSource(src)
	return t
}

// unpublish removes the member's tracks whose id is in ids.
func (r *Router) unpublish(m *Member, ids []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		key := m.id + "/" + id
		if t := r.tracks[key]; t != nil {
			r.removeTrackLocked(key, t)
		}
	}
}

// Members lists the joined members, sorted.
func (r *Router) Members() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.members))
}

// Close makes every member leave and stops the router.
func (r *Router) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	ms := slices.Collect(maps.Values(r.members))
	r.members = map[string]*Member{}
	for key, t := range r.tracks {
		delete(r.tracks, key)
		t.src.Store(nil)
	}
	r.mu.Unlock()
	for _, m := range ms {
		m.close()
	}
	close(r.done)
	r.wg.Wait()
	r.s.removeRoom(r)
}

// Stats returns the room's counters.
func (r *Router) Stats() RoomStats {
	st := RoomStats{Room: r.name}
	r.mu.Lock()
	st.Members = len(r.members)
	st.Tracks = len(r.tracks)
	pubs := map[string]bool{}
	for _, t := range r.tracks {
		pubs[t.pub] = true
	}
	st.Publishers = len(pubs)
	for _, m := range r.members {
		m.dmu.Lock()
		if len(m.senders) > 0 {
			st.Subscribers++
		}
		m.dmu.Unlock()
	}
	r.mu.Unlock()
	c := &r.stats
	st.PacketsIn, st.BitsIn = c.packetsIn.Load(), 8*c.bytesIn.Load()
	st.PacketsOut, st.BitsOut = c.packetsOut.Load(), 8*c.bytesOut.Load()
	st.NACKsReceived, st.NACKsSent = c.nacksIn.Load(), c.nacksOut.Load()
	st.PLIsSent, st.Freezes = c.plisSent.Load(), c.freezes.Load()
	st.DroppedRateCap, st.DroppedStuck = c.droppedRateCap.Load(), c.droppedStuck.Load()
	return st
}

// counterFactory builds the interceptor that counts the room's NACKs:
// read ones come from subscribers (the server sends media only on down
// connections), written ones go to publishers.
type counterFactory struct{ r *Router }

func (f counterFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &counter{r: f.r}, nil
}

type counter struct {
	interceptor.NoOp
	r *Router
}

func countNACKs(pkts []rtcp.Packet) uint64 {
	var n uint64
	for _, p := range pkts {
		if _, ok := p.(*rtcp.TransportLayerNack); ok {
			n++
		}
	}
	return n
}

func (c *counter) BindRTCPReader(reader interceptor.RTCPReader) interceptor.RTCPReader {
	return interceptor.RTCPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := reader.Read(b, a)
		if err != nil {
			return n, a, err
		}
		if a == nil {
			a = interceptor.Attributes{}
		}
		if pkts, perr := a.GetRTCPPackets(b[:n]); perr == nil {
			if k := countNACKs(pkts); k > 0 {
				c.r.stats.nacksIn.Add(k)
			}
		}
		return n, a, err
	})
}

func (c *counter) BindRTCPWriter(writer interceptor.RTCPWriter) interceptor.RTCPWriter {
	return interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, a interceptor.Attributes) (int, error) {
		if k := countNACKs(pkts); k > 0 {
			c.r.stats.nacksOut.Add(k)
		}
		return writer.Write(pkts, a)
	})
}
