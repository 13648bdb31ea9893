// Package turnserver is crisisroom's built-in TURN relay (pion/turn): UDP,
// TCP and TLS listeners, short-lived use-auth-secret credentials, a peer
// policy that keeps the relay out of the host's loopback and private
// networks, a per-participant allocation cap, and a self-test that connects
// two pion peers through it.
//
// Guests behind firewalls that only let out TLS on 443 still get through:
// the browser speaks TURN over TLS to the server, which relays over UDP.
package turnserver

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/pion/turn/v5"

	"crisisroom/internal/pionlog"
)

// Config of the relay. Listen addresses may use port 0; the server reports
// the ports it got.
type Config struct {
	ListenUDP string // e.g. ":3478"; "" = no UDP listener
	ListenTCP string // e.g. ":3478"; "" = no TCP listener
	ListenTLS string // e.g. ":443"; needs TLSCertFile and TLSKeyFile

	TLSCertFile string
	TLSKeyFile  string

	// PublicIP is the address browsers reach the relay at, advertised in
	// relay candidates and ICE URLs. Empty: the first listen address with a
	// specific IP, else the first non-loopback interface address.
	PublicIP string
	Realm    string
	Secret   string // shared with the signaling server (and any coturn)

	MaxAllocsPerUser int      // live allocations per member; <= 0: no cap
	AllowPeers       []string // CIDRs relays may reach although private/loopback

	Log *slog.Logger

	now func() time.Time // clock for credential expiry; nil: time.Now (tests set it)
}

// Server is a running relay.
type Server struct {
	cfg     Config
	log     *slog.Logger
	relayIP netip.Addr
	udp     net.PacketConn
	tcp     *trackingListener
	tls     *trackingListener
	certs   *certReloader
	quota   *quota
	srv     *turn.Server
}

// Start opens the listeners and starts relaying.
func Start(cfg Config) (*Server, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if cfg.Secret == "" {
		return nil, errors.New("turn: empty secret")
	}
	if cfg.ListenUDP == "" && cfg.ListenTCP == "" && cfg.ListenTLS == "" {
		return nil, errors.New("turn: no listen address")
	}
	allow, err := parsePrefixes(cfg.AllowPeers)
	if err != nil {
		return nil, err
	}
	relayIP, err := pickRelayIP(cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Log, relayIP: relayIP, quota: &quota{max: cfg.MaxAllocsPerUser, live: map[string]int{}}}
	if err := s.listen(); err != nil {
		s.closeListeners()
		return nil, err
	}
	policy := &peerPolicy{allow: allow, relayIP: relayIP, ports: &relayPorts{ports: map[int]struct{}{}}}
	if s.srv, err = turn.NewServer(s.serverConfig(policy)); err != nil {
		s.closeListeners()
		return nil, fmt.Errorf("turn: %w", err)
	}
	// nil addresses print as "<nil>": that listener is off.
	s.log.Info("turn relay listening", "udp", s.UDPAddr().String(), "tcp", s.TCPAddr().String(),
		"tls", s.TLSAddr().String(), "relay_ip", relayIP.String(), "allow_peers", cfg.AllowPeers)
	return s, nil
}

