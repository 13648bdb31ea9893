package redislimit_test

import (
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"crisisroom/access"
	"crisisroom/access/limitertest"
	"crisisroom/access/redislimit"
	"crisisroom/internal/testsvc"
)

func newLimiter(t *testing.T, url, prefix string, lim access.LoginLimits) *redislimit.Limiter {
	t.Helper()
	l, err := redislimit.New(redislimit.Options{URL: url, Prefix: prefix}, lim, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestRedisLimiter runs the limiters' conformance suite on a throwaway
// redis-server, each limiter under its own key prefix.
func TestRedisLimiter(t *testing.T) {
	rd := testsvc.StartRedis(t)
	var n atomic.Int64
	limitertest.Run(t, func(t *testing.T, lim access.LoginLimits) access.Limiter {
		return newLimiter(t, rd.URL, fmt.Sprintf("test%d:", n.Add(1)), lim)
	})
}

// TestRedisLimiterSharedByInstances: two instances (two limiters on one
// Redis) spend from the same budgets: a flood split between them reaches
// the password check as often as on one, not twice as often.
func TestRedisLimiterSharedByInstances(t *testing.T) {
	rd := testsvc.StartRedis(t)
	lim := access.DefaultLoginLimits()
	a := newLimiter(t, rd.URL, "shared:", lim)
	b := newLimiter(t, rd.URL, "shared:", lim)
	now := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	allowed := 0
	for i := range 200 {
		l := a
		if i%2 == 1 {
			l = b
		}
		// A distributed attack on one account through both instances.
		ip := fmt.Sprintf("10.1.%d.%d", i/250, i%250)
		if ok, _ := l.Allow("alice", ip, now); ok {
			allowed++
			l.Record("alice", ip, false, now)
		}
	}
	if allowed != int(lim.PerAccount.Burst) {
		t.Fatalf("%d guesses through two instances, want one account budget of %v", allowed, lim.PerAccount.Burst)
	}
}

// TestRedisLimiterFallsBack: with Redis gone, logins are still limited,
// by the instance alone, and nobody waits on the dead connection.
func TestRedisLimiterFallsBack(t *testing.T) {
	rd := testsvc.StartRedis(t)
	lim := access.DefaultLoginLimits()
	l := newLimiter(t, rd.URL, "fallback:", lim)
	now := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	if ok, _ := l.Allow("alice", "192.0.2.1", now); !ok {
		t.Fatal("first attempt refused")
	}
	rd.Stop(t)
	start := time.Now()
	allowed := 0
	for range 20 {
		if ok, _ := l.Allow("bob", "192.0.2.2", now); ok {
			allowed++
			l.Record("bob", "192.0.2.2", false, now)
		}
	}
	if allowed != int(lim.PerPair.Burst) {
		t.Fatalf("%d of 20 wrong passwords through with Redis down, want the local pair budget %v", allowed, lim.PerPair.Burst)
	}
	elapsed := time.Since(start)
	t.Logf("20 attempts with Redis down: %v", elapsed.Round(time.Millisecond))
	// The first waits for the dead connection (at most the call's timeout,
	// 300 ms); the others skip Redis for RetryAfterFailure.
	if elapsed > time.Second {
		t.Fatalf("20 attempts with Redis down took %v: logins wait on the dead connection", elapsed)
	}

	// Redis back: after the pause, the budgets are shared again. carol
	// fails once here and Burst-1 times on another instance; her next
	// attempt here is refused.
	rd.Start(t)
	time.Sleep(redislimit.RetryAfterFailure + 100*time.Millisecond) // the pause after a failure
	other := newLimiter(t, rd.URL, "fallback:", lim)
	for i := range int(lim.PerPair.Burst) {
		l := l
		if i > 0 {
			l = other
		}
		if ok, _ := l.Allow("carol", "192.0.2.3", now); !ok {
			t.Fatalf("carol's failure %d refused", i+1)
		}
		l.Record("carol", "192.0.2.3", false, now)
	}
	if ok, _ := l.Allow("carol", "192.0.2.3", now); ok {
		t.Fatal("after Redis came back, the instances do not share carol's budget")
	}
}
