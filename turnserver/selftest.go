package turnserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"crisisroom/internal/pionlog"
)

// SettingEngine returns the pion settings crisisroom's own peers use (the
// self-test, the test clients, the benchmark): every candidate acceptance
// wait at zero.
//
// Why: once a candidate pair works, a controlling pion agent still waits
// before nominating it, by candidate type: host 0, server-reflexive 500 ms,
// peer-reflexive 1 s, relay 2 s (NewAgentWithOptions keeps the 2 s even
// under a relay-only policy). Those waits let a direct pair win over a
// relayed one on the open Internet; between our own peers they only cost
// time: a relay-only join on loopback took 2.0 s with them. Any non-zero
// wait also costs a whole ICE check tick (200 ms, not settable through
// webrtc), since nomination is retried only on the next tick: measured on
// loopback, a 1 ms or 50 ms wait gave 0.2-1 s, zero gave mostly under
// 20 ms. The direct pair still usually wins where both work, because all
// pairs are checked in the same tick and the direct one answers first.
// Browsers are unaffected: they apply their own nomination rules.
func SettingEngine() webrtc.SettingEngine {
	var se webrtc.SettingEngine
	se.SetHostAcceptanceMinWait(0)
	se.SetSrflxAcceptanceMinWait(0)
	se.SetPrflxAcceptanceMinWait(0)
	se.SetRelayAcceptanceMinWait(0)
	return se
}

// SelfTest connects two pion peers through this relay only (relay-only ICE
// policy, so nothing else can carry the traffic), once per enabled
// transport, and exchanges a data-channel message each time. tlsHost is
// the name the TLS certificate must carry (as in URLs). It dials the
// listeners on this host, so it tests the relay, not the path from the
// Internet to it.
func (s *Server) SelfTest(ctx context.Context, tlsHost string) error {
	se := SettingEngine()
	se.LoggerFactory = pionlog.Factory{Log: s.log.With("component", "turn-selftest"), Ceiling: slog.LevelDebug}
	if s.relayIP.Is4() {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeTCP4})
	} else {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP6, webrtc.NetworkTypeTCP6})
	}
	user, pass := Credentials(s.cfg.Secret, "turn-selftest", time.Now().Add(5*time.Minute))
	for _, tr := range s.selfTestTransports(tlsHost) {
		tse := se
		if tr.dialer != nil {
			tse.SetICEProxyDialer(tr.dialer)
		}
		servers := []webrtc.ICEServer{{URLs: []string{tr.url}, Username: user, Credential: pass}}
		took, err := RelayPair(ctx, tse, servers)
		if err != nil && tr.dialer != nil {
			if derr := tr.dialer.err(); derr != nil {
				err = fmt.Errorf("%w (%w)", err, derr) // say why TLS failed
			}
		}
		if err != nil {
			return fmt.Errorf("turn self-test over %s: %w", tr.name, err)
		}
		s.log.Debug("turn self-test passed", "transport", tr.name, "connect", took)
	}
	return nil
}

type selfTestTransport struct {
	name   string
	url    string
	dialer *tlsDialer // TLS only
}

func (s *Server) selfTestTransports(tlsHost string) []selfTestTransport {
	var out []selfTestTransport
	if a := s.UDPAddr(); a != nil {
		out = append(out, selfTestTransport{name: "udp", url: "turn:" + s.dialAddr(a.IP, a.Port) + "?transport=udp"})
	}
	if a := s.TCPAddr(); a != nil {
		out = append(out, selfTestTransport{name: "tcp", url: "turn:" + s.dialAddr(a.IP, a.Port) + "?transport=tcp"})
	}
	if a := s.TLSAddr(); a != nil {
		if tlsHost == "" {
			tlsHost = s.relayIP.String()
		}
		d := &tlsDialer{addr: s.dialAddr(a.IP, a.Port), serverName: tlsHost, roots: s.certs.roots}
		// The URL's host is only the certificate name: the dialer connects
		// to the local listener whatever the name resolves to.
		out = append(out, selfTestTransport{name: "tls", url: "turns:" + net.JoinHostPort(tlsHost, strconv.Itoa(a.Port)) + "?transport=tcp", dialer: d})
	}
	return out
}

// dialAddr turns a listen address into one this host can dial: a wildcard
// becomes the loopback address of the relay's family.
func (s *Server) dialAddr(ip net.IP, port int) string {
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
		if s.relayIP.Is6() {
			ip = net.IPv6loopback
		}
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(port))
}

// tlsDialer is given to pion as its ICE proxy dialer. pion dials turns:
// URLs itself but verifies them only against the system roots, with no way
// to pass others; through a proxy dialer it takes the connection as is, so
// the TLS handshake (and its verification) happens here.
type tlsDialer struct {
	addr       string
	serverName string
	roots      func() (*x509.CertPool, error)

	mu      sync.Mutex
	lastErr error // pion only logs dial errors; the self-test reports it
}

