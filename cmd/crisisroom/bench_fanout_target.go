package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"crisisroom/internal/localsvc"
)

// fanoutInstance is one server the watchers reach, with what was measured
// of it (memory in bytes, 0 like the CPU time when not measured).
type fanoutInstance struct {
	name     string // A, B…: declarations are posted to A
	base     string // http://host:port
	pid      int    // 0 when unknown (--url without --pid)
	watchers int

	rssBefore, rssSubscribed, rssAfter int64
	cpu                                time.Duration
	received, expected                 int64
	lat                                []time.Duration // sorted
}

func (in *fanoutInstance) perConn() float64 {
	return float64(in.rssSubscribed-in.rssBefore) / float64(in.watchers) / 1024
}

// fanoutTarget is what a run measures: one server, or several sharing a
// PostgreSQL and a Redis (cluster mode), every one a child process on
// loopback so that its RSS and CPU time are its own.
type fanoutTarget struct {
	inst     []*fanoutInstance
	token    string
	redisPid int      // cluster mode: the shared redis-server, for its CPU time
	stops    []func() // undone in reverse order
}

func (t *fanoutTarget) stop() {
	for i := len(t.stops) - 1; i >= 0; i-- {
		t.stops[i]()
	}
	t.stops = nil
}

func (t *fanoutTarget) describe() string {
	if len(t.inst) == 1 {
		return fmt.Sprintf("server %s (pid %d)", t.inst[0].base, t.inst[0].pid)
	}
	parts := make([]string, len(t.inst))
	for i, in := range t.inst {
		parts[i] = fmt.Sprintf("%s %s (pid %d)", in.name, in.base, in.pid)
	}
	return fmt.Sprintf("%d instances sharing PostgreSQL and Redis: %s; declarations posted to A", len(t.inst), strings.Join(parts, ", "))
}

// startFanoutTarget starts what o asks for; with --url, it only names the
// running server.
func startFanoutTarget(ctx context.Context, o fanoutOpts) (t *fanoutTarget, err error) {
	if o.url != "" {
		return &fanoutTarget{token: o.token, inst: []*fanoutInstance{{name: "A", base: strings.TrimRight(o.url, "/"), pid: o.pid}}}, nil
	}
	t = &fanoutTarget{}
	defer func() {
		if err != nil {
			t.stop()
		}
	}()
	root, err := os.MkdirTemp("", "crisisroom-bench-fanout-")
	if err != nil {
		return nil, err
	}
	t.stops = append(t.stops, func() { os.RemoveAll(root) }) // last: after every process is gone
	var shared []string
	if o.instances > 1 {
		if shared, err = t.startBackends(root); err != nil {
			return nil, err
		}
	}
	// The host link is minted before the server opens the data dir (SQLite)
	// or the database: a host link may declare for any commune and watch
	// the map, on every instance of a cluster.
	dirA := filepath.Join(root, "A")
	if t.token, err = mintHostLink(ctx, o.bin, dirA, shared); err != nil {
		return nil, err
	}
	for i := range o.instances {
		name := string(rune('A' + i))
		s, err := startFanoutServer(ctx, o.bin, filepath.Join(root, name), o.territory, o.communes, shared)
		if err != nil {
			return nil, fmt.Errorf("instance %s: %w", name, err)
		}
		t.stops = append(t.stops, s.stop)
		t.inst = append(t.inst, &fanoutInstance{name: name, base: s.base, pid: s.cmd.Process.Pid})
	}
	return t, nil
}

// startBackends starts the throwaway Redis and PostgreSQL the instances
// share, and returns the flags that point an instance at them.
func (t *fanoutTarget) startBackends(root string) ([]string, error) {
	if os.Geteuid() == 0 {
		// PostgreSQL runs as the postgres user, who must get through root
		// (0700 from MkdirTemp); the instances' dirs stay 0700.
		if err := os.Chmod(root, 0o711); err != nil {
			return nil, err
		}
	}
	mk := func(name string) (string, error) {
		d := filepath.Join(root, name)
		return d, os.Mkdir(d, 0o700)
	}
	const need = "bench fanout --instances needs redis-server and PostgreSQL (initdb, postgres) on this machine"
	dir, err := mk("redis")
	if err != nil {
		return nil, err
	}
	rd, err := localsvc.StartRedis(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", need, err)
	}
	t.stops = append(t.stops, func() { _ = rd.Stop() })
	t.redisPid = rd.Pid()
	if dir, err = mk("postgres"); err != nil {
		return nil, err
	}
	pg, err := localsvc.StartPostgres(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", need, err)
	}
	t.stops = append(t.stops, func() { _ = pg.Stop() })
	return []string{"--database-url", pg.URL, "--redis-url", rd.URL}, nil
}

// mintHostLink runs `links room main --role host` as an operator would.
func mintHostLink(ctx context.Context, bin, dir string, shared []string) (string, error) {
	args := append([]string{"links", "room", "main", "--role", "host", "--data", dir}, shared...)
	out, err := exec.CommandContext(ctx, bin, args...).Output()
	_, tok, ok := strings.Cut(strings.TrimSpace(string(out)), "#t=")
	if err != nil || !ok {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			out = append(out, ee.Stderr...)
		}
		return "", fmt.Errorf("bench fanout: minting a host link: %v %s", err, out)
	}
	return tok, nil
}

// fanoutServer is one server under test, a child process on loopback.
type fanoutServer struct {
	cmd  *exec.Cmd
	base string
	out  *tailBuffer
	exit chan struct{}
}

func startFanoutServer(ctx context.Context, bin, dir, territory, communes string, shared []string) (*fanoutServer, error) {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	// No rate limits: every watcher and the declaration feed come from
	// 127.0.0.1 with one token here; the bench measures the fan-out.
	args := []string{"serve", "--addr", addr, "--metrics-addr", "", "--sfu-udp", "127.0.0.1:0", "--sfu-tcp", "", "--data", dir, "--territory", territory, "--log-level", "warn", "--rate-ip", "0", "--rate-token", "0"}
	if communes != "" {
		args = append(args, "--communes", communes)
	}
	args = append(args, shared...)
	s := &fanoutServer{cmd: exec.Command(bin, args...), base: "http://" + addr, out: &tailBuffer{}, exit: make(chan struct{})}
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	// A bench killed outright must not leave its server running.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = s.cmd.Wait(); close(s.exit) }()
	if err := s.awaitReady(ctx); err != nil {
		s.stop()
		return nil, fmt.Errorf("bench fanout: server did not start: %w\n%s", err, s.out.String())
	}
	return s, nil
}

// freeLoopbackAddr picks a port the kernel considers free; the server
// binds it a moment later (--addr needs a number to print a usable URL).
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (s *fanoutServer) awaitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", s.base+"/healthz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exit:
			return errors.New("exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// stop asks the server to shut down as an operator would, then kills it
// if it lingers.
func (s *fanoutServer) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exit:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exit
	}
}

// tailBuffer keeps the last 8 KiB of the child's output for error reports.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 8<<10 {
		t.b = append(t.b[:0], t.b[len(t.b)-8<<10:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
