package turnserver

import (
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestPeerPolicyCheck(t *testing.T) {
	allow, err := parsePrefixes([]string{"10.1.0.0/16", "192.168.1.7"})
	if err != nil {
		t.Fatal(err)
	}
	p := &peerPolicy{allow: allow, relayIP: netip.MustParseAddr("192.0.2.2")}
	cases := map[string]verdict{
		"8.8.8.8":          open,
		"2a01:e0a::1":      open,
		"10.1.2.3":         open, // allow-listed
		"192.168.1.7":      open, // allow-listed single address
		"::ffff:10.1.2.3":  open, // IPv4-mapped is judged as IPv4
		"192.0.2.2":        relayOnly,
		"127.0.0.1":        refused,
		"127.9.9.9":        refused,
		"10.2.0.1":         refused,
		"172.16.0.1":       refused,
		"192.168.1.8":      refused,
		"169.254.169.254":  refused, // cloud metadata
		"100.64.0.1":       refused,
		"224.0.0.251":      refused,
		"239.1.1.1":        refused,
		"255.255.255.255":  refused,
		"0.0.0.0":          refused,
		"::1":              refused,
		"fe80::1":          refused,
		"fd00::2":          refused,
		"ff02::1":          refused,
		"::ffff:127.0.0.1": refused,
		"64:ff9b::a00:1":   refused, // NAT64 of 10.0.0.1
	}
	for ip, want := range cases {
		if got := p.check(net.ParseIP(ip)); got != want {
			t.Errorf("check(%s) = %d, want %d", ip, got, want)
		}
	}
	if _, err := parsePrefixes([]string{"not-a-cidr"}); err == nil {
		t.Error("bad allow-peers entry accepted")
	}
}

// udpSink is a UDP socket on addr that reports what it receives.
func udpSink(t *testing.T, addr string) (net.PacketConn, <-chan string) {
	t.Helper()
	pc, err := net.ListenPacket("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	got := make(chan string, 8)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			got <- string(buf[:n])
		}
	}()
	return pc, got
}

