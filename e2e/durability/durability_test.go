// Package durability checks the declaration intake's promises on the real
// binary: a 201 means on disk (SIGKILL right after it loses nothing), one
// idempotency key is one declaration across retries and restarts, and
// totals are exact to the unit under concurrent load.
package durability

import (
	"bufio"
	"bytes"
	"context"
	"crisisroom/internal/testgeo"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestDurability builds the binary once and runs every scenario on it.
func TestDurability(t *testing.T) {
	env := newEnv(t)
	t.Run("KillNineAfter201", env.testKillNine)
	t.Run("IdempotencyAcrossRestart", env.testIdempotency)
	t.Run("FiftyDeclarantsExactTotals", env.testConcurrency)
}

// env is what every scenario shares: the built binary and the territory.
type env struct {
	bin, geojson, communesCSV string
	codes                     []string // every commune code, in file order
	yesterday, dayBefore      string   // in Europe/Paris, the server's "today"
}

func newEnv(t *testing.T) *env {
	geo := sharedGeo(t)
	e := &env{geojson: filepath.Join(geo, "communes-56-morbihan.geojson"),
		communesCSV: filepath.Join(geo, "communes-56-morbihan-cog2021.csv")}
	e.codes = readCodes(t, e.communesCSV)
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().In(loc)
	e.yesterday, e.dayBefore = now.AddDate(0, 0, -1).Format("2006-01-02"), now.AddDate(0, 0, -2).Format("2006-01-02")
	e.bin = filepath.Join(t.TempDir(), "crisisroom")
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to build the binary: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gobin, "build", "-o", e.bin, "crisisroom/cmd/crisisroom")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return e
}

// sharedGeo is the reference territory in testdata/geo (internal/testgeo).
func sharedGeo(t *testing.T) string { return testgeo.Dir(t) }

func readCodes(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, r := range recs[1:] {
		codes = append(codes, r[0])
	}
	if len(codes) != 250 {
		t.Fatalf("%d communes in %s, want 250", len(codes), path)
	}
	return codes
}

func (e *env) territoryArgs(data string) []string {
	return []string{"--data", data, "--territory", e.geojson, "--communes", e.communesCSV}
}

// links runs `crisisroom links communes CODE... --format csv` and returns
// code → token.
func (e *env) communeLinks(t *testing.T, data string, codes []string) map[string]string {
	t.Helper()
	args := append(append([]string{"links", "communes"}, codes...), "--format", "csv")
	out := e.run(t, append(args, e.territoryArgs(data)...)...)
	r := csv.NewReader(strings.NewReader(out))
	r.Comma = ';'
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("links csv: %v\n%s", err, out)
	}
	if len(recs) != len(codes)+1 || strings.Join(recs[0], ";") != "code;nom;url;token" {
		t.Fatalf("links csv: %d records, header %v", len(recs), recs[0])
	}
	tokens := map[string]string{}
	for _, rec := range recs[1:] {
		if !strings.HasSuffix(rec[2], "#t="+rec[3]) {
			t.Fatalf("url %q does not carry token %q", rec[2], rec[3])
		}
		tokens[rec[0]] = rec[3]
	}
	return tokens
}

// operatorToken mints a host link of the main room: an operator.
func (e *env) operatorToken(t *testing.T, data string) string {
	t.Helper()
	out := strings.TrimSpace(e.run(t, append([]string{"links", "room", "main", "--role", "host"}, e.territoryArgs(data)...)...))
	_, tok, ok := strings.Cut(out, "#t=")
	if !ok {
		t.Fatalf("no token in %q", out)
	}
	return tok
}

