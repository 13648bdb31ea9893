package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// fanoutOpts are the flags of `bench fanout`.
type fanoutOpts struct {
	watchers, decls     int
	rate                float64
	instances           int
	url, token          string
	pid                 int
	bin                 string
	territory, communes string
	timeout             time.Duration
	dialers             int
	detail              io.Writer // per-declaration figures, nil for none
}

// benchFanout measures the live map's fan-out: N watchers subscribed on
// the signaling socket, M declarations posted at R per second, each to its
// own commune, and the time from each 201 to each watcher's receipt of
// that commune's new state. The server runs as a child process (this same
// binary) so that its RSS is its own; --url targets a running server
// instead. With --instances 2 (or more) the servers are a cluster on a
// throwaway PostgreSQL and Redis: the watchers are spread over them, the
// declarations go to A, and the watchers of the other instances give the
// cross-instance latency. The last line, fanout_p99_ms=X, is what scripts
// read.
func benchFanout(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := fanoutOpts{}
	fs := flag.NewFlagSet("bench fanout", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.watchers, "watchers", 5000, "live-map WebSocket subscribers held open")
	fs.IntVar(&o.decls, "declarations", 200, "declarations posted, each to a distinct commune")
	fs.Float64Var(&o.rate, "rate", 20, "declarations per second")
	fs.IntVar(&o.instances, "instances", 1, "servers started; 2 or more share a throwaway PostgreSQL and Redis (cluster mode), watchers spread over them, declarations posted to the first")
	fs.StringVar(&o.url, "url", "", "target a running server (http://host:port) instead of starting one")
	fs.StringVar(&o.token, "token", "", "with --url: a room host link's token (or the whole link)")
	fs.IntVar(&o.pid, "pid", 0, "with --url: the server's process id, to measure its memory")
	fs.StringVar(&o.bin, "bin", "", "server binary to start (default: this executable)")
	geo, list := defaultGeoFiles()
	fs.StringVar(&o.territory, "territory", geo, "commune boundaries GeoJSON for the started server")
	fs.StringVar(&o.communes, "communes", list, "commune list CSV for the started server")
	fs.DurationVar(&o.timeout, "timeout", 3*time.Minute, "bound on the whole run")
	fs.IntVar(&o.dialers, "dialers", 32, "watchers connecting at the same time")
	detail := fs.Bool("detail", false, "print each declaration's receipts (first, median, last) on stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *detail {
		o.detail = stderr
	}
	if err := o.check(); err != nil {
		return err
	}
	r, err := runFanout(ctx, o, stdout)
	if err != nil {
		return err
	}
	r.print(stdout)
	if r.received != r.expected {
		return fmt.Errorf("bench fanout: %d of %d receipts (%.2f %%)", r.received, r.expected, r.delivery())
	}
	return nil
}

func (o *fanoutOpts) check() error {
	switch {
	case o.watchers < 1 || o.decls < 1 || o.rate <= 0 || o.rate > 10000 || o.dialers < 1:
		return errors.New("bench fanout: --watchers, --declarations and --dialers must be positive, --rate between 0 and 10000")
	case o.instances < 1 || o.instances > 8:
		return errors.New("bench fanout: --instances between 1 and 8")
	case o.instances > o.watchers:
		return errors.New("bench fanout: --watchers must be at least --instances (every instance needs a watcher)")
	case o.url != "" && o.instances > 1:
		return errors.New("bench fanout: --url measures one running server; --instances starts its own cluster")
	case o.url != "" && o.token == "":
		return errors.New("bench fanout: --url needs --token (a room host link)")
	case o.url == "" && o.territory == "":
		return errors.New("bench fanout: no testdata/geo found (not in a checkout); pass --territory FILE (and --communes CSV)")
	}
	if _, tok, ok := strings.Cut(o.token, "#t="); ok {
		o.token = tok
	}
	if o.bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		o.bin = exe
	}
	return nil
}

