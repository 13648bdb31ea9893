// Package limitertest is the conformance suite every access.Limiter must
// pass: the in-memory one and the Redis one behave alike, budget for
// budget.
package limitertest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"crisisroom/access"
)

var t0 = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

// Run runs the suite; newLimiter returns a fresh limiter with lim's
// budgets (and nothing counted yet) for each subtest.
func Run(t *testing.T, newLimiter func(t *testing.T, lim access.LoginLimits) access.Limiter) {
	t.Run("FloodFromOneIP", func(t *testing.T) { floodFromOneIP(t, newLimiter) })
	t.Run("DistributedAttack", func(t *testing.T) { distributedAttack(t, newLimiter) })
	t.Run("SuccessResetsPair", func(t *testing.T) { successResetsPair(t, newLimiter) })
	t.Run("SprayFromOneIP", func(t *testing.T) { sprayFromOneIP(t, newLimiter) })
	t.Run("IPv6ByPrefix", func(t *testing.T) { ipv6ByPrefix(t, newLimiter) })
	t.Run("Concurrent", func(t *testing.T) { concurrent(t, newLimiter) })
}

type factory = func(t *testing.T, lim access.LoginLimits) access.Limiter

// attempt is one login: Allow, then Record if it went through.
func attempt(l access.Limiter, account, ip string, success bool, now time.Time) (bool, time.Duration) {
	ok, retry := l.Allow(account, ip, now)
	if ok {
		l.Record(account, ip, success, now)
	}
	return ok, retry
}

// floodFromOneIP is the proof at the limiter: 1,000 wrong
// passwords from one address are nearly all refused, the real user still
// gets in from another address, and the flooding address is let in again
// once its window has passed.
func floodFromOneIP(t *testing.T, newLimiter factory) {
	lim := access.DefaultLoginLimits()
	l := newLimiter(t, lim)
	now := t0
	allowed := 0
	for i := range 1000 {
		ok, retry := attempt(l, "alice", "198.51.100.7", false, now)
		if ok {
			allowed++
		} else if retry <= 0 || retry%time.Second != 0 {
			t.Fatalf("attempt %d refused with retryAfter %v, want a positive whole number of seconds", i, retry)
		}
		now = now.Add(10 * time.Millisecond)
	}
	if allowed != int(lim.PerPair.Burst) {
		t.Fatalf("%d of 1000 wrong passwords reached the password check, want %v", allowed, lim.PerPair.Burst)
	}
	if ok, _ := attempt(l, "alice", "203.0.113.9", true, now); !ok {
		t.Fatal("the real user from another address was refused after a flood from one address")
	}
	if ok, retry := l.Allow("alice", "198.51.100.7", now); ok || retry > lim.PerPair.Every+time.Second {
		t.Fatalf("flooding address: allowed=%v retryAfter=%v, want refused for at most %v", ok, retry, lim.PerPair.Every)
	}
	now = now.Add(lim.PerPair.Every)
	if ok, _ := l.Allow("alice", "198.51.100.7", now); !ok {
		t.Fatal("the flooding address is still refused after its window")
	}
}

// distributedAttack: many addresses against one account are held to the
// account's budget; a new address of the real user waits too, but one it
// logged in from before does not.
func distributedAttack(t *testing.T, newLimiter factory) {
	lim := access.DefaultLoginLimits()
	l := newLimiter(t, lim)
	now := t0
	if ok, _ := attempt(l, "alice", "192.0.2.10", true, now); !ok { // alice's desk
		t.Fatal("first login refused")
	}
	allowed := 0
	for i := range 1000 {
		ip := fmt.Sprintf("10.%d.%d.1", i/250, i%250)
		if ok, _ := attempt(l, "alice", ip, false, now); ok {
			allowed++
		}
		now = now.Add(25 * time.Millisecond) // 25 s in all: less than one refill
	}
	if allowed != int(lim.PerAccount.Burst) {
		t.Fatalf("%d guesses from 1000 addresses got through, want %v", allowed, lim.PerAccount.Burst)
	}
	if ok, retry := l.Allow("alice", "198.51.100.99", now); ok || retry <= 0 {
		t.Fatalf("a new address during the attack: allowed=%v retry=%v, want held to the account budget", ok, retry)
	}
	if ok, _ := attempt(l, "alice", "192.0.2.10", true, now); !ok {
		t.Fatal("alice at her usual address was refused during a distributed attack")
	}
	if ok, _ := l.Allow("bob", "198.51.100.99", now); !ok {
		t.Fatal("another account was refused")
	}
}

