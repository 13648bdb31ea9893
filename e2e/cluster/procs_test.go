package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"crisisroom/internal/testgeo"
)

// env is the built binary and what every instance is started with.
type env struct {
	bin  string
	args []string // territory, PostgreSQL, Redis
}

func newEnv(t *testing.T, databaseURL, redisURL string) *env {
	t.Helper()
	geojson, communes := testgeo.Files(t) // the repository's testdata/geo
	e := &env{bin: filepath.Join(t.TempDir(), "crisisroom"),
		args: []string{"--territory", geojson, "--communes", communes, "--database-url", databaseURL, "--redis-url", redisURL}}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to build the binary: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, gobin, "build", "-o", e.bin, "crisisroom/cmd/crisisroom").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return e
}

func (e *env) run(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, e.bin, append(args, append([]string{"--data", t.TempDir()}, e.args...)...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("crisisroom %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// communeTokens mints commune links (stored in PostgreSQL: every instance
// honours them) and returns code → token.
func (e *env) communeTokens(t *testing.T, codes ...string) map[string]string {
	t.Helper()
	r := csv.NewReader(strings.NewReader(e.run(t, append(append([]string{"links", "communes"}, codes...), "--format", "csv")...)))
	r.Comma = ';'
	recs, err := r.ReadAll()
	if err != nil || len(recs) != len(codes)+1 {
		t.Fatalf("links csv: %d records, %v", len(recs), err)
	}
	out := map[string]string{}
	for _, rec := range recs[1:] {
		out[rec[0]] = rec[3]
	}
	return out
}

// hostToken mints a host link of the main room: an operator for the API
// and a room token for a map watcher.
func (e *env) hostToken(t *testing.T) string {
	t.Helper()
	out := strings.TrimSpace(e.run(t, "links", "room", "main", "--role", "host"))
	_, tok, ok := strings.Cut(out, "#t=")
	if !ok {
		t.Fatalf("no token in %q", out)
	}
	return tok
}

// server is one `crisisroom serve` process.
type server struct {
	name    string
	cmd     *exec.Cmd
	base    string
	metrics string // base URL of its /metrics listener
	exited  chan struct{}
	mu      sync.Mutex
	log     []string
}

// start runs an instance on a free loopback port (the kernel picks it;
// the "listening" log line tells which) with a data dir of its own.
func (e *env) start(t *testing.T, name string) *server {
	t.Helper()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--sfu-udp", "127.0.0.1:0", "--sfu-tcp", "", "--log-level", "info", "--data", t.TempDir()}, e.args...)
	s := &server{name: name, cmd: exec.Command(e.bin, args...), exited: make(chan struct{})}
	s.cmd.Stdout = io.Discard
	pipe, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.exited
		if t.Failed() {
			t.Logf("instance %s log:\n%s", s.name, s.logs())
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.log = append(s.log, line)
			s.mu.Unlock()
			if i := strings.Index(line, `msg="metrics listening" addr=`); i >= 0 {
				a, _, _ := strings.Cut(line[i+len(`msg="metrics listening" addr=`):], " ")
				s.mu.Lock()
				s.metrics = "http://" + a
				s.mu.Unlock()
			}
			if i := strings.Index(line, "msg=listening addr="); i >= 0 {
				a, _, _ := strings.Cut(line[i+len("msg=listening addr="):], " ")
				addr <- a
			}
		}
		_ = s.cmd.Wait() // after the pipe is drained, as os/exec requires
		close(s.exited)
	}()
	select {
	case a := <-addr:
		s.base = "http://" + a
	case <-s.exited:
		t.Fatalf("%s exited before listening:\n%s", name, s.logs())
	case <-time.After(60 * time.Second):
		t.Fatalf("%s not listening after 60s:\n%s", name, s.logs())
	}
	return s
}

func (s *server) logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	tail := s.log
	if len(tail) > 60 {
		tail = tail[len(tail)-60:]
	}
	return strings.Join(tail, "\n")
}

// kill9 sends SIGKILL: no handler, no goodbye to the sockets.
func (s *server) kill9(t *testing.T) {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not die", s.name)
	}
}

// answer is an HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

var hc = &http.Client{Timeout: 30 * time.Second}

func do(t *testing.T, method, url, token string, body any) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: res.StatusCode, header: res.Header, body: b}
}

// metric returns one series of the instance's /metrics (0 when absent).
func (s *server) metric(t *testing.T, series string) float64 {
	t.Helper()
	s.mu.Lock()
	base := s.metrics // logged before the application's listener
	s.mu.Unlock()
	a := do(t, http.MethodGet, base+"/metrics", "", nil)
	if a.status != http.StatusOK {
		t.Fatalf("%s /metrics: %d", s.name, a.status)
	}
	for _, line := range strings.Split(string(a.body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %q", series, line)
			}
			return f
		}
	}
	return 0
}

// waitMetric polls a counter until it reaches min (a scrape is cheap;
// there is no event to wait on from outside the process).
func (s *server) waitMetric(t *testing.T, series string, min float64, within time.Duration) float64 {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		v := s.metric(t, series)
		if v >= min {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s = %v, want ≥ %v within %s", s.name, series, v, min, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *server) String() string { return fmt.Sprintf("%s(%s)", s.name, s.base) }