// fanoutResult is what one run measured; CPU times 0 when not measured.
type fanoutResult struct {
	watchers, decls           int
	rate                      float64
	inst                      []*fanoutInstance
	subscribe, posting        time.Duration
	snapshotBytes             int
	deltas, cpuLoad, cpuRedis time.Duration
	cpuAll                    time.Duration // the whole machine's busy time
	received, expected        int64
	early, gaps, closed       int64
	lat                       []time.Duration // sorted, every watcher's
	cross                     []time.Duration // sorted, the watchers not on A
}

func (r *fanoutResult) delivery() float64 {
	return 100 * float64(r.received) / float64(r.expected)
}

// perConn is the servers' memory growth per watcher, all instances
// together (each connection lives on one of them); NaN when an instance
// was not measured.
func (r *fanoutResult) perConn() float64 {
	var grew int64
	for _, in := range r.inst {
		if in.rssBefore == 0 {
			return math.NaN()
		}
		grew += in.rssSubscribed - in.rssBefore
	}
	return float64(grew) / float64(r.watchers) / 1024
}

func (r *fanoutResult) print(w io.Writer) {
	fmt.Fprintf(w, "subscribed: %d watchers in %s (snapshot %d bytes each)", r.watchers, r.subscribe.Round(time.Millisecond), r.snapshotBytes)
	if len(r.inst) > 1 {
		sep := ":"
		for _, in := range r.inst {
			fmt.Fprintf(w, "%s %s %d", sep, in.name, in.watchers)
			sep = ","
		}
	}
	fmt.Fprintln(w)
	for _, in := range r.inst {
		label := "server RSS"
		if len(r.inst) > 1 {
			label = "server RSS of " + in.name
		}
		if in.rssBefore > 0 {
			fmt.Fprintf(w, "%s: %.1f MiB idle, %.1f MiB with %d watchers subscribed = %.1f KiB per connection; %.1f MiB after the deltas\n",
				label, mib(in.rssBefore), mib(in.rssSubscribed), in.watchers, in.perConn(), mib(in.rssAfter))
		} else {
			fmt.Fprintf(w, "%s: not measured (give --pid with --url)\n", label)
		}
	}
	fmt.Fprintf(w, "posted: %d declarations at %.0f/s in %s, all 201\n", r.decls, r.rate, r.posting.Round(time.Millisecond))
	r.printCPU(w)
	fmt.Fprintf(w, "delivery: %d of %d = %.2f %% (seq gaps %d, sockets closed by the server %d, receipts before the 201 %d counted as 0 ms)\n",
		r.received, r.expected, r.delivery(), r.gaps, r.closed, r.early)
	if len(r.lat) == 0 {
		fmt.Fprintln(w, "fanout_p99_ms=NaN")
		return
	}
	fmt.Fprintf(w, "fanout latency (201 → watcher's receipt): p50=%s p99=%s max=%s\n",
		quantile(r.lat, 0.5), quantile(r.lat, 0.99), r.lat[len(r.lat)-1].Round(time.Microsecond))
	if len(r.inst) > 1 {
		r.printInstances(w)
	}
	if pc := r.perConn(); !math.IsNaN(pc) {
		fmt.Fprintf(w, "rss_per_conn_kib=%.1f\n", pc)
	}
	fmt.Fprintf(w, "fanout_p99_ms=%s\n", p99ms(r.lat))
}

// p99ms is a sorted sample's p99 in milliseconds, as scripts read it.
func p99ms(lat []time.Duration) string {
	if len(lat) == 0 {
		return "NaN"
	}
	return fmt.Sprintf("%.1f", float64(quantile(lat, 0.99))/float64(time.Millisecond))
}