func (s *Server) listen() error {
	if s.cfg.ListenUDP != "" {
		pc, err := net.ListenPacket("udp", s.cfg.ListenUDP)
		if err != nil {
			return fmt.Errorf("turn udp: %w", err)
		}
		s.udp = pc
	}
	if s.cfg.ListenTCP != "" {
		ln, err := net.Listen("tcp", s.cfg.ListenTCP)
		if err != nil {
			return fmt.Errorf("turn tcp: %w", err)
		}
		s.tcp = newTrackingListener(ln)
	}
	if s.cfg.ListenTLS != "" {
		certs, err := newCertReloader(s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
		if err != nil {
			return err
		}
		s.certs = certs
		ln, err := net.Listen("tcp", s.cfg.ListenTLS)
		if err != nil {
			return fmt.Errorf("turn tls: %w", err)
		}
		s.tls = newTrackingListener(ln)
	}
	return nil
}

func (s *Server) serverConfig(policy *peerPolicy) turn.ServerConfig {
	bind, local := s.relayBindIP()
	gen := &relayGen{bindIP: bind, policy: policy}
	if !local {
		gen.hairpin = s.hairpinIP(bind)
	}
	sc := turn.ServerConfig{
		Realm:        s.cfg.Realm,
		AuthHandler:  authHandler(s.cfg.Secret, s.cfg.now, s.log),
		QuotaHandler: s.quota.allow,
		// pion logs clients' failures (bad TLS handshakes, dropped TCP
		// connections) as errors; on an Internet-facing port those are
		// routine, so they are capped at info. Relay faults show in the
		// self-test instead.
		LoggerFactory: pionlog.Factory{Log: s.log.With("component", "turn"), Ceiling: slog.LevelInfo},
		EventHandler: turn.EventHandler{
			OnAllocationCreated: s.quota.created,
			OnAllocationDeleted: s.quota.deleted,
		},
	}
	if s.udp != nil {
		sc.PacketConnConfigs = append(sc.PacketConnConfigs, turn.PacketConnConfig{
			PacketConn: s.udp, RelayAddressGenerator: gen, PermissionHandler: policy.permit,
		})
	}
	if s.tcp != nil {
		sc.ListenerConfigs = append(sc.ListenerConfigs, turn.ListenerConfig{
			Listener: s.tcp, RelayAddressGenerator: gen, PermissionHandler: policy.permit,
		})
	}
	if s.tls != nil {
		tl := tls.NewListener(s.tls, &tls.Config{GetCertificate: s.certs.get, MinVersion: tls.VersionTLS12})
		sc.ListenerConfigs = append(sc.ListenerConfigs, turn.ListenerConfig{
			Listener: tl, RelayAddressGenerator: gen, PermissionHandler: policy.permit,
		})
	}
	return sc
}

// relayBindIP binds relay sockets to the relay address when it is one of
// this host's (local), so relayed packets leave from the address peers gave
// permissions to; behind 1:1 NAT (public IP not local) it binds where the
// server listens, or everywhere (nil).
func (s *Server) relayBindIP() (ip net.IP, local bool) {
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(s.relayIP.AsSlice()) {
				return n.IP, true
			}
		}
	}
	for _, l := range []string{s.cfg.ListenUDP, s.cfg.ListenTCP, s.cfg.ListenTLS} {
		if ip, ok := specificHost(l); ok && ip.Is4() == s.relayIP.Is4() {
			return ip.AsSlice(), false
		}
	}
	return nil, false
}

// hairpinIP is where relay sockets bound on bind are reached from this
// host: bind itself, or loopback when they listen everywhere.
func (s *Server) hairpinIP(bind net.IP) net.IP {
	switch {
	case bind != nil:
		return bind
	case s.relayIP.Is6():
		return net.IPv6loopback
	default:
		return net.IPv4(127, 0, 0, 1).To4()
	}
}

// pickRelayIP resolves Config.PublicIP's default.
func pickRelayIP(cfg Config) (netip.Addr, error) {
	if cfg.PublicIP != "" {
		ip, err := netip.ParseAddr(cfg.PublicIP)
		if err != nil || ip.IsUnspecified() {
			return netip.Addr{}, fmt.Errorf("turn public ip %q: not a usable IP address", cfg.PublicIP)
		}
		return ip.Unmap(), nil
	}
	for _, l := range []string{cfg.ListenUDP, cfg.ListenTCP, cfg.ListenTLS} {
		if ip, ok := specificHost(l); ok {
			return ip, nil
		}
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("turn public ip: %w", err)
	}
	var v6 netip.Addr
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, _ := netip.AddrFromSlice(n.IP)
		ip = ip.Unmap()
		switch {
		case ip.IsLoopback() || ip.IsLinkLocalUnicast() || !ip.IsValid():
		case ip.Is4():
			return ip, nil
		case !v6.IsValid():
			v6 = ip
		}
	}
	if v6.IsValid() {
		return v6, nil
	}
	return netip.Addr{}, errors.New("turn public ip: no non-loopback interface address; set --turn-public-ip")
}