func (e *env) run(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("crisisroom %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// server is one run of `crisisroom serve` as a child process.
type server struct {
	cmd    *exec.Cmd
	base   string
	exited chan struct{}
	mu     sync.Mutex
	log    []string // stderr, for failure messages
}

// start runs the server on a free loopback port (the kernel picks it) and
// returns once it listens: the "listening" log line carries the address.
func (e *env) start(t *testing.T, data string) *server {
	t.Helper()
	// The rate limits are off: 50 declarants × 40 declarations all come
	// from 127.0.0.1 here, where in the field they come from 50 places.
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--metrics-addr", "", "--sfu-udp", "127.0.0.1:0", "--sfu-tcp", "", "--log-level", "info", "--rate-ip", "0", "--rate-token", "0"}, e.territoryArgs(data)...)
	s := &server{cmd: exec.Command(e.bin, args...), exited: make(chan struct{})}
	s.cmd.Stdout = io.Discard
	pipe, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.kill9(t) })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.log = append(s.log, line)
			s.mu.Unlock()
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
		t.Fatalf("server exited before listening:\n%s", s.logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("server not listening after 30s:\n%s", s.logs())
	}
	return s
}

func (s *server) logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.log, "\n")
}

// signalKill sends SIGKILL without waiting: no handler, no flush, no
// graceful anything.
func (s *server) signalKill() { _ = s.cmd.Process.Signal(syscall.SIGKILL) }

func (s *server) kill9(t *testing.T) {
	s.signalKill()
	s.wait(t)
}

// stop is the graceful way (SIGTERM), as systemd or docker stop do it.
func (s *server) stop(t *testing.T) {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	s.wait(t)
}

func (s *server) wait(t *testing.T) {
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not exit:\n%s", s.logs())
	}
}

// client is an HTTP client with keep-alive for many concurrent posters.
type client struct{ hc *http.Client }

func newClient(t *testing.T) *client {
	tr := &http.Transport{MaxIdleConns: 128, MaxIdleConnsPerHost: 128, IdleConnTimeout: 30 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return &client{hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// decl is one declaration as a client keeps it until acknowledged.
type decl struct {
	Commune        string `json:"commune"`
	Date           string `json:"date"`
	Place          string `json:"place"`
	Count          int    `json:"count"`
	Note           string `json:"note"`
	IdempotencyKey string `json:"idempotency_key"`
	token          string
	id             string // set once acknowledged
}

type stored struct {
	ID             string `json:"id"`
	Commune        string `json:"commune"`
	Date           string `json:"date"`
	Place          string `json:"place"`
	Count          int    `json:"count"`
	IdempotencyKey string `json:"idempotency_key"`
}

// post sends d; an error means no answer (the declaration is not
// acknowledged and the client must retry it with the same key).
func (c *client) post(base string, d decl) (int, stored, error) {
	b, _ := json.Marshal(d)
	req, err := http.NewRequest("POST", base+"/api/v1/declarations", bytes.NewReader(b))
	if err != nil {
		return 0, stored{}, err
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, stored{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, stored{}, err
	}
	var s stored
	if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, &s); err != nil {
			return resp.StatusCode, s, fmt.Errorf("answer %q: %w", raw, err)
		}
	} else {
		return resp.StatusCode, s, fmt.Errorf("status %d: %s", resp.StatusCode, raw)
	}
	return resp.StatusCode, s, nil
}

func (c *client) getJSON(t *testing.T, base, path, token string, v any) int {
	t.Helper()
	req, err := http.NewRequest("GET", base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, v); err != nil {
			t.Fatalf("GET %s: %v in %q", path, err, raw)
		}
	}
	return resp.StatusCode
}

type communeState struct {
	Code    string         `json:"code"`
	Total   int            `json:"total"`
	ByPlace map[string]int `json:"by_place"`
}

// totals returns the département total and every commune's, as the
// operator sees them.
func (c *client) totals(t *testing.T, base, operator string) (int, map[string]int) {
	t.Helper()
	var all struct {
		Total    int            `json:"total"`
		Communes []communeState `json:"communes"`
	}
	if st := c.getJSON(t, base, "/api/v1/aggregates", operator, &all); st != http.StatusOK {
		t.Fatalf("aggregates: status %d", st)
	}
	per := map[string]int{}
	for _, cs := range all.Communes {
		if cs.Total != 0 {
			per[cs.Code] = cs.Total
		}
	}
	return all.Total, per
}

func newKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var places = []string{"domicile", "ehpad", "hopital", "autre"}