func (r *fanoutResult) printCPU(w io.Writer) {
	var servers time.Duration
	parts := make([]string, 0, len(r.inst))
	for _, in := range r.inst {
		servers += in.cpu
		parts = append(parts, in.name+" "+in.cpu.String())
	}
	if servers == 0 {
		return
	}
	other := max(r.cpuAll-servers-r.cpuLoad-r.cpuRedis, 0)
	if len(r.inst) == 1 {
		fmt.Fprintf(w, "CPU from the first post to the last receipt (%s, %d cores): server %s, load generator %s, other processes %s\n",
			r.deltas.Round(time.Millisecond), runtime.NumCPU(), servers, r.cpuLoad, other)
		return
	}
	fmt.Fprintf(w, "CPU from the first post to the last receipt (%s, %d cores): servers %s, redis-server %s, load generator %s, other processes (PostgreSQL among them) %s\n",
		r.deltas.Round(time.Millisecond), runtime.NumCPU(), strings.Join(parts, " + "), r.cpuRedis, r.cpuLoad, other)
}

// printInstances gives each instance's share and the cross-instance
// latency: the watchers of the instances that did not take the
// declarations, reached through Redis.
func (r *fanoutResult) printInstances(w io.Writer) {
	for i, in := range r.inst {
		role := "declarations posted here"
		if i > 0 {
			role = "through Redis"
		}
		fmt.Fprintf(w, "instance %s (%s): %d watchers, delivery %d of %d", in.name, role, in.watchers, in.received, in.expected)
		if len(in.lat) > 0 {
			fmt.Fprintf(w, ", p50=%s p99=%s max=%s", quantile(in.lat, 0.5), quantile(in.lat, 0.99), in.lat[len(in.lat)-1].Round(time.Microsecond))
		}
		fmt.Fprintln(w)
	}
	others := make([]string, 0, len(r.inst)-1)
	for _, in := range r.inst[1:] {
		others = append(others, in.name)
	}
	if len(r.cross) > 0 {
		fmt.Fprintf(w, "cross-instance latency (201 from A → receipt by a watcher on %s): p50=%s p99=%s max=%s\n", strings.Join(others, ", "),
			quantile(r.cross, 0.5), quantile(r.cross, 0.99), r.cross[len(r.cross)-1].Round(time.Microsecond))
	}
	fmt.Fprintf(w, "cross_instance_p99_ms=%s\n", p99ms(r.cross))
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// runFanout is one whole run: target, watchers, declarations, figures.
func runFanout(ctx context.Context, o fanoutOpts, log io.Writer) (*fanoutResult, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	tgt, err := startFanoutTarget(ctx, o)
	if err != nil {
		return nil, err
	}
	defer tgt.stop()
	o.token = tgt.token
	fmt.Fprintf(log, "bench fanout: %d watchers, %d declarations at %.0f/s, %s\n", o.watchers, o.decls, o.rate, tgt.describe())
	res := &fanoutResult{watchers: o.watchers, decls: o.decls, rate: o.rate, inst: tgt.inst}
	run := &fanoutRun{base: time.Now(), opts: o}
	for i, in := range tgt.inst { // watcher j is on instance j % n
		in.watchers = o.watchers / len(tgt.inst)
		if i < o.watchers%len(tgt.inst) {
			in.watchers++
		}
		in.rssBefore = rss(in.pid)
		run.wsURLs = append(run.wsURLs, "ws"+strings.TrimPrefix(in.base, "http")+"/ws")
	}
	defer run.closeAll()
	t0 := time.Now()
	if err := run.connect(ctx); err != nil {
		return nil, err
	}
	res.subscribe, res.snapshotBytes = time.Since(t0), run.snapshotBytes
	for _, in := range tgt.inst {
		in.rssSubscribed = rss(in.pid)
		in.cpu = cpuTime(in.pid)
	}
	redis0, self0, all0, t1 := cpuTime(tgt.redisPid), cpuTime(os.Getpid()), machineBusy(), time.Now()
	t201, posting, err := run.post(ctx, tgt.inst[0].base)
	if err != nil {
		return nil, err
	}
	res.posting = posting
	// Every receipt, or the end of the time allowed.
	select {
	case <-run.allDone:
	case <-ctx.Done():
		fmt.Fprintln(log, "bench fanout: timed out waiting for receipts; figures are partial")
	}
	res.deltas = time.Since(t1)
	for _, in := range tgt.inst {
		in.cpu = cpuTime(in.pid) - in.cpu
		in.rssAfter = rss(in.pid)
	}
	res.cpuRedis, res.cpuLoad, res.cpuAll = cpuTime(tgt.redisPid)-redis0, cpuTime(os.Getpid())-self0, machineBusy()-all0
	run.closeAll()
	run.tally(res, t201)
	return res, nil
}

// cpuTime reads the CPU time a process has used (user and system); 0
// when pid is 0 or unreadable.
func cpuTime(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which may hold spaces: state is
	// field 3, utime and stime are 14 and 15, in clock ticks (100 Hz on
	// Linux for this interface).
	_, rest, ok := bytes.Cut(b, []byte(") "))
	f := strings.Fields(string(rest))
	if !ok || len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond
}

// machineBusy reads the time all CPUs spent busy (/proc/stat), to show
// whether something else shared the machine during the measure.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * 10 * time.Millisecond
}

