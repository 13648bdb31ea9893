package testsvc

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Redis is a throwaway redis-server (or, failing that, the machine's).
type Redis struct {
	// URL is for the client: redis://127.0.0.1:PORT/0.
	URL  string
	Addr string

	bin, dir string
	port     int
	p        *proc
	external bool
}

// StartRedis starts a redis-server that keeps nothing on disk, on a free
// loopback port, and stops it at the end of t.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	bin, err := binary("redis-server", "/usr/bin", "/usr/local/bin")
	if err != nil {
		t.Fatalf("testsvc: %v", err)
	}
	r := &Redis{bin: bin, dir: t.TempDir()}
	var startErr error
	for try := 0; try < 3; try++ { // a free port may be taken before redis binds it
		if r.port, startErr = freePort(); startErr != nil {
			break
		}
		if startErr = r.start(); startErr == nil {
			break
		}
	}
	if startErr != nil {
		r.fallback(t, startErr)
		return r
	}
	t.Cleanup(func() {
		if r.p != nil {
			_ = r.p.stop(syscall.SIGTERM)
		}
	})
	t.Logf("testsvc: redis-server %s (%s)", r.Addr, bin)
	return r
}

func (r *Redis) start() error {
	r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port))
	r.URL = "redis://" + r.Addr + "/0"
	cmd := exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", r.dir, "--daemonize", "no", "--loglevel", "notice")
	p, err := startProc("redis-server", cmd, "Ready to accept connections")
	if err != nil {
		return err
	}
	r.p = p
	return nil
}

// fallback uses the machine's Redis when ours could not start.
func (r *Redis) fallback(t testing.TB, why error) {
	t.Helper()
	const addr = "127.0.0.1:6379"
	if err := redisPing(addr); err != nil {
		t.Fatalf("testsvc: redis-server did not start: %v\nand the machine's Redis at %s does not answer either: %v", why, addr, err)
	}
	t.Logf("testsvc: FALLBACK to the machine's Redis at %s because the throwaway server did not start: %v", addr, why)
	r.Addr, r.URL, r.external = addr, "redis://"+addr+"/0", true
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
	if r.external {
		t.Fatalf("testsvc: Redis.Stop: %v", errExternal)
	}
	if err := r.p.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("testsvc: %v", err)
	}
	if err := dialable(r.Addr); err == nil {
		t.Fatalf("testsvc: %s still accepts connections after redis-server stopped", r.Addr)
	}
}

// Start starts it again on the same port, empty (nothing is persisted).
func (r *Redis) Start(t testing.TB) {
	t.Helper()
	if r.external {
		t.Fatalf("testsvc: Redis.Start: %v", errExternal)
	}
	if err := r.start(); err != nil {
		t.Fatalf("testsvc: restart: %v", err)
	}
}

// Restart is Stop then Start.
func (r *Redis) Restart(t testing.TB) {
	t.Helper()
	r.Stop(t)
	r.Start(t)
}
