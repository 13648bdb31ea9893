package app

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"github.com/pion/webrtc/v4"

	"crisisroom/protocol"
	"crisisroom/rooms"
	"crisisroom/sfu"
)

// sfuMedia gives rooms the server's selective forwarding unit
// (rooms.Media). The SFU's sockets are opened by ListenMedia at start
// (serve), or at the first room that needs them (tests, tools).
type sfuMedia struct {
	cfg      sfu.Config
	speaking func(room, member string, on bool)

	mu sync.Mutex
	s  *sfu.SFU
}

// newSFUMedia configures the SFU from the server's settings; speaking is
// told who speaks, as the SFU reads it from the audio levels.
func newSFUMedia(cfg Config, log *slog.Logger, speaking func(room, member string, on bool)) *sfuMedia {
	return &sfuMedia{cfg: sfu.Config{UDPAddr: cfg.SFUUDP, TCPAddr: cfg.SFUTCP, PublicIPs: cfg.PublicIPs,
		Loopback: loopbackAddr(cfg.SFUUDP), Log: log}, speaking: speaking}
}

// open returns the SFU, opening its listeners the first time.
func (m *sfuMedia) open() (*sfu.SFU, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.s != nil {
		return m.s, nil
	}
	s, err := sfu.New(m.cfg)
	if err != nil {
		return nil, fmt.Errorf("sfu: %w", err)
	}
	m.s = s
	return s, nil
}

func (m *sfuMedia) Join(room, member string, publish bool, send func(protocol.SFU)) (rooms.MediaSession, error) {
	s, err := m.open()
	if err != nil {
		return nil, err
	}
	r := s.Room(room)
	r.OnSpeaking(func(id string, on bool) { m.speaking(room, id, on) }) // one atomic store: setting it again is free
	mem, err := r.Join(member, func(sg sfu.Signal) { send(toWire(sg)) }, sfu.JoinOptions{Publish: publish})
	if err != nil {
		return nil, err
	}
	return sfuSession{mem}, nil
}

func (m *sfuMedia) Leave(room, member string) {
	m.mu.Lock()
	s := m.s
	m.mu.Unlock()
	if s != nil {
		s.Room(room).Leave(member)
	}
}

// close stops the SFU, if it was opened.
func (m *sfuMedia) close() {
	m.mu.Lock()
	s := m.s
	m.s = nil
	m.mu.Unlock()
	if s != nil {
		_ = s.Close()
	}
}

// stats are the SFU's rooms' counters (none before it was opened).
func (m *sfuMedia) stats() []sfu.RoomStats {
	m.mu.Lock()
	s := m.s
	m.mu.Unlock()
	if s == nil {
		return nil
	}
	return s.Stats()
}

type sfuSession struct{ m *sfu.Member }

func (s sfuSession) Signal(p protocol.SFU) error { return s.m.Signal(fromWire(p)) }

// toWire and fromWire translate between the SFU's messages and the
// protocol's (the SFU knows no wire format).
func toWire(s sfu.Signal) protocol.SFU {
	out := protocol.SFU{PC: s.PC, Kind: s.Kind, SDP: s.SDP}
	if c := s.Candidate; c != nil {
		out.Candidate = &protocol.ICECandidate{Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex}
	}
	return out
}

func fromWire(p protocol.SFU) sfu.Signal {
	out := sfu.Signal{PC: p.PC, Kind: p.Kind, SDP: p.SDP}
	if c := p.Candidate; c != nil {
		out.Candidate = &webrtc.ICECandidateInit{Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex}
	}
	return out
}

// loopbackAddr: an SFU listening on loopback only (tests, a host behind a
// reverse tunnel) must advertise its loopback address.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	ip, perr := netip.ParseAddr(host)
	return err == nil && perr == nil && ip.IsLoopback()
}
