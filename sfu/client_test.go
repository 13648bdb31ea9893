package sfu

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// newTestSFU is a loopback SFU closed at the end of the test.
func newTestSFU(t testing.TB, cfg Config) *SFU {
	t.Helper()
	cfg.Loopback = true
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// clientAPI: what a browser offers (Opus, VP8, audio level, default
// interceptors), over loopback UDP.
func clientAPI(t testing.TB, tcp bool) *webrtc.API {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI},
		webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, reg); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if tcp {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	} else {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
}

// client is a member in-process: an up connection publishing synthetic
// Opus (with an audio level) and VP8 (keyframe on PLI), a down connection
// counting what it receives per stream/track.
type client struct {
	t    testing.TB
	id   string
	api  *webrtc.API
	m    *Member
	sig  chan Signal
	done chan struct{}
	wg   sync.WaitGroup

	// rewrite, if set, edits server candidates before they are applied.
	rewrite func(c webrtc.ICECandidateInit) webrtc.ICECandidateInit

	mu       sync.Mutex
	up, down *webrtc.PeerConnection
	upCands  []webrtc.ICECandidateInit
	dnCands  []webrtc.ICECandidateInit
	got      map[string]int      // "stream/track" → packets
	ssrcs    map[string][]uint32 // distinct SSRCs seen per key
	lastSeq  map[string]uint16
	maxJump  map[string]int
	remote   map[string]uint32 // key → SSRC, for PLIs
	audio    *webrtc.TrackLocalStaticRTP
	video    *webrtc.TrackLocalStaticRTP
	levelID  uint8
	pubStop  chan struct{}
	plis     atomic.Int32 // keyframe requests on the up video
	keyframe atomic.Bool
	level    atomic.Uint32 // audio level sent, −dBov
	videoPPS int
	videoLen int
	sentV    atomic.Int64
}

func newClient(t testing.TB, r *Router, id string, opt JoinOptions) *client {
	t.Helper()
	return newClientAPI(t, r, id, opt, clientAPI(t, false), nil)
}

func newClientAPI(t testing.TB, r *Router, id string, opt JoinOptions, api *webrtc.API,
	rewrite func(webrtc.ICECandidateInit) webrtc.ICECandidateInit) *client {
	t.Helper()
	c := &client{t: t, id: id, api: api, sig: make(chan Signal, 1024), done: make(chan struct{}),
		rewrite: rewrite,
		got:     map[string]int{}, ssrcs: map[string][]uint32{}, lastSeq: map[string]uint16{},
		maxJump: map[string]int{}, remote: map[string]uint32{}, videoPPS: 15, videoLen: 300}
	c.level.Store(127)
	down, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	c.down = down
	down.OnICECandidate(func(ci *webrtc.ICECandidate) {
		if ci != nil {
			j := ci.ToJSON()
			c.signal(Signal{PC: PCDown, Kind: "candidate", Candidate: &j})
		}
	})
	down.OnTrack(c.onTrack)
	m, err := r.Join(id, func(s Signal) {
		select {
		case c.sig <- s:
		default:
			t.Errorf("%s: signal queue full", id)
		}
	}, opt)
	if err != nil {
		t.Fatal(err)
	}
	c.m = m
	c.wg.Add(1)
	go c.loop()
	t.Cleanup(c.close)
	return c
}

func (c *client) signal(s Signal) {
	if err := c.m.Signal(s); err != nil && !strings.Contains(err.Error(), "closed") {
		c.t.Logf("%s: signal %s %s: %v", c.id, s.PC, s.Kind, err)
	}
}

func (c *client) close() {
	select {
	case <-c.done:
		return
	default:
	}
	close(c.done)
	c.mu.Lock()
	if c.pubStop != nil {
		close(c.pubStop)
		c.pubStop = nil
	}
	up, down := c.up, c.down
	c.mu.Unlock()
	if up != nil {
		_ = up.Close()
	}
	_ = down.Close()
	c.wg.Wait()
}

// loop applies the server's signals.
func (c *client) loop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.done:
			return
		case s := <-c.sig:
			c.apply(s)
		}
	}
}

func (c *client) apply(s Signal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case s.PC == PCUp && s.Kind == "answer":
		if c.up == nil {
			return
		}
		if err := c.up.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: s.SDP}); err != nil {
			c.t.Errorf("%s: up answer: %v", c.id, err)
			return
		}
		for _, ci := range c.upCands {
			_ = c.up.AddICECandidate(ci)
		}
		c.upCands = nil
	case s.PC == PCDown && s.Kind == "offer":
		if err := c.down.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: s.SDP}); err != nil {
			c.t.Errorf("%s: down offer: %v", c.id, err)
			return
		}
		ans, err := c.down.CreateAnswer(nil)
		if err == nil {
			err = c.down.SetLocalDescription(ans)
		}
		if err != nil {
			c.t.Errorf("%s: down answer: %v", c.id, err)
			return
		}
		for _, ci := range c.dnCands {
			_ = c.down.AddICECandidate(ci)
		}
		c.dnCands = nil
		go c.signal(Signal{PC: PCDown, Kind: "answer", SDP: ans.SDP})
	case s.Kind == "candidate" && s.Candidate != nil:
		ci := *s.Candidate
		if c.rewrite != nil {
			ci = c.rewrite(ci)
		}
		pc, held := c.down, &c.dnCands
		if s.PC == PCUp {
			pc, held = c.up, &c.upCands
		}
		if pc == nil || pc.RemoteDescription() == nil {
			*held = append(*held, ci)
			return
		}
		_ = pc.AddICECandidate(ci)
	}
}

