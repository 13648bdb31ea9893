package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"crisisroom/app"
	"crisisroom/rooms"
)

// testServer is the real crisisroom server on loopback, reached through a
// proxy that the test can cut to simulate a network outage.
type testServer struct {
	app   *app.App
	http  *httptest.Server
	proxy *cutProxy
	be    *app.Backends
	cfg   app.Config
	log   *slog.Logger
}

// startServer builds the server exactly as `crisisroom serve` does, with a
// fresh data dir and the given room capacity and resume window; opts change
// any other setting (e.g. the territory). Browsers talk to the proxy;
// PublicURL points there so that minted links do too.
func startServer(t *testing.T, capacity int, resumeWindow time.Duration, opts ...func(*app.Config)) *testServer {
	t.Helper()
	proxy := newCutProxy(t)
	cfg := app.DefaultConfig()
	cfg.SFUUDP, cfg.SFUTCP = "127.0.0.1:0", "" // no fixed port: test processes run side by side
	cfg.DataDir = t.TempDir()
	cfg.RoomCapacity = capacity
	cfg.ResumeWindow = resumeWindow
	cfg.PublicURL = "http://" + proxy.addr()
	cfg.Addr = "127.0.0.1:0"
	// Media goes through the built-in TURN on loopback, relay only: Chromium
	// never gathers candidates on this machine's other interfaces, so every
	// test packet stays on 127.0.0.0/8.
	cfg.TURNEnabled = true
	cfg.TURNListenUDP, cfg.TURNListenTCP = "127.0.0.1:0", "127.0.0.1:0"
	cfg.TURNAllowPeers = []string{"127.0.0.0/8"}
	cfg.ICEPolicy = "relay"
	for _, o := range opts {
		o(&cfg)
	}
	logs := &syncBuffer{}
	t.Cleanup(func() { // registered first, so it runs after the shutdown below
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ts := &testServer{proxy: proxy, cfg: cfg, log: log}
	ts.boot(t)
	t.Cleanup(func() {
		proxy.close()
		ts.stop()
	})
	return ts
}

// boot opens the back ends on the data dir and serves a new app behind the
// proxy.
func (s *testServer) boot(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	be, err := app.OpenBackends(ctx, s.cfg)
	if err != nil {
		t.Fatalf("open backends: %v", err)
	}
	a, err := app.New(ctx, s.cfg, be, s.log)
	if err != nil {
		t.Fatalf("new app: %v", err)
	}
	if _, _, err := a.Bootstrap(ctx); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := httptest.NewUnstartedServer(a.Handler())
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	s.app, s.http, s.be = a, srv, be
	s.proxy.start(l.Addr().String())
}

// stop shuts the app down as SIGTERM does: clients are told to reconnect.
func (s *testServer) stop() {
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.app.Shutdown(sctx)
	s.http.Close()
	_ = s.be.Close()
}

// restart stops the server and starts a new one on the same data dir, as
// an operator's restart for an update does.
func (s *testServer) restart(t *testing.T) {
	t.Helper()
	s.stop()
	s.boot(t)
}

// link mints a participant link to the standing room.
func (s *testServer) link(t *testing.T, label string) string {
	t.Helper()
	return s.linkAs(t, label, rooms.RoleParticipant)
}

// linkAs mints a room link of role for the main room.
func (s *testServer) linkAs(t *testing.T, label, role string) string {
	t.Helper()
	u, err := s.app.NewRoomLink(context.Background(), app.MainRoom, role, label, time.Hour)
	if err != nil {
		t.Fatalf("mint link: %v", err)
	}
	return u
}

// cutProxy forwards TCP to the server; cut() drops every open connection at
// once, which a browser sees as an abnormal close (1006) of its WebSocket.
type cutProxy struct {
	t  *testing.T
	l  net.Listener
	wg sync.WaitGroup

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	down    bool   // refuse new connections, as an unreachable server would
	backend string // where new connections go
	started bool
}

func newCutProxy(t *testing.T) *cutProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	return &cutProxy{t: t, l: l, conns: map[net.Conn]struct{}{}}
}

func (p *cutProxy) addr() string { return p.l.Addr().String() }

// start points the proxy at backend; the first call starts accepting.
func (p *cutProxy) start(backend string) {
	p.mu.Lock()
	p.backend = backend
	started := p.started
	p.started = true
	p.mu.Unlock()
	if started {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := p.l.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.forward(c)
			}()
		}
	}()
}

func (p *cutProxy) forward(c net.Conn) {
	p.mu.Lock()
	down, backend := p.down, p.backend
	p.mu.Unlock()
	if down {
		c.Close()
		return
	}
	b, err := net.DialTimeout("tcp", backend, 2*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.track(c, b)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(b, c)
	go pipe(c, b)
	<-done // either side ending ends both
	c.Close()
	b.Close()
	<-done
	p.untrack(c, b)
}

func (p *cutProxy) track(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
}

func (p *cutProxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
	}
}

func (p *cutProxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
}

// cut closes every connection that is open now; new ones are accepted.
func (p *cutProxy) cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST: no orderly close the browser could read
		}
		c.Close()
	}
	return len(p.conns) / 2
}

func (p *cutProxy) close() {
	p.l.Close()
	p.cut()
	p.wg.Wait()
}

// artifactsDir is $CRISISROOM_ARTIFACTS, or artifacts/ at the module root
// (gitignored).
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CRISISROOM_ARTIFACTS")
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			t.Fatalf("artifacts: %v", err)
		}
		dir = filepath.Join(root, "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts: %v", err)
	}
	return dir
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// syncBuffer collects logs from any goroutine; the test prints them when
// it fails (t.Log from a goroutine outliving the test would panic).
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// bearerDo sends one API request with token (and body as JSON when not
// nil); the caller closes the answer.
func bearerDo(t *testing.T, method, url, token string, body any) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return res
}
