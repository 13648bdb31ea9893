package sfu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"

	"crisisroom/internal/pionlog"
	"crisisroom/turnserver"
)

// Config configures an SFU. The zero value is a loopback SFU for tests.
type Config struct {
	// UDPAddr is the one UDP address that every peer connection shares
	// (ICE UDP mux), e.g. ":7882". A host that is unspecified (":7882")
	// listens on every interface and then needs a fixed port. "" means
	// "127.0.0.1:0" (tests).
	UDPAddr string
	// TCPAddr is the ICE-TCP listener, for networks without UDP; "" = off.
	TCPAddr string
	// PublicIPs are NAT 1:1 addresses advertised in host candidates;
	// empty = the interfaces' addresses.
	PublicIPs []string
	// Loopback includes loopback candidates (tests on one machine).
	Loopback bool
	// MaxPublisherBitrate caps each publisher across its tracks, in
	// bits/s; RTP beyond it is dropped and counted. Default 8_000_000.
	MaxPublisherBitrate int
	Log                 *slog.Logger
	// Now is the clock of every time rule: the rate cap, the keyframe
	// limiter, speaking and freezes. The router checks them on a
	// wall-clock tick (100 ms). nil = time.Now.
	Now func() time.Time
}

// DefaultMaxPublisherBitrate is Config.MaxPublisherBitrate's default.
const DefaultMaxPublisherBitrate = 8_000_000

// Errors returned by Member.Signal and Router.Join. Offer errors wrap
// ErrBadOffer's more precise siblings so that errors.Is works on both.
var (
	ErrBadOffer         = errors.New("sfu: bad offer")
	ErrTooManyTracks    = errors.New("sfu: too many media sections (at most 1 audio and 2 video)")
	ErrUnsupportedCodec = errors.New("sfu: unsupported codec (Opus and VP8 only)")
	ErrNotPublisher     = errors.New("sfu: member may not publish (watch-only)")
	ErrBadSignal        = errors.New("sfu: bad signal")
	ErrClosed           = errors.New("sfu: closed")
	ErrMemberExists     = errors.New("sfu: member already joined")
)

// SFU is the selective forwarding unit: the shared listeners and one
// Router per room.
type SFU struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	set    webrtc.SettingEngine
	udp    ice.UDPMux
	udpLn  net.Addr
	tcp    ice.TCPMux
	tcpLn  net.Listener
	closer []func() error

	mu     sync.Mutex
	rooms  map[string]*Router
	closed bool
}

// udpReadBuffer is the kernel receive buffer of the one UDP socket every
// peer connection shares: a burst of every publisher's keyframes at once
// must wait there while the readers catch up, not be dropped (the bench
// saw drops on it under load that the per-connection sockets of a bare
// pion forwarder did not have).
const udpReadBuffer = 4 << 20

// New opens the shared UDP (and TCP) listeners.
func New(cfg Config) (*SFU, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxPublisherBitrate <= 0 {
		cfg.MaxPublisherBitrate = DefaultMaxPublisherBitrate
	}
	if cfg.UDPAddr == "" {
		cfg.UDPAddr = "127.0.0.1:0"
	}
	// The project's tuned ICE settings (no acceptance waits): the SFU is
	// the controlling side of every down connection, and pion would wait
	// up to 2 s before nominating a relayed or NAT-ed member's pair.
	s := &SFU{cfg: cfg, log: cfg.Log, now: cfg.Now, rooms: map[string]*Router{}, set: turnserver.SettingEngine()}
	lf := pionlog.New(cfg.Log)
	s.set.LoggerFactory = lf
	if err := s.listen(lf); err != nil {
		_ = s.Close()
		return nil, err
	}
	s.set.SetICEUDPMux(s.udp)
	nets := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if s.tcp != nil {
		s.set.SetICETCPMux(s.tcp)
		nets = append(nets, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	s.set.SetNetworkTypes(nets)
	s.set.SetIncludeLoopbackCandidate(cfg.Loopback)
	s.set.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if len(cfg.PublicIPs) > 0 {
		if err := s.set.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        cfg.PublicIPs,
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteReplace,
		}); err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("sfu: public IPs: %w", err)
		}
	}
	return s, nil
}

