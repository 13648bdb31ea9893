package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"crisisroom/app"
	"crisisroom/declarations"
	"crisisroom/internal/refgeo"
	"crisisroom/store/sqlite"
)

// benchIntake measures the declaration intake: N declarants post over HTTP
// to the real server (in this process, on loopback), each 201 durable
// before it is sent; and, in the same run and on the same disk, the store's
// floor: one row per fsynced transaction, sequentially. The two alternate in
// rounds so that noise from a shared machine falls on both alike. The group
// commit is what should put the first well above the second. The last line,
// intake_ratio=X, is what scripts read.
func benchIntake(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench intake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("declarants", 50, "concurrent declarant clients, one commune link each")
	seconds := fs.Float64("seconds", 5, "measured time of each of the two kinds")
	rounds := fs.Int("rounds", 10, "alternations of the two kinds the seconds are split into")
	geo, list := defaultGeoFiles()
	territoryFile := fs.String("territory", geo, "commune boundaries GeoJSON (default: the repository's testdata/geo, when run in a checkout)")
	communesFile := fs.String("communes", list, "commune list CSV (default: the repository's testdata/geo, when run in a checkout)")
	dir := fs.String("dir", "", "parent of the temporary data dir; put it on the disk you deploy on (default: the system temp dir)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *seconds <= 0 || *rounds < 1 {
		return errors.New("bench intake: --declarants and --rounds at least 1, --seconds positive")
	}
	if *territoryFile == "" {
		return errors.New("bench intake: no testdata/geo found (not in a checkout); pass --territory FILE (and --communes CSV)")
	}
	tmp, err := os.MkdirTemp(*dir, "crisisroom-bench-intake-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	slice := time.Duration(*seconds * float64(time.Second) / float64(*rounds))
	fmt.Fprintf(stdout, "bench intake: %d declarants, %d rounds of %s of each kind, data in %s\n", *n, *rounds, slice, tmp)
	b, err := newIntakeBench(ctx, tmp, *territoryFile, *communesFile, *n)
	if err != nil {
		return err
	}
	defer b.close()
	api, floor, err := b.run(ctx, *rounds, slice)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "intake through the API (HTTP, %d clients, group commit): %d declarations acknowledged (201) in %s = %.1f declarations/s; latency p50=%s p99=%s; cpu %s/declaration (server and clients, %.2f cores)\n",
		*n, api.created, api.elapsed.Round(time.Millisecond), api.rate(), api.p50, api.p99,
		(api.cpu / time.Duration(max(api.created, 1))).Round(time.Microsecond), api.cpu.Seconds()/api.elapsed.Seconds())
	fmt.Fprintf(stdout, "store floor (one row per fsynced transaction, sequential):  %d transactions in %s = %.1f declarations/s\n",
		floor.created, floor.elapsed.Round(time.Millisecond), floor.rate())
	fmt.Fprintf(stdout, "intake_ratio=%.2f\n", api.rate()/floor.rate())
	return nil
}

// defaultGeoFiles is the repository's reference territory (testdata/geo),
// when the bench runs inside a checkout.
func defaultGeoFiles() (geojson, csv string) {
	g, err := refgeo.Find()
	if err != nil {
		return "", ""
	}
	return filepath.Join(g, refgeo.Boundaries), filepath.Join(g, refgeo.Communes)
}

type intakeResult struct {
	created  int64
	elapsed  time.Duration
	p50, p99 time.Duration
	// cpu is the process's CPU time over the slices: server and clients.
	cpu time.Duration
}

func (r intakeResult) rate() float64 { return float64(r.created) / r.elapsed.Seconds() }

// intakeBench holds both sides: the real server with its declarant links
// and clients, and the floor's database.
type intakeBench struct {
	srv     *intakeServer
	clients []*intakeClient
	floor   *sqlite.Store
	rows    int64 // floor rows so far
}

