package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"crisisroom/app"
	"crisisroom/rooms"
	"crisisroom/rtcpeer"
	"crisisroom/turnserver"
)

func bench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "intake" {
		return benchIntake(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "fanout" {
		return benchFanout(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "sfu" {
		return benchSFU(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "join" {
		return fmt.Errorf("usage: crisisroom bench join [--runs N] | crisisroom bench intake [--declarants N] [--seconds S] | crisisroom bench fanout [--watchers N] | crisisroom bench sfu [--publishers P] [--subscribers S] [--seconds T]")
	}
	return benchJoin(ctx, args[1:], stdout, stderr)
}

// benchJoin compares the time two pion peers take to connect through the
// real server (the newcomer's WebSocket dial and join, offer/answer/trickle
// relayed) with the time the same two peers take when they exchange SDP
// directly in process (the floor: same rtcpeer code, SettingEngine, tracks
// and data channel). The last line, join_ratio=X (median over median), is
// what scripts read.
func benchJoin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench join", flag.ContinueOnError)
	fs.SetOutput(stderr)
	runs := fs.Int("runs", 20, "measured runs of each kind")
	warmup := fs.Int("warmup", 2, "unmeasured runs of each kind first (first-use allocations, SQLite cache)")
	timeout := fs.Duration("timeout", 20*time.Second, "bound on one run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *runs < 1 || *warmup < 0 {
		return fmt.Errorf("bench join: --runs at least 1, --warmup at least 0")
	}
	jb, err := startJoinBench(ctx)
	if err != nil {
		return err
	}
	defer jb.close()

	var viaServer, floor []time.Duration
	// Alternate the two kinds so that noise from the shared machine falls
	// on both alike.
	for i := range *warmup + *runs {
		s, err := jb.run(ctx, *timeout, jb.throughServer)
		if err != nil {
			return fmt.Errorf("run %d through server: %w", i, err)
		}
		f, err := jb.run(ctx, *timeout, jb.direct)
		if err != nil {
			return fmt.Errorf("run %d direct: %w", i, err)
		}
		if i >= *warmup {
			viaServer, floor = append(viaServer, s), append(floor, f)
		}
	}
	ms, mf := median(viaServer), median(floor)
	fmt.Fprintf(stdout, "join through server (newcomer's ws dial → both connected): runs=%d median=%s p99=%s\n", *runs, ms, p99(viaServer))
	fmt.Fprintf(stdout, "join floor (direct in-process SDP exchange):                runs=%d median=%s p99=%s\n", *runs, mf, p99(floor))
	fmt.Fprintf(stdout, "join_ratio=%.2f\n", float64(ms)/float64(mf))
	return nil
}

// joinBench is the server the runs go through, in this process on
// loopback, and the pion settings both kinds of run share.
type joinBench struct {
	a     *app.App
	url   string
	peers rtcpeer.Config
	close func()
}

func startJoinBench(ctx context.Context) (*joinBench, error) {
	dir, err := os.MkdirTemp("", "crisisroom-bench-")
	if err != nil {
		return nil, err
	}
	cfg := app.DefaultConfig()
	cfg.DataDir = dir
	be, err := app.OpenBackends(ctx, cfg)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cleanup := func() { be.Close(); os.RemoveAll(dir) }
	a, err := app.New(ctx, cfg, be, slog.New(slog.DiscardHandler))
	if err == nil {
		_, _, err = a.Bootstrap(ctx)
	}
	var ln net.Listener
	if err == nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		cleanup()
		return nil, err
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	se := turnserver.SettingEngine()
	jb := &joinBench{a: a, url: "http://" + ln.Addr().String(), peers: rtcpeer.Config{Settings: rtcpeer.Loopback(&se)}}
	jb.close = func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.Shutdown(sctx)
		_ = srv.Shutdown(sctx)
		<-served
		cleanup()
	}
	return jb, nil
}

func (jb *joinBench) run(ctx context.Context, timeout time.Duration, f func(context.Context) (time.Duration, error)) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return f(ctx)
}

func (jb *joinBench) token(ctx context.Context) (string, error) {
	link, err := jb.a.NewRoomLink(ctx, app.MainRoom, rooms.RoleParticipant, "bench", time.Hour)
	if err != nil {
		return "", err
	}
	_, tok, ok := strings.Cut(link, "#t=")
	if !ok {
		return "", fmt.Errorf("link %q has no token", link)
	}
	return tok, nil
}

// throughServer: a member is seated first, untimed, as in a room where
// someone waits; the time runs from the newcomer's WebSocket dial (join,
// offer, answer and candidates relayed by the server) to the later of the
// two "connected" transitions, as each peer's event stamped it.
func (jb *joinBench) throughServer(ctx context.Context) (time.Duration, error) {
	var opts [2]rtcpeer.Options
	for i := range opts {
		tok, err := jb.token(ctx)
		if err != nil {
			return 0, err
		}
		opts[i] = rtcpeer.Options{Config: jb.peers, URL: jb.url, Token: tok, Name: fmt.Sprintf("bench %d", i)}
	}
	member, err := rtcpeer.Dial(ctx, opts[0])
	if err != nil {
		return 0, err
	}
	// Leave, so that the seats are free for the next run at once.
	defer member.Leave(ctx)
	start := time.Now()
	newcomer, err := rtcpeer.Dial(ctx, opts[1])
	if err != nil {
		return 0, err
	}
	defer newcomer.Leave(ctx)
	return connectTime(ctx, start, member.Node, newcomer.Node)
}

// direct: the same two peers, SDP and candidates handed over in process.
func (jb *joinBench) direct(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	p, err := rtcpeer.NewPair(jb.peers)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	p.Connect()
	return connectTime(ctx, start, p.A, p.B)
}

// connectTime waits until a and b are connected to each other and returns
// the later connection time, from start.
func connectTime(ctx context.Context, start time.Time, a, b *rtcpeer.Node) (time.Duration, error) {
	var last time.Time
	for _, w := range [][2]*rtcpeer.Node{{a, b}, {b, a}} {
		n, peer := w[0], w[1].ID()
		if err := n.WaitConnected(ctx, peer); err != nil {
			return 0, err
		}
		e, ok := n.Last(rtcpeer.EventConnected, peer)
		if !ok {
			return 0, fmt.Errorf("connected to %s without a connected event", peer)
		}
		if e.At.After(last) {
			last = e.At
		}
	}
	return last.Sub(start), nil
}

func median(d []time.Duration) time.Duration { return quantile(d, 0.5) }

func p99(d []time.Duration) time.Duration { return quantile(d, 0.99) }

// quantile by nearest rank; with 20 runs the p99 is the slowest run.
func quantile(d []time.Duration, q float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if q == 0.5 && len(s)%2 == 0 {
		return ((s[len(s)/2-1] + s[len(s)/2]) / 2).Round(time.Microsecond)
	}
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(i, 0)].Round(time.Microsecond)
}
