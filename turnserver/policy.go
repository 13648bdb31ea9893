package turnserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"github.com/pion/turn/v5"
)

// deniedPeers are ranges a relay must not reach unless allow-listed: an
// open relay into them would let anyone holding credentials probe or talk
// to the server's own host and its internal network (loopback, RFC 1918,
// link-local, CGNAT, multicast, documentation and reserved blocks, and the
// IPv6 prefixes that embed IPv4 addresses). It is coturn's recommended
// denied-peer-ip list.
var deniedPeers = mustPrefixes(
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
	"172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
	"198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
	"::/128", "::1/128", "64:ff9b::/96", "100::/64", "2001::/32", "2001:db8::/32",
	"2002::/16", "fc00::/7", "fe80::/10", "ff00::/8",
)

func mustPrefixes(cidrs ...string) []netip.Prefix {
	out, err := parsePrefixes(cidrs)
	if err != nil {
		panic(err)
	}
	return out
}

func parsePrefixes(cidrs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cidrs))
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			// A bare address allow-lists just itself.
			a, aerr := netip.ParseAddr(c)
			if aerr != nil {
				return nil, fmt.Errorf("turn allow-peers %q: not a CIDR or address", c)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// peerPolicy decides which peer addresses a relay may send to.
type peerPolicy struct {
	allow   []netip.Prefix
	relayIP netip.Addr
	ports   *relayPorts
}

// verdict of the policy for one peer IP.
type verdict int

const (
	refused   verdict = iota
	open              // public unicast, or allow-listed
	relayOnly         // the relay's own address: only its relay ports
)

func (p *peerPolicy) check(ip net.IP) verdict {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return refused
	}
	a = a.Unmap()
	for _, pfx := range p.allow {
		if pfx.Contains(a) {
			return open
		}
	}
	// Two participants both relayed through this server reach each other
	// at the server's own relay address. That must work even when the
	// address is private (a LAN deployment), but the rest of the host's
	// ports there (SSH, databases) must stay out of reach: the relay
	// sockets only send to ports that are live relays (see guardedConn).
	if a == p.relayIP {
		return relayOnly
	}
	for _, pfx := range deniedPeers {
		if pfx.Contains(a) {
			return refused
		}
	}
	return open
}

// permit is the turn.PermissionHandler: CreatePermission and ChannelBind to
// a refused address fail with 403.
func (p *peerPolicy) permit(_ net.Addr, peerIP net.IP) bool {
	return p.check(peerIP) != refused
}

// relayPorts is the set of ports currently bound by relay sockets.
type relayPorts struct {
	mu    sync.Mutex
	ports map[int]struct{}
}

func (r *relayPorts) add(port int) {
	r.mu.Lock()
	r.ports[port] = struct{}{}
	r.mu.Unlock()
}

func (r *relayPorts) remove(port int) {
	r.mu.Lock()
	delete(r.ports, port)
	r.mu.Unlock()
}

func (r *relayPorts) has(port int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.ports[port]
	return ok
}

var (
	errTCPRelay   = errors.New("TCP relays (RFC 6062) are not offered: browsers relay over UDP allocations")
	errFamily     = errors.New("relay address family not available")
	errNotARelay  = errors.New("peer is this server but not one of its relay ports")
	errPeerDenied = errors.New("peer address refused by relay policy")
)

// relayGen is the turn.RelayAddressGenerator: UDP relay sockets bound on
// bindIP, advertised at the policy's relay IP, and wrapped so they only
// send where the policy says.
type relayGen struct {
	bindIP net.IP // nil: all interfaces
	policy *peerPolicy
	// hairpin is set when the relay IP is not this host's (1:1 NAT): relay
	// to relay traffic then goes to this local address instead of out to
	// the NAT and back, which many NATs (and cloud networks) do not do.
	hairpin net.IP
}

func (g *relayGen) Validate() error { return nil }

func (g *relayGen) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	v4 := g.policy.relayIP.Is4()
	if (conf.Network == "udp4") != v4 {
		return nil, nil, errFamily
	}
	host := ""
	if g.bindIP != nil {
		host = g.bindIP.String()
	}
	pc, err := net.ListenPacket(conf.Network, net.JoinHostPort(host, strconv.Itoa(conf.RequestedPort)))
	if err != nil {
		return nil, nil, err
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	g.policy.ports.add(port)
	gc := &guardedConn{PacketConn: pc, policy: g.policy, port: port, hairpin: g.hairpin}
	return gc, &net.UDPAddr{IP: g.policy.relayIP.AsSlice(), Port: port}, nil
}

func (g *relayGen) AllocateListener(turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, errTCPRelay
}

func (g *relayGen) AllocateConn(turn.AllocateConnConfig) (net.Conn, error) {
	return nil, errTCPRelay
}

// guardedConn is a relay socket that re-checks every destination. pion only
// relays to peers with a permission, which the policy already vetted; the
// extra check here is what narrows the relay's own address to relay ports.
type guardedConn struct {
	net.PacketConn
	policy  *peerPolicy
	port    int
	hairpin net.IP
	once    sync.Once
}

func (c *guardedConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, errPeerDenied
	}
	switch c.policy.check(ua.IP) {
	case refused:
		return 0, errPeerDenied
	case relayOnly:
		if !c.policy.ports.has(ua.Port) {
			return 0, errNotARelay
		}
		if c.hairpin != nil {
			addr = &net.UDPAddr{IP: c.hairpin, Port: ua.Port}
		}
	}
	return c.PacketConn.WriteTo(p, addr)
}

// ReadFrom undoes the hairpin shortcut: a packet from another relay socket
// shows as coming from its advertised address, the one permissions name.
func (c *guardedConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(p)
	if ua, ok := addr.(*net.UDPAddr); ok && c.hairpin != nil && ua.IP.Equal(c.hairpin) && c.policy.ports.has(ua.Port) {
		addr = &net.UDPAddr{IP: c.policy.relayIP.AsSlice(), Port: ua.Port}
	}
	return n, addr, err
}

func (c *guardedConn) Close() error {
	c.once.Do(func() { c.policy.ports.remove(c.port) })
	return c.PacketConn.Close()
}

// quota caps live allocations per user (the member part of the username).
// The count follows pion's allocation events; the check runs before the
// allocation exists, so concurrent Allocate requests of one member on
// separate TCP connections could overshoot by the number in flight, which
// is harmless next to an unbounded count.
type quota struct {
	max  int
	mu   sync.Mutex
	live map[string]int
}

func (q *quota) allow(user, _ string, _ net.Addr) bool {
	if q.max <= 0 {
		return true
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.live[user] < q.max
}

func (q *quota) created(_, _ net.Addr, _, user, _ string, _ net.Addr, _ int) {
	q.mu.Lock()
	q.live[user]++
	q.mu.Unlock()
}

func (q *quota) deleted(_, _ net.Addr, _, user, _ string) {
	q.mu.Lock()
	if q.live[user] <= 1 {
		delete(q.live, user)
	} else {
		q.live[user]--
	}
	q.mu.Unlock()
}

// count is the live allocation count of one user.
func (q *quota) count(user string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.live[user]
}
