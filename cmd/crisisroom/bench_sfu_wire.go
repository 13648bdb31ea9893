package main

import (
	"math/bits"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// wireCount counts the datagrams that cross the clients' sockets. The
// forwarder's own sockets are out of reach (the sfu package opens its
// own), so what it takes in is counted where the publishers send, and
// what it sends where the receivers read: the same place in both runs.
type wireCount struct {
	pkts, bytes atomic.Uint64
}

func (w *wireCount) add(n int) {
	w.pkts.Add(1)
	w.bytes.Add(uint64(n))
}

// countingNet is pion's standard network with every UDP socket wrapped
// so that it counts either what it sends or what it receives.
type countingNet struct {
	*stdnet.Net
	sent, recv *wireCount // nil: not counted
	ports      *portSet   // the clients' local ports, to tell their drops from the forwarder's
}

// portSet is the UDP ports the clients listen on.
type portSet struct {
	mu sync.Mutex
	m  map[int]bool
}

func (p *portSet) add(port int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[int]bool{}
	}
	p.m[port] = true
}

func (p *portSet) has(port int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[port]
}

func newCountingNet(sent, recv *wireCount, ports *portSet) (*countingNet, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return &countingNet{Net: n, sent: sent, recv: recv, ports: ports}, nil
}

func (n *countingNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	raw, _ := c.(*net.UDPConn)
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok {
		n.ports.add(a.Port)
	}
	return &countingConn{UDPConn: c, raw: raw, sent: n.sent, recv: n.recv}, nil
}

// countingConn also offers the AddrPort calls, so that ICE keeps its
// allocation-free path (it looks for them on the conn it is given).
type countingConn struct {
	transport.UDPConn
	raw        *net.UDPConn
	sent, recv *wireCount
}

func (c *countingConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, a, err := c.UDPConn.ReadFrom(b)
	if err == nil && c.recv != nil {
		c.recv.add(n)
	}
	return n, a, err
}

func (c *countingConn) WriteTo(b []byte, a net.Addr) (int, error) {
	n, err := c.UDPConn.WriteTo(b, a)
	if err == nil && c.sent != nil {
		c.sent.add(n)
	}
	return n, err
}

func (c *countingConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	if c.raw == nil {
		n, a, err := c.ReadFrom(b)
		ua, _ := a.(*net.UDPAddr)
		if ua == nil {
			return n, netip.AddrPort{}, err
		}
		return n, ua.AddrPort(), err
	}
	n, a, err := c.raw.ReadFromUDPAddrPort(b)
	if err == nil && c.recv != nil {
		c.recv.add(n)
	}
	return n, a, err
}

func (c *countingConn) WriteToAddrPort(b []byte, a netip.AddrPort) (int, error) {
	if c.raw == nil {
		return c.WriteTo(b, net.UDPAddrFromAddrPort(a))
	}
	n, err := c.raw.WriteToUDPAddrPort(b, a)
	if err == nil && c.sent != nil {
		c.sent.add(n)
	}
	return n, err
}

// latHist is a latency histogram in microseconds with about 3 %
// precision: exact below 64 µs, then 32 buckets per power of two. A
// fixed array, so that recording a packet allocates nothing.
type latHist [latBuckets]uint32

const (
	latBuckets = 64 + 25*32
	latMaxUS   = 1<<31 - 1 // about 36 minutes
)

func latBucket(us int64) int {
	if us < 0 {
		us = 0
	}
	if us < 64 {
		return int(us)
	}
	us = min(us, latMaxUS)
	shift := bits.Len64(uint64(us)) - 6
	return 64 + (shift-1)*32 + int(us>>shift) - 32
}

// latUpper is the largest value a bucket holds, the figure reported.
func latUpper(i int) int64 {
	if i < 64 {
		return int64(i)
	}
	shift := (i-64)/32 + 1
	top := int64((i-64)%32 + 32)
	return (top+1)<<shift - 1
}

func (h *latHist) add(us int64) { h[latBucket(us)]++ }

func (h *latHist) merge(o *latHist) {
	for i, v := range o {
		h[i] += v
	}
}

// quantileUS is the q quantile's bucket bound, -1 for an empty histogram.
func (h *latHist) quantileUS(q float64) int64 {
	var total uint64
	for _, v := range h {
		total += uint64(v)
	}
	if total == 0 {
		return -1
	}
	rank := uint64(q*float64(total) + 0.5)
	rank = max(rank, 1)
	var acc uint64
	for i, v := range h {
		acc += uint64(v)
		if acc >= rank {
			return latUpper(i)
		}
	}
	return latUpper(latBuckets - 1)
}

// seqSet remembers which of the last 32,768 sequence numbers of a stream
// arrived, so that a retransmission is counted once. Bits ahead of the
// highest number are cleared as it advances, so it survives the 16-bit
// wrap.
type seqSet struct {
	bits    [1024]uint64
	hi      uint16
	started bool
}

// add reports whether seq is new.
func (s *seqSet) add(seq uint16) bool {
	if !s.started {
		s.started, s.hi = true, seq
		s.set(seq)
		return true
	}
	d := int16(seq - s.hi)
	if d > 0 {
		for q := s.hi + 1; q != seq; q++ {
			s.clear(q)
		}
		s.hi = seq
		s.set(seq)
		return true
	}
	if s.has(seq) {
		return false
	}
	s.set(seq)
	return true
}

func (s *seqSet) set(q uint16)      { s.bits[q>>6] |= 1 << (q & 63) }
func (s *seqSet) clear(q uint16)    { s.bits[q>>6] &^= 1 << (q & 63) }
func (s *seqSet) has(q uint16) bool { return s.bits[q>>6]&(1<<(q&63)) != 0 }

// udpRcvbufErrors reads the kernel's count of UDP datagrams dropped for a
// full socket receive buffer (this network namespace: other tests on the
// machine count too). On loopback that is where a forwarder that does not
// read fast enough loses packets, before any counter of its own.
func udpRcvbufErrors() uint64 {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0
	}
	var names []string
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "RcvbufErrors" && i < len(f) {
				v, _ := strconv.ParseUint(f[i], 10, 64)
				return v
			}
		}
	}
	return 0
}

// udpDrops sums the kernel's per-socket drop counts (/proc/net/udp: a
// full receive buffer) over this process's UDP sockets, split between
// the clients' (ports in clients) and the rest, the forwarder's. Unlike
// the machine's counter, other processes do not show in it.
func udpDrops(clients *portSet) (cl, fwd uint64) {
	ours := map[string]bool{}
	des, _ := os.ReadDir("/proc/self/fd")
	for _, de := range des {
		l, err := os.Readlink("/proc/self/fd/" + de.Name())
		if ino, ok := strings.CutPrefix(l, "socket:["); ok && err == nil {
			ours[strings.TrimSuffix(ino, "]")] = true
		}
	}
	b, err := os.ReadFile("/proc/self/net/udp")
	if err != nil {
		return 0, 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 13 || !ours[f[9]] {
			continue
		}
		_, hexPort, _ := strings.Cut(f[1], ":")
		port, _ := strconv.ParseUint(hexPort, 16, 16)
		d, _ := strconv.ParseUint(f[12], 10, 64)
		if clients.has(int(port)) {
			cl += d
		} else {
			fwd += d
		}
	}
	return cl, fwd
}