func newIntakeBench(ctx context.Context, tmp, territory, communes string, n int) (*intakeBench, error) {
	s, err := startIntakeServer(ctx, filepath.Join(tmp, "data"), territory, communes)
	if err != nil {
		return nil, err
	}
	b := &intakeBench{srv: s}
	codes := make([]string, n)
	for i := range codes {
		codes[i] = s.a.Territory.Communes[i%len(s.a.Territory.Communes)].Code
	}
	links, err := s.a.NewCommuneLinks(ctx, codes, time.Hour)
	if err == nil {
		b.floor, err = openFloor(ctx, filepath.Join(tmp, "floor.db"))
	}
	if err != nil {
		s.close()
		return nil, err
	}
	today, _ := time.Parse(declarations.DateLayout, s.a.Decl.Rules().Today())
	day := today.AddDate(0, 0, -1).Format(declarations.DateLayout)
	for _, l := range links {
		b.clients = append(b.clients, newIntakeClient(l, s.addr, day))
	}
	return b, nil
}

func (b *intakeBench) close() {
	for _, c := range b.clients {
		c.close()
	}
	b.floor.Close()
	b.srv.close()
}

// run alternates the two kinds, after an unmeasured warm-up round (TCP
// connections, SQLite caches), and checks that what was acknowledged is
// exactly what the service counts.
func (b *intakeBench) run(ctx context.Context, rounds int, slice time.Duration) (api, floor intakeResult, err error) {
	var lat []time.Duration
	var acked int64
	for r := -1; r < rounds; r++ {
		d := slice
		if r < 0 {
			d = min(slice, 300*time.Millisecond)
		}
		start, cpu0 := time.Now(), cpuTime(os.Getpid())
		n, l, err := b.apiSlice(ctx, d)
		if err != nil {
			return api, floor, err
		}
		el, cpu := time.Since(start), cpuTime(os.Getpid())-cpu0
		acked += n
		start = time.Now()
		m, err := b.floorSlice(ctx, d)
		if err != nil {
			return api, floor, err
		}
		if r >= 0 {
			api.created, api.elapsed, api.cpu, lat = api.created+n, api.elapsed+el, api.cpu+cpu, append(lat, l...)
			floor.created, floor.elapsed = floor.created+m, floor.elapsed+time.Since(start)
		}
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		api.p50, api.p99 = lat[len(lat)/2].Round(time.Microsecond), lat[(len(lat)*99)/100].Round(time.Microsecond)
	}
	// Every declaration counts 1.
	if total := b.srv.a.Decl.State("").Total; int64(total) != acked {
		return api, floor, fmt.Errorf("bench intake: %d acknowledged but the total is %d", acked, total)
	}
	return api, floor, nil
}

// apiSlice runs every declarant client for d and returns the 201s and
// their latencies.
func (b *intakeBench) apiSlice(ctx context.Context, d time.Duration) (int64, []time.Duration, error) {
	var created atomic.Int64
	lat := make([][]time.Duration, len(b.clients))
	errc := make(chan error, len(b.clients))
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for i, c := range b.clients {
		wg.Add(1)
		go func(i int, c *intakeClient) {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				if err := c.post(); err != nil {
					errc <- err
					return
				}
				lat[i] = append(lat[i], time.Since(t0))
				created.Add(1)
			}
		}(i, c)
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return 0, nil, fmt.Errorf("bench intake: %w", err)
	}
	return created.Load(), slices.Concat(lat...), ctx.Err()
}

// intakeServer is the real server on a loopback port.
type intakeServer struct {
	a     *app.App
	addr  string
	close func()
}

