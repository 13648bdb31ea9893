package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"crisisroom/sfu"
)

// benchSFU measures the selective forwarding unit (package sfu) against a
// floor measured in the same run: a bare pion forwarder (floorSFU). Both
// take the same load, one after the other, in this process on loopback:
// P publishers sending synthetic VP8 and Opus-sized audio, S subscribers
// receiving every publisher's tracks. The figure that matters is the CPU
// per forwarded packet; the last line, sfu_ratio=X, is crisisroom's over
// the floor's.
func benchSFU(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := sfuOpts{}
	fs := flag.NewFlagSet("bench sfu", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.pubs, "publishers", 4, "publishers, each sending VP8 at about 1.5 Mbit/s and Opus-sized audio")
	fs.IntVar(&o.subs, "subscribers", 60, "subscribers, each receiving every publisher's audio and video")
	fs.Float64Var(&o.seconds, "seconds", 10, "measured time of each run")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "time between every track flowing and the measure")
	fs.DurationVar(&o.timeout, "timeout", 3*time.Minute, "bound on each run (setup, measure, teardown)")
	fs.IntVar(&o.dialers, "dialers", 8, "subscribers connecting at the same time")
	fs.StringVar(&o.only, "only", "", `"floor" or "crisisroom" to run one of the two (no ratio)`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.pubs < 1 || o.subs < 1 || o.seconds <= 0 || o.dialers < 1 || o.warmup < 0 {
		return errors.New("bench sfu: --publishers, --subscribers and --dialers at least 1, --seconds positive")
	}
	if o.only != "" && o.only != "floor" && o.only != "crisisroom" {
		return errors.New(`bench sfu: --only "floor" or "crisisroom"`)
	}
	fmt.Fprintf(stdout, "bench sfu: %d publishers (VP8 %.1f Mbit/s at %d frames/s, audio %d packets/s), %d subscribers, %s measured per run, loopback, %d cores; CPU is this whole process: forwarder, publishers and subscribers\n",
		o.pubs, sfuVideoBitrate/1e6, sfuVideoFPS, int(time.Second/sfuAudioEvery), o.subs, o.window(), runtime.NumCPU())
	var floor, cr *sfuResult
	if o.only != "crisisroom" {
		f, err := newFloorSFU()
		if err != nil {
			return err
		}
		if floor, err = runSFU(ctx, o, "floor (bare pion forwarder)", f); err != nil {
			return fmt.Errorf("bench sfu: floor: %w", err)
		}
		floor.print(stdout)
	}
	if o.only != "floor" {
		t, err := newCrisisroomSFU()
		if err != nil {
			return err
		}
		if cr, err = runSFU(ctx, o, "crisisroom (sfu package)", t); err != nil {
			return fmt.Errorf("bench sfu: crisisroom: %w", err)
		}
		cr.print(stdout)
	}
	if floor != nil && cr != nil {
		if !floor.clean() || !cr.clean() {
			// Retransmissions and queues then weigh in the CPU per
			// packet: the ratio says more of the machine than of the code.
			fmt.Fprintf(stdout, "note: a run lost over 0.5 %% or froze (other processes took %.2f and %.2f cores): the machine did not carry this load, the ratio is not comparable\n",
				floor.others.Seconds()/floor.window.Seconds(), cr.others.Seconds()/cr.window.Seconds())
		}
		fmt.Fprintf(stdout, "sfu_ratio=%.2f\n", cr.cpuPerPacket()/floor.cpuPerPacket())
	}
	return nil
}

// sfuUnderTest is a forwarder as a member sees it: join, then exchange
// signals (package sfu's Router.Join and Member.Signal).
type sfuUnderTest interface {
	join(id string, publish bool, send func(sfu.Signal)) (func(sfu.Signal) error, error)
	close() error
}

// sfuStatser is a forwarder that keeps its own counters.
type sfuStatser interface{ stats() sfu.RoomStats }

type sfuOpts struct {
	pubs, subs      int
	seconds         float64
	warmup, timeout time.Duration
	dialers         int
	only            string
}

func (o sfuOpts) window() time.Duration { return time.Duration(o.seconds * float64(time.Second)) }