// TestLoopbackPeerRefused: without an allow-list, a relay cannot be pointed
// at 127.0.0.0/8 (CreatePermission fails with 403) nor at a non-relay port
// of the relay's own address; with 127.0.0.0/8 allow-listed the same peer
// is reached.
func TestLoopbackPeerRefused(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		s := startTest(t, nil)
		sinkConn, got := udpSink(t, "127.0.0.2:0")
		c := memberClient(t, s, "m1")
		relay, err := c.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		defer relay.Close()
		err = c.CreatePermission(sinkConn.LocalAddr())
		if err == nil || !strings.Contains(err.Error(), "403") {
			t.Fatalf("CreatePermission(%s) = %v, want 403", sinkConn.LocalAddr(), err)
		}
		if _, err := relay.WriteTo([]byte("x"), sinkConn.LocalAddr()); err == nil {
			t.Error("relayed write to a refused peer reported no error")
		}
		// The relay's own address (127.0.0.1 here) is permitted, but only
		// its relay ports: a service on another port gets nothing.
		service, serviceGot := udpSink(t, "127.0.0.1:0")
		if err := c.CreatePermission(service.LocalAddr()); err != nil {
			t.Fatalf("permission for the relay's own address: %v", err)
		}
		other := memberClient(t, s, "m2")
		otherRelay, err := other.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		defer otherRelay.Close()
		if err := other.CreatePermission(relay.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		if _, err := relay.WriteTo([]byte("to-service"), service.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		if _, err := relay.WriteTo([]byte("to-relay"), otherRelay.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		// Relay to relay arrives: that is the path of two relayed members.
		readRelay(t, otherRelay, "to-relay")
		// Sent before "to-relay" on the same path, so it would have arrived
		// by now; a short extra bound covers scheduling.
		select {
		case m := <-serviceGot:
			t.Fatalf("non-relay port on the relay address received %q", m)
		case m := <-got:
			t.Fatalf("refused peer received %q", m)
		case <-time.After(200 * time.Millisecond):
		}
	})
	t.Run("allow-listed", func(t *testing.T) {
		s := startTest(t, func(c *Config) { c.AllowPeers = []string{"127.0.0.0/8"} })
		sinkConn, got := udpSink(t, "127.0.0.2:0")
		c := memberClient(t, s, "m1")
		relay, err := c.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		defer relay.Close()
		if err := c.CreatePermission(sinkConn.LocalAddr()); err != nil {
			t.Fatalf("CreatePermission with allow-list: %v", err)
		}
		if _, err := relay.WriteTo([]byte("hello"), sinkConn.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-got:
			if m != "hello" {
				t.Fatalf("got %q", m)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("allow-listed peer received nothing")
		}
	})
}

func readRelay(t *testing.T, pc net.PacketConn, want string) {
	t.Helper()
	_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatalf("relay read: %v", err)
	}
	if string(buf[:n]) != want {
		t.Fatalf("relay read %q, want %q", buf[:n], want)
	}
}

// TestCredentials: the built-in server takes what Credentials mints and
// refuses wrong, expired and malformed ones.
func TestCredentials(t *testing.T) {
	s := startTest(t, nil)
	user, pass := memberCreds("m1")
	expUser, expPass := Credentials(testSecret, "m1", time.Now().Add(-time.Second))
	otherUser, otherPass := Credentials("another-secret", "m1", time.Now().Add(time.Minute))
	cases := []struct {
		name, user, pass string
		ok               bool
	}{
		{"valid", user, pass, true},
		{"wrong password", user, pass[:len(pass)-2] + "AA", false},
		{"expired", expUser, expPass, false},
		{"other secret", otherUser, otherPass, false},
		{"no member part", strings.Split(user, ":")[0], hmacPassword(testSecret, strings.Split(user, ":")[0]), false},
		{"not a time", "soon:m1", hmacPassword(testSecret, "soon:m1"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			relay, err := turnClient(t, s, tc.user, tc.pass).Allocate()
			if tc.ok != (err == nil) {
				t.Fatalf("Allocate: err = %v, want ok=%v", err, tc.ok)
			}
			if err == nil {
				_ = relay.Close()
			}
		})
	}
}

// Credentials are the coturn use-auth-secret scheme: a vector computed
// independently (openssl: printf '1700000000:alice' | openssl dgst -sha1
// -hmac 'north' -binary | base64).
func TestCredentialsScheme(t *testing.T) {
	u, p := Credentials("north", "alice", time.Unix(1700000000, 0))
	if u != "1700000000:alice" {
		t.Fatalf("username %q", u)
	}
	if want := "Cd/49soE35ICqcJF/bCTn8Z4OyE="; p != want {
		t.Fatalf("password %q, want %q", p, want)
	}
}

// TestQuota: a member gets MaxAllocsPerUser allocations, the next is refused
// (486), another member is unaffected, and releasing one frees a slot.
func TestQuota(t *testing.T) {
	s := startTest(t, func(c *Config) { c.MaxAllocsPerUser = 2 })
	var relays []net.PacketConn
	for range 2 {
		r, err := memberClient(t, s, "m1").Allocate()
		if err != nil {
			t.Fatal(err)
		}
		relays = append(relays, r)
	}
	if n := s.Allocations("m1"); n != 2 {
		t.Fatalf("m1 has %d allocations, want 2", n)
	}
	_, err := memberClient(t, s, "m1").Allocate()
	if err == nil || !strings.Contains(err.Error(), "486") {
		t.Fatalf("third allocation: %v, want 486 Allocation Quota Reached", err)
	}
	r, err := memberClient(t, s, "m2").Allocate()
	if err != nil {
		t.Fatalf("other member: %v", err)
	}
	defer r.Close()

	_ = relays[0].Close() // sends a zero-lifetime Refresh
	waitFor(t, func() bool { return s.Allocations("m1") == 1 })
	r3, err := memberClient(t, s, "m1").Allocate()
	if err != nil {
		t.Fatalf("after a release: %v", err)
	}
	_ = r3.Close()
	_ = relays[1].Close()
}

// waitFor polls cond: the deallocation is asynchronous on the server and
// pion offers no notification to wait on.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestExpiryOnAllocateOnly: credentials that expire during a call keep the
// allocation alive (CreatePermission still authenticates) but cannot open
// a new allocation.
func TestExpiryOnAllocateOnly(t *testing.T) {
	var skew atomic.Int64
	s := startTest(t, func(c *Config) {
		c.now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	user, pass := memberCreds("m1") // valid 10 minutes
	c := turnClient(t, s, user, pass)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	skew.Store(int64(time.Hour))
	peer, _ := udpSink(t, "127.0.0.1:0") // the relay address: permitted
	if err := c.CreatePermission(peer.LocalAddr()); err != nil {
		t.Fatalf("CreatePermission on a live allocation after expiry: %v", err)
	}
	if _, err := turnClient(t, s, user, pass).Allocate(); err == nil {
		t.Fatal("new allocation with expired credentials accepted")
	}
}