// rss reads a process's resident set size; 0 when pid is 0 or unreadable.
func rss(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// fanoutRun is the load generator's shared state. The watched communes
// are fixed (from the first watcher's snapshot) before any other watcher
// starts reading, so the readers share them without locks.
type fanoutRun struct {
	base   time.Time
	opts   fanoutOpts
	wsURLs []string // watcher i connects to wsURLs[i % len]

	codes    []string       // declaration i goes to codes[i]
	index    map[string]int // code → i
	baseline []int          // each commune's total in the snapshot

	snapshotBytes int
	watchers      []*watcher
	readers       sync.WaitGroup
	pending       atomic.Int64 // watchers still missing receipts
	allDone       chan struct{}
	doneOnce      sync.Once
	closeOnce     sync.Once
	gaps, closed  atomic.Int64
}

// connect opens every watcher and waits until each has its snapshot.
func (run *fanoutRun) connect(ctx context.Context) error {
	n := run.opts.watchers
	run.allDone = make(chan struct{})
	run.pending.Store(int64(n))
	run.watchers = make([]*watcher, n)
	first, snap, err := run.dial(ctx, 0)
	if err != nil {
		return err
	}
	if err := run.pick(snap); err != nil {
		first.c.Close()
		return err
	}
	run.snapshotBytes = len(snap)
	run.watchers[0] = first
	run.start(first)
	sem := make(chan struct{}, run.opts.dialers)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	for i := 1; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case err := <-errc:
			wg.Wait()
			return err
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			w, _, err := run.dial(ctx, i)
			if err != nil {
				select {
				case errc <- fmt.Errorf("watcher %d: %w", i, err):
				default:
				}
				return
			}
			run.watchers[i] = w
			run.start(w)
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// pick chooses the M communes from the snapshot and notes their totals,
// so that a server with earlier data can be measured too.
func (run *fanoutRun) pick(snap []byte) error {
	type state struct {
		Code  string `json:"code"`
		Total int    `json:"total"`
	}
	var env struct {
		Type string `json:"type"`
		Data struct {
			States []state `json:"states"`
		} `json:"data"`
	}
	if err := json.Unmarshal(snap, &env); err != nil || env.Type != "map-snapshot" {
		return fmt.Errorf("bench fanout: first frame is not a map snapshot (%v): %.200s", err, snap)
	}
	states := env.Data.States
	slices.SortFunc(states, func(a, b state) int { return strings.Compare(a.Code, b.Code) })
	run.index = map[string]int{}
	for _, s := range states {
		if s.Code == "" || len(run.codes) == run.opts.decls {
			continue
		}
		run.index[s.Code] = len(run.codes)
		run.codes = append(run.codes, s.Code)
		run.baseline = append(run.baseline, s.Total)
	}
	if len(run.codes) < run.opts.decls {
		return fmt.Errorf("bench fanout: %d declarations need as many communes; the territory has %d", run.opts.decls, len(run.codes))
	}
	return nil
}

// post sends the declarations at the rate asked, each on its own
// goroutine so that a slow answer does not delay the next, and returns
// each one's 201 time.
func (run *fanoutRun) post(ctx context.Context, base string) ([]int64, time.Duration, error) {
	m := run.opts.decls
	t201 := make([]int64, m)
	tr := &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		return nil, 0, err
	}
	day := time.Now().In(loc).Format("2006-01-02")
	tick := time.NewTicker(time.Duration(float64(time.Second) / run.opts.rate))
	defer tick.Stop()
	errs := make([]error, m)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range m {
		if i > 0 {
			select {
			case <-tick.C:
			case <-ctx.Done():
				wg.Wait()
				return nil, 0, ctx.Err()
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = declareOnce(ctx, hc, base, run.opts.token, run.codes[i], day)
			t201[i] = int64(time.Since(run.base))
		}()
	}
	wg.Wait()
	return t201, time.Since(start), errors.Join(errs...)
}

func declareOnce(ctx context.Context, hc *http.Client, base, token, code, day string) error {
	key := make([]byte, 12)
	_, _ = rand.Read(key)
	body, _ := json.Marshal(map[string]any{"commune": code, "date": day, "place": "domicile", "count": 1,
		"note": "bench fanout", "idempotency_key": "bench-" + hex.EncodeToString(key)})
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/api/v1/declarations", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("declaration for %s: status %d: %s", code, resp.StatusCode, b)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// closeAll ends every watcher and waits for their readers.
func (run *fanoutRun) closeAll() {
	run.closeOnce.Do(func() {
		for _, w := range run.watchers {
			if w != nil {
				w.c.Close()
			}
		}
		run.readers.Wait()
	})
}

// tally turns receipts into the result; the readers have ended.
func (run *fanoutRun) tally(res *fanoutResult, t201 []int64) {
	for _, in := range res.inst {
		in.expected = int64(in.watchers) * int64(run.opts.decls)
		in.lat = make([]time.Duration, 0, in.expected)
	}
	res.expected = int64(run.opts.watchers) * int64(run.opts.decls)
	res.gaps, res.closed = run.gaps.Load(), run.closed.Load()
	res.lat = make([]time.Duration, 0, res.expected)
	for _, w := range run.watchers {
		if w == nil {
			continue
		}
		in := res.inst[w.inst]
		for i, at := range w.got {
			if at == 0 {
				continue
			}
			d := at - t201[i]
			if d < 0 {
				res.early++
				d = 0
			}
			res.lat = append(res.lat, time.Duration(d))
			in.lat = append(in.lat, time.Duration(d))
		}
	}
	res.received = int64(len(res.lat))
	slices.Sort(res.lat)
	for i, in := range res.inst {
		in.received = int64(len(in.lat))
		slices.Sort(in.lat)
		if i > 0 {
			res.cross = append(res.cross, in.lat...)
		}
	}
	slices.Sort(res.cross)
	if run.opts.detail != nil {
		run.detail(t201)
	}
}

// detail prints, for each declaration, when its 201 came (from the
// first) and when the watchers got it, relative to that 201.
func (run *fanoutRun) detail(t201 []int64) {
	ms := func(d int64) float64 { return float64(d) / 1e6 }
	ds := make([]int64, 0, len(run.watchers))
	for i := range t201 {
		ds = ds[:0]
		for _, w := range run.watchers {
			if w != nil && w.got[i] != 0 {
				ds = append(ds, w.got[i]-t201[i])
			}
		}
		if len(ds) == 0 {
			fmt.Fprintf(run.opts.detail, "declaration %d (%s): 201 at %.1f ms, no receipt\n", i, run.codes[i], ms(t201[i]-t201[0]))
			continue
		}
		slices.Sort(ds)
		fmt.Fprintf(run.opts.detail, "declaration %d (%s): 201 at %.1f ms; receipts %d, first %+.1f ms, median %+.1f ms, last %+.1f ms\n",
			i, run.codes[i], ms(t201[i]-t201[0]), len(ds), ms(ds[0]), ms(ds[len(ds)/2]), ms(ds[len(ds)-1]))
	}
}