// sfuRun is one run's clients and shared state. The window [t0, t1) is
// set once, before t0: a packet counts when its send time is in it.
type sfuRun struct {
	o               sfuOpts
	base            time.Time
	t0, t1          atomic.Int64 // since base; 0 until set
	pubIndex        map[string]int
	pubAPI, downAPI *webrtc.API
	ports           portSet   // the clients' sockets
	in, out         wireCount // what the publishers sent, what the receivers got
	pubs, subs      []*sfuClient
	flowing         atomic.Int64   // subscriber tracks that have had a packet
	loops           sync.WaitGroup // the clients' signal loops
	wg              sync.WaitGroup // senders, readers

	// Read at the window's two ends.
	busy0, busy1                             time.Duration // the whole machine's
	drops0, drops1                           uint64        // UDP receive-buffer overflows
	clDrops0, clDrops1, fwdDrops0, fwdDrops1 uint64        // the same per socket, this process's
	cpu0, cpu1                               time.Duration
	in0, in1, out0, out1                     uint64
	outB0, outB1                             uint64
	t                                        sfuUnderTest
	st0, st1                                 sfu.RoomStats
	hasStats                                 bool

	errMu sync.Mutex
	err   error
}

func (run *sfuRun) fail(err error) {
	run.errMu.Lock()
	defer run.errMu.Unlock()
	if run.err == nil {
		run.err = err
	}
}

func (run *sfuRun) failed() error {
	run.errMu.Lock()
	defer run.errMu.Unlock()
	return run.err
}

// runSFU connects the clients to t, waits for every subscriber track to
// flow, measures, then closes everything and tallies.
func runSFU(ctx context.Context, o sfuOpts, name string, t sfuUnderTest) (res *sfuResult, err error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	// The first run's garbage is not the second's to collect.
	runtime.GC()
	run := &sfuRun{o: o, base: time.Now(), pubIndex: map[string]int{}, t: t}
	if run.pubAPI, err = newSFUClientAPI(&run.in, nil, &run.ports); err != nil {
		return nil, err
	}
	if run.downAPI, err = newSFUClientAPI(nil, &run.out, &run.ports); err != nil {
		return nil, err
	}
	defer func() {
		if cerr := run.close(t); err == nil && cerr != nil {
			err = cerr
		}
		if err == nil {
			res = run.tally(name)
		}
	}()
	for i := range o.pubs {
		run.pubIndex[fmt.Sprintf("pub-%d", i)] = i
	}
	for i := range o.pubs {
		c, err := run.join(t, fmt.Sprintf("pub-%d", i), true)
		if err != nil {
			return nil, err
		}
		run.pubs = append(run.pubs, c)
		if err := c.pub.publish(); err != nil {
			return nil, fmt.Errorf("%s: %w", c.id, err)
		}
	}
	for _, c := range run.pubs {
		if err := run.await(ctx, c.pub.upOK, c.id+" up connection"); err != nil {
			return nil, err
		}
		c.pub.start()
	}
	if err := run.subscribe(ctx, t); err != nil {
		return nil, err
	}
	want := int64(o.subs * o.pubs * 2)
	for run.flowing.Load() < want {
		if err := run.failed(); err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%d of %d subscriber tracks flowing: %w", run.flowing.Load(), want, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := run.measure(ctx); err != nil {
		return nil, err
	}
	return nil, run.failed()
}

func (run *sfuRun) join(t sfuUnderTest, id string, publish bool) (*sfuClient, error) {
	c := newSFUClient(run, id, publish)
	sig, err := t.join(id, publish, c.q.push)
	if err != nil {
		return nil, fmt.Errorf("%s: join: %w", id, err)
	}
	c.signal = sig
	run.loops.Add(1)
	go c.loop()
	return c, nil
}