// specificHost returns the IP of a listen address like "10.0.0.5:3478"
// (not ":3478" nor "0.0.0.0:3478").
func specificHost(listen string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.IsUnspecified() {
		return netip.Addr{}, false
	}
	return ip.Unmap(), true
}

// RelayIP is the address relay candidates and ICE URLs carry.
func (s *Server) RelayIP() netip.Addr { return s.relayIP }

// UDPAddr is the bound UDP listen address (nil when off).
func (s *Server) UDPAddr() *net.UDPAddr {
	if s.udp == nil {
		return nil
	}
	return s.udp.LocalAddr().(*net.UDPAddr)
}

// TCPAddr is the bound TCP listen address (nil when off).
func (s *Server) TCPAddr() *net.TCPAddr {
	if s.tcp == nil {
		return nil
	}
	return s.tcp.Addr().(*net.TCPAddr)
}

// TLSAddr is the bound TLS listen address (nil when off).
func (s *Server) TLSAddr() *net.TCPAddr {
	if s.tls == nil {
		return nil
	}
	return s.tls.Addr().(*net.TCPAddr)
}

// URLs are the ICE server URLs browsers get, in the order they should try
// them: UDP, then TCP, then TLS for networks that only let 443 out.
// tlsHost is the name on the TLS certificate (browsers check it); empty
// means the relay IP.
func (s *Server) URLs(tlsHost string) []string {
	ip := s.relayIP.String()
	var out []string
	if a := s.UDPAddr(); a != nil {
		out = append(out, "turn:"+net.JoinHostPort(ip, strconv.Itoa(a.Port))+"?transport=udp")
	}
	if a := s.TCPAddr(); a != nil {
		out = append(out, "turn:"+net.JoinHostPort(ip, strconv.Itoa(a.Port))+"?transport=tcp")
	}
	if a := s.TLSAddr(); a != nil {
		if tlsHost == "" {
			tlsHost = ip
		}
		out = append(out, "turns:"+net.JoinHostPort(tlsHost, strconv.Itoa(a.Port))+"?transport=tcp")
	}
	return out
}

// Allocations is the number of live allocations of one member.
func (s *Server) Allocations(member string) int { return s.quota.count(member) }

// Close stops the relay: listeners, TCP/TLS clients and their allocations.
func (s *Server) Close() error {
	err := s.srv.Close()
	s.closeConns()
	return err
}

func (s *Server) closeListeners() {
	if s.udp != nil {
		_ = s.udp.Close()
	}
	for _, l := range []*trackingListener{s.tcp, s.tls} {
		if l != nil {
			_ = l.Close()
		}
	}
}

func (s *Server) closeConns() {
	for _, l := range []*trackingListener{s.tcp, s.tls} {
		if l != nil {
			l.closeConns()
		}
	}
}

// trackingListener remembers accepted connections so Close can end them:
// pion stops accepting on Close but leaves established TCP/TLS clients
// (and their allocations) running.
type trackingListener struct {
	net.Listener
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func newTrackingListener(ln net.Listener) *trackingListener {
	return &trackingListener{Listener: ln, conns: map[net.Conn]struct{}{}}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	tc := &trackedConn{Conn: c, l: l}
	l.conns[tc] = struct{}{}
	return tc, nil
}

func (l *trackingListener) closeConns() {
	l.mu.Lock()
	l.closed = true
	conns := l.conns
	l.conns = map[net.Conn]struct{}{}
	l.mu.Unlock()
	for c := range conns {
		_ = c.(*trackedConn).Conn.Close()
	}
}

type trackedConn struct {
	net.Conn
	l    *trackingListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}