func (s *SFU) listen(lf logging.LoggerFactory) error {
	host, port, err := net.SplitHostPort(s.cfg.UDPAddr)
	if err != nil {
		return fmt.Errorf("sfu: UDP address %q: %w", s.cfg.UDPAddr, err)
	}
	ip := net.ParseIP(host)
	if host == "" || (ip != nil && ip.IsUnspecified()) {
		p, err := net.LookupPort("udp", port)
		if err != nil || p == 0 {
			return fmt.Errorf("sfu: UDP address %q: listening on every interface needs a fixed port", s.cfg.UDPAddr)
		}
		opts := []ice.UDPMuxFromPortOption{ice.UDPMuxFromPortWithLogger(lf.NewLogger("udpmux")),
			ice.UDPMuxFromPortWithReadBufferSize(udpReadBuffer)}
		if s.cfg.Loopback {
			opts = append(opts, ice.UDPMuxFromPortWithLoopback())
		}
		m, err := ice.NewMultiUDPMuxFromPort(p, opts...)
		if err != nil {
			return fmt.Errorf("sfu: UDP mux on port %d: %w", p, err)
		}
		s.udp = m
		s.closer = append(s.closer, m.Close)
		s.udpLn = &net.UDPAddr{Port: p}
		if as := m.GetListenAddresses(); len(as) > 0 {
			s.udpLn = as[0]
		}
	} else {
		conn, err := net.ListenPacket("udp", s.cfg.UDPAddr)
		if err != nil {
			return fmt.Errorf("sfu: UDP listener: %w", err)
		}
		if uc, ok := conn.(*net.UDPConn); ok {
			_ = uc.SetReadBuffer(udpReadBuffer) // best effort: the kernel caps it at rmem_max
		}
		s.udp = webrtc.NewICEUDPMux(lf.NewLogger("udpmux"), conn)
		s.closer = append(s.closer, s.udp.Close)
		s.udpLn = conn.LocalAddr()
	}
	if s.cfg.TCPAddr == "" {
		return nil
	}
	// Accepted sockets inherit the listener's small send buffer.
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, tcpSendBuffer)
		})
		return errors.Join(err, serr)
	}}
	ln, err := lc.Listen(context.Background(), "tcp", s.cfg.TCPAddr)
	if err != nil {
		return fmt.Errorf("sfu: TCP listener: %w", err)
	}
	s.tcpLn = ln
	// No WriteBufferSize: pion's write buffer answers a full buffer with
	// an error, so a subscriber that stops reading would lose packets
	// unseen and never block its writer; the sink (see sink) could not
	// tell it is stuck. Direct writes on a small socket buffer block
	// that subscriber's writer after a few hundred milliseconds of video.
	s.tcp = ice.NewTCPMuxDefault(ice.TCPMuxParams{
		Listener:       ln,
		Logger:         lf.NewLogger("tcpmux"),
		ReadBufferSize: 64,
	})
	s.closer = append(s.closer, s.tcp.Close)
	return nil
}

// tcpSendBuffer is the socket send buffer of ICE-TCP connections.
const tcpSendBuffer = 64 << 10

// Close closes every room and the listeners.
func (s *SFU) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	rs := slices.Collect(maps.Values(s.rooms))
	s.mu.Unlock()
	for _, r := range rs {
		r.Close()
	}
	var errs []error
	for _, c := range s.closer {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// UDPAddr is the bound UDP address.
func (s *SFU) UDPAddr() net.Addr { return s.udpLn }

// TCPAddr is the bound ICE-TCP address, nil when off.
func (s *SFU) TCPAddr() net.Addr {
	if s.tcpLn == nil {
		return nil
	}
	return s.tcpLn.Addr()
}

// Room returns the room's router, created on first use. After Close it
// returns a closed router, on which Join fails.
func (s *SFU) Room(name string) *Router {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.rooms[name]; ok {
		return r
	}
	r := newRouter(s, name)
	if s.closed {
		r.Close()
		return r
	}
	s.rooms[name] = r
	return r
}

// removeRoom forgets a closed router.
func (s *SFU) removeRoom(r *Router) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rooms[r.name] == r {
		delete(s.rooms, r.name)
	}
}

// Stats returns each room's counters, sorted by room.
func (s *SFU) Stats() []RoomStats {
	s.mu.Lock()
	rs := slices.Collect(maps.Values(s.rooms))
	s.mu.Unlock()
	out := make([]RoomStats, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.Stats())
	}
	slices.SortFunc(out, func(a, b RoomStats) int { return strings.Compare(a.Room, b.Room) })
	return out
}