// Dial implements golang.org/x/net/proxy.Dialer.
func (d *tlsDialer) Dial(network, _ string) (net.Conn, error) {
	c, err := d.dial(network)
	d.mu.Lock()
	d.lastErr = err
	d.mu.Unlock()
	return c, err
}

func (d *tlsDialer) dial(network string) (net.Conn, error) {
	roots, err := d.roots()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	td := tls.Dialer{Config: &tls.Config{ServerName: d.serverName, RootCAs: roots, MinVersion: tls.VersionTLS12}}
	return td.DialContext(ctx, network, d.addr)
}

func (d *tlsDialer) err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastErr
}

// RelayPair connects two in-process pion peers with the given ICE servers,
// relay-only, and exchanges one data-channel message each way. It returns
// the time from creating the offer to both peers being connected.
func RelayPair(ctx context.Context, se webrtc.SettingEngine, servers []webrtc.ICEServer) (time.Duration, error) {
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se))
	cfg := webrtc.Configuration{ICEServers: servers, ICETransportPolicy: webrtc.ICETransportPolicyRelay}
	a, err := newPeer(api, cfg)
	if err != nil {
		return 0, err
	}
	defer a.close()
	b, err := newPeer(api, cfg)
	if err != nil {
		return 0, err
	}
	defer b.close()
	a.remote, b.remote = b, a

	reply := make(chan string, 1)
	b.pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnMessage(func(m webrtc.DataChannelMessage) { _ = dc.SendText("pong:" + string(m.Data)) })
	})
	dc, err := a.pc.CreateDataChannel("selftest", nil)
	if err != nil {
		return 0, err
	}
	dc.OnOpen(func() { _ = dc.SendText("ping") })
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		select {
		case reply <- string(m.Data):
		default:
		}
	})

	start := time.Now()
	if err := negotiate(a, b); err != nil {
		return 0, err
	}
	for _, p := range []*peer{a, b} {
		if err := p.waitConnected(ctx); err != nil {
			return 0, err
		}
	}
	took := time.Since(start)
	select {
	case msg := <-reply:
		if msg != "pong:ping" {
			return took, fmt.Errorf("data channel: got %q", msg)
		}
	case <-ctx.Done():
		return took, fmt.Errorf("data channel: no reply: %w", ctx.Err())
	}
	return took, nil
}

func negotiate(a, b *peer) error {
	offer, err := a.pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	if err := a.pc.SetLocalDescription(offer); err != nil {
		return err
	}
	if err := b.setRemote(offer); err != nil {
		return err
	}
	answer, err := b.pc.CreateAnswer(nil)
	if err != nil {
		return err
	}
	if err := b.pc.SetLocalDescription(answer); err != nil {
		return err
	}
	return a.setRemote(answer)
}

// peer is one side, trickling candidates to the other the way browsers do
// through signaling. Candidates found before the other side has its remote
// description wait in pending.
type peer struct {
	pc     *webrtc.PeerConnection
	remote *peer
	state  chan webrtc.PeerConnectionState
	// noRelay is closed when gathering ended without a single candidate:
	// relay-only, that means no allocation succeeded (refused credentials,
	// quota, unreachable or broken relay) and waiting longer is pointless.
	noRelay chan struct{}

	mu        sync.Mutex
	hasRemote bool
	pending   []webrtc.ICECandidateInit
	found     int // local candidates gathered; -1 once noRelay is closed
}

func newPeer(api *webrtc.API, cfg webrtc.Configuration) (*peer, error) {
	pc, err := api.NewPeerConnection(cfg)
	if err != nil {
		return nil, err
	}
	p := &peer{pc: pc, state: make(chan webrtc.PeerConnectionState, 16), noRelay: make(chan struct{})}
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		select {
		case p.state <- s:
		default: // waitConnected only needs the latest states
		}
	})
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			p.remote.addCandidate(c.ToJSON())
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		switch {
		case c != nil:
			p.found++
		case p.found == 0:
			p.found = -1
			close(p.noRelay)
		}
	})
	return p, nil
}

func (p *peer) addCandidate(c webrtc.ICECandidateInit) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.hasRemote {
		p.pending = append(p.pending, c)
		return
	}
	_ = p.pc.AddICECandidate(c)
}

func (p *peer) setRemote(d webrtc.SessionDescription) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.pc.SetRemoteDescription(d); err != nil {
		return err
	}
	p.hasRemote = true
	for _, c := range p.pending {
		_ = p.pc.AddICECandidate(c)
	}
	p.pending = nil
	return nil
}

var (
	errPeerFailed = errors.New("peer connection failed")
	errNoRelay    = errors.New("no relay candidate: the TURN allocation failed")
)

func (p *peer) waitConnected(ctx context.Context) error {
	for {
		select {
		case s := <-p.state:
			switch s {
			case webrtc.PeerConnectionStateConnected:
				return nil
			case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
				return fmt.Errorf("%w: %s", errPeerFailed, s)
			}
		case <-p.noRelay:
			return errNoRelay
		case <-ctx.Done():
			return fmt.Errorf("not connected: %w", ctx.Err())
		}
	}
}

func (p *peer) close() { _ = p.pc.Close() }