func startIntakeServer(ctx context.Context, data, territory, communes string) (*intakeServer, error) {
	cfg := app.DefaultConfig()
	cfg.DataDir, cfg.Addr, cfg.Territory, cfg.CommunesCSV = data, "127.0.0.1:0", territory, communes
	// No rate limits: the declarants all come from 127.0.0.1 at full speed;
	// the bench measures the intake, not the limiter.
	cfg.RateIP, cfg.RateToken = 0, 0
	be, err := app.OpenBackends(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a, err := app.New(ctx, cfg, be, slog.New(slog.DiscardHandler))
	if err != nil {
		be.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = a.Shutdown(ctx)
		be.Close()
		return nil, err
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	return &intakeServer{a: a, addr: ln.Addr().String(), close: func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-served
		_ = a.Shutdown(sctx)
		be.Close()
	}}, nil
}

// intakeClient is one declarant: a keep-alive HTTP/1.1 connection. The
// load generator shares the CPU with the server it measures, so it is kept
// lean: its request is built once and only its idempotency key is rewritten
// (each post is a new declaration), and it reads the answer itself, without
// net/http's per-connection goroutines and per-response allocations. The
// server side is untouched: net/http, the real handler chain.
type intakeClient struct {
	link  app.CommuneLink
	addr  string
	conn  net.Conn
	br    *bufio.Reader
	req   []byte
	keyAt int // offset of the idempotency key's hex digits in req
	rng   *mrand.ChaCha8
	key   [16]byte
	body  []byte
}

func newIntakeClient(link app.CommuneLink, addr, day string) *intakeClient {
	c := &intakeClient{link: link, addr: addr}
	var seed [32]byte
	_, _ = rand.Read(seed[:])
	c.rng = mrand.NewChaCha8(seed)
	const placeholder = "################################" // 32 hex digits
	body, _ := json.Marshal(declarations.Input{Commune: link.Code, Date: day, Place: string(declarations.Domicile), Count: 1,
		IdempotencyKey: placeholder})
	c.req = fmt.Appendf(nil, "POST /api/v1/declarations HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", addr, link.Token, len(body), body)
	c.keyAt = bytes.Index(c.req, []byte(placeholder))
	return c
}

// post sends one declaration of one death, under a fresh random key, and
// wants a 201.
func (c *intakeClient) post() error {
	if c.conn == nil {
		conn, err := net.DialTimeout("tcp", c.addr, 10*time.Second)
		if err != nil {
			return err
		}
		c.conn, c.br = conn, bufio.NewReader(conn)
	}
	_, _ = c.rng.Read(c.key[:])
	hex.Encode(c.req[c.keyAt:c.keyAt+32], c.key[:])
	_ = c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.conn.Write(c.req); err != nil {
		return err
	}
	status, err := c.readAnswer()
	if err != nil {
		c.close()
		return err
	}
	if status != http.StatusCreated {
		return fmt.Errorf("commune %s: status %d: %s", c.link.Code, status, c.body)
	}
	return nil
}

// readAnswer reads one HTTP/1.1 response with a Content-Length body (the
// API's answers are small and never chunked) into c.body.
func (c *intakeClient) readAnswer() (status int, err error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	if status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	length, closing := -1, false
	for {
		h, err := c.br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, _ := bytes.Cut(h, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return 0, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, fmt.Errorf("unexpected Transfer-Encoding %q", value)
		case bytes.EqualFold(name, []byte("Connection")):
			closing = bytes.EqualFold(value, []byte("close"))
		}
	}
	if length < 0 {
		return 0, errors.New("answer without Content-Length")
	}
	c.body = slices.Grow(c.body[:0], length)[:length]
	if _, err := io.ReadFull(c.br, c.body); err != nil {
		return 0, err
	}
	if closing {
		c.close()
	}
	return status, nil
}

func (c *intakeClient) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// openFloor opens a fresh database exactly like the real one (WAL,
// synchronous=FULL, immediate transactions) with a one-table schema.
func openFloor(ctx context.Context, path string) (*sqlite.Store, error) {
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	if _, err := st.DB().ExecContext(ctx, `CREATE TABLE floor (id TEXT PRIMARY KEY, commune TEXT NOT NULL, count INTEGER NOT NULL)`); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// floorSlice commits one row per transaction, one after the other, for d:
// the rate without group commit. The insert is prepared, as the intake's
// are, so that the floor pays for the transaction and the fsync, not for
// parsing SQL; and its statements run without a cancellable context, as
// the intake's do (the driver would start a goroutine per statement to
// watch one), ctx being checked between transactions.
func (b *intakeBench) floorSlice(ctx context.Context, d time.Duration) (int64, error) {
	db := b.floor.DB()
	ins, err := db.PrepareContext(ctx, `INSERT INTO floor(id, commune, count) VALUES (?, ?, 1)`)
	if err != nil {
		return 0, err
	}
	defer ins.Close()
	run := context.WithoutCancel(ctx)
	var n int64
	for start := time.Now(); time.Since(start) < d && ctx.Err() == nil; n++ {
		tx, err := db.BeginTx(run, nil)
		if err != nil {
			return n, err
		}
		b.rows++
		if _, err := tx.StmtContext(run, ins).ExecContext(run, fmt.Sprintf("row-%012d", b.rows), "56121"); err != nil {
			tx.Rollback()
			return n, err
		}
		if err := tx.Commit(); err != nil {
			return n, err
		}
	}
	return n, ctx.Err()
}
