package access_test

import (
	"fmt"
	"testing"
	"time"

	"crisisroom/access"
	"crisisroom/access/limitertest"
)

// TestLoginLimiter runs the limiters' conformance suite on the in-memory
// one.
func TestLoginLimiter(t *testing.T) {
	limitertest.Run(t, func(_ *testing.T, lim access.LoginLimits) access.Limiter { return access.NewLoginLimiter(lim) })
}

// TestIPKey: an IPv4-mapped address is its IPv4 address, IPv6 counts by
// /64, anything else is itself.
func TestIPKey(t *testing.T) {
	for in, want := range map[string]string{"::ffff:192.0.2.1": "192.0.2.1", "192.0.2.1": "192.0.2.1",
		"2001:db8:1:2::5": "2001:db8:1:2::/64", "not an ip": "not an ip"} {
		if got := access.IPKey(in); got != want {
			t.Errorf("IPKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLoginMemoryBounded: whatever is sent, each table stays under its
// cap, and refilled buckets are dropped.
func TestLoginMemoryBounded(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	lim := access.DefaultLoginLimits()
	lim.MaxKeys = 100
	l := access.NewLoginLimiter(lim)
	now := t0
	for i := range 10_000 {
		if ok, _ := l.Allow(fmt.Sprint("user", i), fmt.Sprintf("10.0.%d.%d", i/256, i%256), now); ok {
			l.Record(fmt.Sprint("user", i), fmt.Sprintf("10.0.%d.%d", i/256, i%256), false, now)
		}
		now = now.Add(time.Millisecond)
	}
	if ips, pairs, accounts := l.Len(); ips > lim.MaxKeys || pairs > lim.MaxKeys || accounts > lim.MaxKeys {
		t.Fatalf("tables hold %d, %d, %d keys; cap %d", ips, pairs, accounts, lim.MaxKeys)
	}
	// Once every bucket has refilled, the next sweep forgets them all.
	now = now.Add(time.Hour)
	l.Allow("x", "192.0.2.1", now)
	if ips, pairs, accounts := l.Len(); ips != 1 || pairs != 1 || accounts != 1 {
		t.Fatalf("after refill: %d, %d, %d keys, want only the last attempt's", ips, pairs, accounts)
	}
}
