package testsvc

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"crisisroom/internal/localsvc"
)

// Redis is a throwaway redis-server (or, failing that, the machine's).
type Redis struct {
	// URL is for the client: redis://127.0.0.1:PORT/0.
	URL  string
	Addr string

	svc *localsvc.Redis // nil when external
}

// StartRedis starts a redis-server that keeps nothing on disk, on a free
// loopback port, and stops it at the end of t.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	svc, err := localsvc.StartRedis(t.TempDir())
	if errors.Is(err, localsvc.ErrNotInstalled) {
		t.Fatalf("testsvc: %v", err)
	}
	if err != nil {
		return redisFallback(t, err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	t.Logf("testsvc: redis-server %s", svc.Addr)
	return &Redis{URL: svc.URL, Addr: svc.Addr, svc: svc}
}

// redisFallback uses the machine's Redis when ours could not start.
func redisFallback(t testing.TB, why error) *Redis {
	t.Helper()
	const addr = "127.0.0.1:6379"
	if err := redisPing(addr); err != nil {
		t.Fatalf("testsvc: redis-server did not start: %v\nand the machine's Redis at %s does not answer either: %v", why, addr, err)
	}
	t.Logf("testsvc: FALLBACK to the machine's Redis at %s because the throwaway server did not start: %v", addr, why)
	return &Redis{Addr: addr, URL: "redis://" + addr + "/0"}
}

// redisPing sends PING over a raw connection.
func redisPing(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// Stop shuts the server down (clients see their connections close).
func (r *Redis) Stop(t testing.TB) {
	t.Helper()
	if r.svc == nil {
		t.Fatalf("testsvc: Redis.Stop: %v", errExternal)
	}
	if err := r.svc.Stop(); err != nil {
		t.Fatalf("testsvc: %v", err)
	}
}

// Start starts it again on the same port, empty (nothing is persisted).
func (r *Redis) Start(t testing.TB) {
	t.Helper()
	if r.svc == nil {
		t.Fatalf("testsvc: Redis.Start: %v", errExternal)
	}
	if err := r.svc.Start(); err != nil {
		t.Fatalf("testsvc: restart: %v", err)
	}
}

// Restart is Stop then Start.
func (r *Redis) Restart(t testing.TB) {
	t.Helper()
	r.Stop(t)
	r.Start(t)
}