// successResetsPair: a user who mistypes and then gets it right starts
// again with a full budget.
func successResetsPair(t *testing.T, newLimiter factory) {
	lim := access.DefaultLoginLimits()
	l := newLimiter(t, lim)
	for range int(lim.PerPair.Burst) - 1 {
		attempt(l, "alice", "192.0.2.1", false, t0)
	}
	if ok, _ := attempt(l, "alice", "192.0.2.1", true, t0); !ok {
		t.Fatal("right password refused")
	}
	for i := range int(lim.PerPair.Burst) {
		if ok, _ := attempt(l, "alice", "192.0.2.1", false, t0); !ok {
			t.Fatalf("typo %d after a success refused: the success did not reset the budget", i+1)
		}
	}
	if ok, _ := l.Allow("alice", "192.0.2.1", t0); ok {
		t.Fatal("budget not spent after Burst failures")
	}
}

// sprayFromOneIP: one address trying one password on many accounts is
// held to the address's budget; successes do not count (a shared office
// address logging in all day is not limited).
func sprayFromOneIP(t *testing.T, newLimiter factory) {
	lim := access.DefaultLoginLimits()
	l := newLimiter(t, lim)
	allowed := 0
	for i := range 500 {
		if ok, _ := attempt(l, fmt.Sprint("user", i), "198.51.100.7", false, t0); ok {
			allowed++
		}
	}
	if allowed != int(lim.PerIP.Burst) {
		t.Fatalf("%d accounts tried from one address, want %v", allowed, lim.PerIP.Burst)
	}
	l = newLimiter(t, lim)
	for i := range 500 {
		if ok, _ := attempt(l, fmt.Sprint("user", i), "198.51.100.8", true, t0); !ok {
			t.Fatalf("successful login %d refused", i)
		}
	}
}

// ipv6ByPrefix: addresses of one /64 share a budget.
func ipv6ByPrefix(t *testing.T, newLimiter factory) {
	lim := access.DefaultLoginLimits()
	l := newLimiter(t, lim)
	for i := range int(lim.PerPair.Burst) {
		attempt(l, "alice", fmt.Sprintf("2001:db8:1:2::%x", i+1), false, t0)
	}
	if ok, _ := l.Allow("alice", "2001:db8:1:2:ffff::1", t0); ok {
		t.Fatal("another address of the same /64 got a fresh budget")
	}
	if ok, _ := l.Allow("alice", "2001:db8:1:3::1", t0); !ok {
		t.Fatal("another /64 was refused")
	}
}

// concurrent: Allow's reservation holds under concurrency: no more
// attempts go through than the budget, however many race.
func concurrent(t *testing.T, newLimiter factory) {
	lim := access.DefaultLoginLimits()
	l := newLimiter(t, lim)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				ok, _ := l.Allow("alice", "192.0.2.1", t0)
				if ok {
					mu.Lock()
					allowed++
					mu.Unlock()
					l.Record("alice", "192.0.2.1", false, t0)
				}
			}
		}()
	}
	wg.Wait()
	if allowed != int(lim.PerPair.Burst) {
		t.Fatalf("%d concurrent attempts went through, want %v", allowed, lim.PerPair.Burst)
	}
}
