package main

import (
	"errors"
	"fmt"
	"sync"

	"github.com/pion/webrtc/v4"

	"crisisroom/sfu"
)

// floorSFU is the floor the sfu package is measured against: pion's
// broadcast example grown to several publishers. Each published track is
// one TrackLocalStaticRTP, added to every other member's down connection
// and written to all of them; pion's default interceptors (NACK, reports,
// TWCC feedback) and nothing of its own: PLIs and NACKs from receivers are
// read and dropped, so publishers never hear of them, and a receiver's
// NACK is answered by the interceptor from its own copy. It speaks the
// same two-connection signalling as the sfu package, so the clients are
// the same code in both runs.
type floorSFU struct {
	api *webrtc.API

	mu      sync.Mutex
	members []*floorMember
	tracks  []*floorTrack
	wg      sync.WaitGroup // forwarding loops and RTCP readers
}

type floorTrack struct {
	owner string
	local *webrtc.TrackLocalStaticRTP
}

type floorMember struct {
	f    *floorSFU
	id   string
	send func(sfu.Signal)

	mu       sync.Mutex
	up, down *webrtc.PeerConnection
	has      map[*floorTrack]bool
	offering bool // an offer is out, its answer not yet in
	again    bool // tracks came while offering: offer again after
}

func newFloorSFU() (*floorSFU, error) {
	api, err := newBenchAPI(nil)
	if err != nil {
		return nil, err
	}
	return &floorSFU{api: api}, nil
}

func (f *floorSFU) join(id string, _ bool, send func(sfu.Signal)) (func(sfu.Signal) error, error) {
	m := &floorMember{f: f, id: id, send: send, has: map[*floorTrack]bool{}}
	f.mu.Lock()
	f.members = append(f.members, m)
	n := len(f.tracks)
	f.mu.Unlock()
	if n > 0 {
		if err := m.renegotiate(); err != nil {
			return nil, err
		}
	}
	return m.signal, nil
}

func (f *floorSFU) close() error {
	f.mu.Lock()
	ms := f.members
	f.mu.Unlock()
	var pcs []*webrtc.PeerConnection
	for _, m := range ms {
		m.mu.Lock()
		for _, pc := range []*webrtc.PeerConnection{m.up, m.down} {
			if pc != nil {
				pcs = append(pcs, pc)
			}
		}
		m.mu.Unlock()
	}
	err := closeAll(pcs)
	f.wg.Wait()
	return err
}

// signal takes a member's message. The clients send their candidates in
// their SDP, so trickled ones are not expected.
func (m *floorMember) signal(s sfu.Signal) error {
	switch {
	case s.PC == sfu.PCUp && s.Kind == "offer":
		return m.publish(s.SDP)
	case s.PC == sfu.PCDown && s.Kind == "answer":
		m.mu.Lock()
		err := m.down.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: s.SDP})
		m.offering = false
		again := m.again
		m.again = false
		m.mu.Unlock()
		if err != nil || !again {
			return err
		}
		return m.renegotiate()
	case s.Kind == "candidate":
		return nil
	}
	return fmt.Errorf("floor: unexpected %s %s", s.PC, s.Kind)
}

// publish answers a member's up offer, makes one local track per kind
// (the load is Opus and VP8), and offers them to every other member.
func (m *floorMember) publish(offer string) error {
	f := m.f
	pc, err := f.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.up = pc
	m.mu.Unlock()
	audio, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", m.id)
	if err != nil {
		return err
	}
	video, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", m.id)
	if err != nil {
		return err
	}
	pc.OnTrack(func(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		local := video
		if remote.Kind() == webrtc.RTPCodecTypeAudio {
			local = audio
		}
		f.wg.Add(1)
		go forwardFloor(&f.wg, remote, local)
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return err
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return err
	}
	<-gathered
	m.send(sfu.Signal{PC: sfu.PCUp, Kind: "answer", SDP: pc.LocalDescription().SDP})
	f.mu.Lock()
	f.tracks = append(f.tracks, &floorTrack{m.id, audio}, &floorTrack{m.id, video})
	others := make([]*floorMember, 0, len(f.members))
	for _, o := range f.members {
		if o != m {
			others = append(others, o)
		}
	}
	f.mu.Unlock()
	var errs []error
	for _, o := range others {
		errs = append(errs, o.renegotiate())
	}
	return errors.Join(errs...)
}

// forwardFloor is the broadcast example's loop: read into one buffer,
// write to the local track, which writes to every down connection.
func forwardFloor(wg *sync.WaitGroup, remote *webrtc.TrackRemote, local *webrtc.TrackLocalStaticRTP) {
	defer wg.Done()
	buf := make([]byte, 1500)
	for {
		n, _, err := remote.Read(buf)
		if err != nil {
			return
		}
		_, _ = local.Write(buf[:n])
	}
}

// renegotiate adds the tracks this member lacks to its down connection
// (made on first need) and offers; if an offer is out, once its answer is in.
func (m *floorMember) renegotiate() error {
	f := m.f
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.offering {
		m.again = true
		return nil
	}
	if m.down == nil {
		pc, err := f.api.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			return err
		}
		m.down = pc
	}
	f.mu.Lock()
	tracks := append([]*floorTrack(nil), f.tracks...)
	f.mu.Unlock()
	added := false
	for _, t := range tracks {
		if t.owner == m.id || m.has[t] {
			continue
		}
		s, err := m.down.AddTrack(t.local)
		if err != nil {
			return err
		}
		m.has[t], added = true, true
		// Read, so that the interceptors see NACKs; then drop, as the
		// broadcast example does.
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			buf := make([]byte, 1500)
			for {
				if _, _, err := s.Read(buf); err != nil {
					return
				}
			}
		}()
	}
	if !added {
		return nil
	}
	offer, err := m.down.CreateOffer(nil)
	if err != nil {
		return err
	}
	gathered := webrtc.GatheringCompletePromise(m.down)
	if err := m.down.SetLocalDescription(offer); err != nil {
		return err
	}
	<-gathered
	m.offering = true
	m.send(sfu.Signal{PC: sfu.PCDown, Kind: "offer", SDP: m.down.LocalDescription().SDP})
	return nil
}

// closeAll closes peer connections a few at a time: closing hundreds
// at once on two cores only makes each slower.
func closeAll(pcs []*webrtc.PeerConnection) error {
	sem := make(chan struct{}, 8)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, pc := range pcs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := pc.Close(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