func (c *client) onTrack(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	key := tr.StreamID() + "/" + tr.ID()
	c.mu.Lock()
	c.remote[key] = uint32(tr.SSRC())
	c.mu.Unlock()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		buf := make([]byte, 1500)
		var h rtp.Header
		for {
			n, _, err := tr.Read(buf)
			if err != nil {
				return
			}
			if _, err := h.Unmarshal(buf[:n]); err != nil {
				continue
			}
			c.mu.Lock()
			if ss := c.ssrcs[key]; len(ss) == 0 || ss[len(ss)-1] != h.SSRC {
				c.ssrcs[key] = append(ss, h.SSRC)
			}
			if c.got[key] > 0 {
				j := int(int16(h.SequenceNumber - c.lastSeq[key]))
				if j < 0 {
					j = -j
				}
				if j > c.maxJump[key] {
					c.maxJump[key] = j
				}
			}
			c.lastSeq[key] = h.SequenceNumber
			c.got[key]++
			c.mu.Unlock()
		}
	}()
}

func (c *client) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got[key]
}

// publish opens a (new) up connection with audio and camera tracks and
// starts sending; a previous up connection is closed (a reconnect).
func (c *client) publish() {
	c.t.Helper()
	up, err := c.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		c.t.Fatal(err)
	}
	audio, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", c.id)
	video, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", c.id)
	as, err := up.AddTrack(audio)
	if err != nil {
		c.t.Fatal(err)
	}
	vs, err := up.AddTrack(video)
	if err != nil {
		c.t.Fatal(err)
	}
	up.OnICECandidate(func(ci *webrtc.ICECandidate) {
		if ci != nil {
			j := ci.ToJSON()
			c.signal(Signal{PC: PCUp, Kind: "candidate", Candidate: &j})
		}
	})
	offer, err := up.CreateOffer(nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := up.SetLocalDescription(offer); err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	old := c.up
	if c.pubStop != nil {
		close(c.pubStop)
	}
	stop := make(chan struct{})
	c.up, c.audio, c.video, c.upCands, c.pubStop = up, audio, video, nil, stop
	c.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	if err := c.m.Signal(Signal{PC: PCUp, Kind: "offer", SDP: offer.SDP}); err != nil {
		c.t.Fatalf("%s: up offer: %v", c.id, err)
	}
	for _, e := range as.GetParameters().HeaderExtensions {
		if e.URI == sdp.AudioLevelURI {
			c.levelID = uint8(e.ID)
		}
	}
	c.wg.Add(3)
	go func() { // keyframe requests
		defer c.wg.Done()
		buf := make([]byte, 1500)
		for {
			n, _, err := vs.Read(buf)
			if err != nil {
				return
			}
			pkts, _ := rtcp.Unmarshal(buf[:n])
			for _, p := range pkts {
				switch p.(type) {
				case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
					c.plis.Add(1)
					c.keyframe.Store(true)
				}
			}
		}
	}()
	go c.sendAudio(audio, stop)
	go c.sendVideo(video, stop, c.videoPPS, c.videoLen)
}

func (c *client) sendAudio(tr *webrtc.TrackLocalStaticRTP, stop chan struct{}) {
	defer c.wg.Done()
	tk := time.NewTicker(20 * time.Millisecond)
	defer tk.Stop()
	p := &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1}, Payload: make([]byte, 60)}
	for {
		select {
		case <-stop:
			return
		case <-c.done:
			return
		case <-tk.C:
		}
		p.SequenceNumber++
		p.Timestamp += 960
		p.Extension, p.Extensions = false, nil
		if c.levelID != 0 {
			_ = p.SetExtension(c.levelID, []byte{byte(c.level.Load())})
		}
		_ = tr.WriteRTP(p)
	}
}

// sendVideo sends one-packet VP8 frames; a keyframe first and on PLI.
func (c *client) sendVideo(tr *webrtc.TrackLocalStaticRTP, stop chan struct{}, pps, size int) {
	defer c.wg.Done()
	interval := time.Second / time.Duration(pps)
	tk := time.NewTicker(interval)
	defer tk.Stop()
	p := &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 2, Marker: true}, Payload: make([]byte, size)}
	// VP8 payload descriptor: S=1, PID 0; payload header: P bit.
	p.Payload[0] = 0x10
	first := true
	for {
		select {
		case <-stop:
			return
		case <-c.done:
			return
		case <-tk.C:
		}
		p.SequenceNumber++
		p.Timestamp += uint32(90000 / pps)
		if first || c.keyframe.Swap(false) {
			p.Payload[1] = 0x00 // keyframe
			first = false
		} else {
			p.Payload[1] = 0x01 // interframe
		}
		if tr.WriteRTP(p) == nil {
			c.sentV.Add(1)
		}
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timeout (%v): %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func errorsIs(err, target error) bool { return err != nil && errors.Is(err, target) }

// upOfferSDP is a pion client's offer with the given sections.
func upOfferSDP(t testing.TB, audio, video int) string {
	t.Helper()
	pc, err := clientAPI(t, false).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for range audio {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio); err != nil {
			t.Fatal(err)
		}
	}
	for range video {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo); err != nil {
			t.Fatal(err)
		}
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return o.SDP
}