// subscribe joins the subscribers, a few at a time: each slot is held
// until its down connection is up, so that DTLS handshakes do not pile up.
func (run *sfuRun) subscribe(ctx context.Context, t sfuUnderTest) error {
	sem := make(chan struct{}, run.o.dialers)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	for i := range run.o.subs {
		c, err := run.join(t, fmt.Sprintf("sub-%d", i), false)
		if err != nil {
			wg.Wait()
			return err
		}
		run.subs = append(run.subs, c)
		select {
		case sem <- struct{}{}:
		case err := <-errc:
			wg.Wait()
			return err
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := run.await(ctx, c.downOK, c.id+" down connection"); err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

func (run *sfuRun) await(ctx context.Context, ch <-chan struct{}, what string) error {
	for {
		if err := run.failed(); err != nil {
			return err
		}
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// measure sets the window, reads CPU and counters at both ends, then
// waits a second more for late retransmissions.
func (run *sfuRun) measure(ctx context.Context) error {
	t0 := time.Since(run.base) + run.o.warmup
	t1 := t0 + run.o.window()
	run.t1.Store(int64(t1))
	run.t0.Store(int64(t0))
	sleepUntil := func(d time.Duration) error {
		select {
		case <-time.After(d - time.Since(run.base)):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := sleepUntil(t0); err != nil {
		return err
	}
	run.busy0, run.drops0 = machineBusy(), udpRcvbufErrors()
	run.clDrops0, run.fwdDrops0 = udpDrops(&run.ports)
	run.cpu0, run.in0, run.out0, run.outB0 = cpuTime(os.Getpid()), run.in.pkts.Load(), run.out.pkts.Load(), run.out.bytes.Load()
	if st, ok := run.t.(sfuStatser); ok {
		run.st0 = st.stats()
	}
	if err := sleepUntil(t1); err != nil {
		return err
	}
	run.cpu1, run.in1, run.out1, run.outB1 = cpuTime(os.Getpid()), run.in.pkts.Load(), run.out.pkts.Load(), run.out.bytes.Load()
	run.busy1, run.drops1 = machineBusy(), udpRcvbufErrors()
	run.clDrops1, run.fwdDrops1 = udpDrops(&run.ports)
	if st, ok := run.t.(sfuStatser); ok {
		run.st1, run.hasStats = st.stats(), true
	}
	return sleepUntil(t1 + time.Second)
}

// close stops the senders and signal loops, closes every connection and
// waits for every goroutine of the run.
func (run *sfuRun) close(t sfuUnderTest) error {
	var pcs []*webrtc.PeerConnection
	for _, c := range append(run.pubs, run.subs...) {
		if c.pub != nil {
			c.pub.stop()
		}
		close(c.q.done)
	}
	run.loops.Wait() // the loops are done: their connections are ours to read
	errT := t.close()
	for _, c := range append(run.pubs, run.subs...) {
		for _, pc := range []*webrtc.PeerConnection{c.up, c.down} {
			if pc != nil {
				pcs = append(pcs, pc)
			}
		}
	}
	errC := closeAll(pcs)
	run.wg.Wait()
	return errors.Join(errT, errC)
}

// sfuResult is one run's figures.
type sfuResult struct {
	name                string
	window              time.Duration
	in, out, outBytes   uint64
	cpu                 time.Duration
	others              time.Duration // other processes' CPU in the window
	drops               uint64        // UDP datagrams dropped for a full receive buffer, whole machine
	fwdDrops, clDrops   uint64        // the same on this process's sockets: the forwarder's, the clients'
	expected, received  int64
	dups                int64
	worst               float64 // worst loss of one subscriber's track, %
	freezes             int
	maxGap              time.Duration
	lat                 latHist
	keyframes, plisSeen int64
	own                 *sfu.RoomStats // the forwarder's counters over the window, if it keeps any
}

func (r *sfuResult) loss() float64 {
	return 100 * float64(r.expected-r.received) / float64(max(r.expected, 1))
}

// clean: the run carried its load (the targets of the issue).
func (r *sfuResult) clean() bool { return r.loss() <= 0.5 && r.freezes == 0 }

func (r *sfuResult) cpuPerPacket() float64 {
	return float64(r.cpu) / float64(time.Microsecond) / float64(max(r.out, 1))
}

func (r *sfuResult) print(w io.Writer) {
	s := r.window.Seconds()
	loss := r.loss()
	p99, p50 := "n/a", "n/a"
	if v := r.lat.quantileUS(0.99); v >= 0 {
		p99 = fmt.Sprintf("%.1f ms", float64(v)/1000)
		p50 = fmt.Sprintf("%.1f ms", float64(r.lat.quantileUS(0.5))/1000)
	}
	fmt.Fprintf(w, "%s: in %.0f packets/s, out %.0f packets/s, %.1f Mbit/s out; loss %.2f %% (worst track %.2f %%, %d duplicates dropped), freezes %d (longest video gap %s), p99 added latency %s (p50 %s); keyframes %d (PLI/FIR at publishers %d, whole run); CPU %.2f s (%.2f cores; other processes %.2f cores) = %.2f µs per forwarded packet; UDP drops (full receive buffers) at the forwarder's sockets %d, at the clients' %d, machine-wide %d\n",
		r.name, float64(r.in)/s, float64(r.out)/s, float64(r.outBytes)*8/s/1e6, loss, r.worst, r.dups, r.freezes, r.maxGap.Round(time.Millisecond), p99, p50,
		r.keyframes, r.plisSeen, r.cpu.Seconds(), r.cpu.Seconds()/s, r.others.Seconds()/s, r.cpuPerPacket(), r.fwdDrops, r.clDrops, r.drops)
	if o := r.own; o != nil {
		fmt.Fprintf(w, "  its own counters: RTP in %.0f packets/s, out %.0f packets/s, %.1f Mbit/s out; NACKs from subscribers %d, to publishers %d; PLIs to publishers %d; dropped by the rate cap %d, for stuck subscribers %d; freezes seen %d\n",
			float64(o.PacketsIn)/s, float64(o.PacketsOut)/s, float64(o.BitsOut)/s/1e6, o.NACKsReceived, o.NACKsSent, o.PLIsSent, o.DroppedRateCap, o.DroppedStuck, o.Freezes)
	}
}

// tally turns what the clients saw into the result; every goroutine of
// the run has ended. Loss is per subscriber per track: the publisher's
// first transmissions stamped in the window against the distinct sequence
// numbers received with such a stamp.
func (run *sfuRun) tally(name string) *sfuResult {
	r := &sfuResult{name: name, window: run.o.window(), cpu: run.cpu1 - run.cpu0, others: max(run.busy1-run.busy0-(run.cpu1-run.cpu0), 0),
		drops: run.drops1 - run.drops0, fwdDrops: run.fwdDrops1 - run.fwdDrops0, clDrops: run.clDrops1 - run.clDrops0,
		in: run.in1 - run.in0, out: run.out1 - run.out0, outBytes: run.outB1 - run.outB0}
	if run.hasStats {
		a, b := run.st0, run.st1
		r.own = &sfu.RoomStats{PacketsIn: b.PacketsIn - a.PacketsIn, PacketsOut: b.PacketsOut - a.PacketsOut, BitsOut: b.BitsOut - a.BitsOut,
			NACKsReceived: b.NACKsReceived - a.NACKsReceived, NACKsSent: b.NACKsSent - a.NACKsSent, PLIsSent: b.PLIsSent - a.PLIsSent,
			DroppedRateCap: b.DroppedRateCap - a.DroppedRateCap, DroppedStuck: b.DroppedStuck - a.DroppedStuck, Freezes: b.Freezes - a.Freezes}
	}
	t0, t1 := time.Duration(run.t0.Load()), time.Duration(run.t1.Load())
	for _, p := range run.pubs {
		r.keyframes += p.pub.keyframes
		r.plisSeen += p.pub.plisSeen.Load()
	}
	for _, c := range run.subs {
		got := make([][2]int64, len(run.pubs)) // per publisher: audio, video
		gap := make([]time.Duration, len(run.pubs))
		for i := range gap {
			gap[i] = t1 - t0 // no video at all: one freeze as long as the window
		}
		for _, rx := range c.tracks {
			if rx.pub < 0 {
				continue
			}
			k := 0
			if rx.video {
				k = 1
				r.freezes += rx.freezes
				r.maxGap = max(r.maxGap, rx.maxGap)
				gap[rx.pub] = t1 - max(rx.lastRx, t0)
			}
			got[rx.pub][k] += rx.recv
			r.dups += rx.dups
			r.lat.merge(&rx.lat)
		}
		for i, p := range run.pubs {
			if gap[i] > sfuFreezeGap {
				r.freezes++
				r.maxGap = max(r.maxGap, gap[i])
			}
			for k, want := range [2]int64{p.pub.sentA, p.pub.sentV} {
				have := min(got[i][k], want)
				r.expected += want
				r.received += have
				if want > 0 {
					r.worst = math.Max(r.worst, 100*float64(want-have)/float64(want))
				}
			}
		}
	}
	return r
}
