package sfu

import (
	"errors"
	"io"
	"net"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// A publisher offering ~20 Mbit/s is forwarded at the cap (8 Mbit/s and
// a quarter second of burst), the excess is counted as dropped, and
// another publisher's packets all arrive.
func TestFloodingPublisherIsCapped(t *testing.T) {
	s := newTestSFU(t, Config{})
	r := s.Room("r")
	const floodPPS, floodLen = 2000, 1200
	const pktBits = (12 + floodLen) * 8 // RTP header and payload, as the cap counts
	flood := newClient(t, r, "flood", JoinOptions{Publish: true})
	flood.videoPPS, flood.videoLen = floodPPS, floodLen // 19.4 Mbit/s
	good := newClient(t, r, "good", JoinOptions{Publish: true})
	good.videoPPS = 30
	sub := newClient(t, r, "sub", JoinOptions{})
	good.publish()
	waitFor(t, 10*time.Second, "sub receives good", func() bool { return received(sub, []*client{good}, 5) })
	flood.publish()
	waitFor(t, 10*time.Second, "sub receives flood", func() bool { return sub.count("flood/video") > 0 })
	time.Sleep(500 * time.Millisecond) // past the initial burst allowance
	snap := func() (g, gs, f, fs int64, st RoomStats) {
		return int64(sub.count("good/video")), good.sentV.Load(), int64(sub.count("flood/video")),
			flood.sentV.Load(), r.Stats()
	}
	g0, gs0, f0, fs0, st0 := snap()
	start := time.Now()
	time.Sleep(2 * time.Second)
	el := time.Since(start).Seconds()
	g1, gs1, f1, fs1, st1 := snap()
	g, gs, f, fs := g1-g0, gs1-gs0, f1-f0, fs1-fs0
	dropped := int64(st1.DroppedRateCap - st0.DroppedRateCap)
	offered := float64(fs*pktBits) / el
	forwarded := float64(f*pktBits) / el
	limit := DefaultMaxPublisherBitrate + DefaultMaxPublisherBitrate/4/el // rate plus burst, over el
	t.Logf("over %.2fs: flood offered %.1f Mbit/s (%d packets), forwarded %.2f Mbit/s (%d), dropped %d by the cap "+
		"(%d unaccounted); good sent %d, sub received %d",
		el, offered/1e6, fs, forwarded/1e6, f, dropped, fs-f-dropped, gs, g)
	if offered < 17e6 {
		t.Fatalf("the flood offered only %.1f Mbit/s: not a test of the cap", offered/1e6)
	}
	if forwarded > 1.02*limit {
		t.Errorf("flood forwarded at %.2f Mbit/s, above the cap's %.2f", forwarded/1e6, limit/1e6)
	}
	if forwarded < 0.8*DefaultMaxPublisherBitrate {
		t.Errorf("flood forwarded at %.2f Mbit/s, well under the cap", forwarded/1e6)
	}
	if float64(dropped) < 0.9*float64(fs-f) {
		t.Errorf("dropped %d, yet %d were not forwarded", dropped, fs-f)
	}
	if g < gs-1 { // one packet may be in flight at either end
		t.Errorf("good publisher's subscriber lost packets: %d of %d", g, gs)
	}
}

// stallProxy relays ICE-TCP between a client and the server and can stop
// reading from the server, like a subscriber whose network stalls. Its
// socket to the server has a small receive buffer, set before connecting
// so that the window is small from the start: a stall fills the server's
// socket within a fraction of a second instead of megabytes later.
type stallProxy struct {
	ln       net.Listener
	stalled  atomic.Bool
	accepted atomic.Int32
	relayed  atomic.Int64 // bytes relayed from the server
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
}

// proxyReadBuffer is the proxy's receive buffer towards the server.
const proxyReadBuffer = 4 << 10

func newStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln}
	d := net.Dialer{Timeout: time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, proxyReadBuffer)
		})
		return errors.Join(err, serr)
	}}
	t.Cleanup(p.close)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := d.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.accepted.Add(1)
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() {
				defer p.wg.Done()
				_, _ = io.Copy(s, c)
			}()
			go func() {
				defer p.wg.Done()
				buf := make([]byte, 2048)
				for {
					for p.stalled.Load() {
						time.Sleep(5 * time.Millisecond)
					}
					n, err := s.Read(buf)
					if err != nil {
						return
					}
					p.relayed.Add(int64(n))
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}

func (p *stallProxy) close() {
	p.stalled.Store(false)
	_ = p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// A subscriber over ICE-TCP that stops reading: its packets are queued up
// to sinkQueue and then dropped (DroppedStuck), nothing else buffers
// them, the other subscriber and the publisher's reader do not wait for
// it, and it can still be removed.
func TestStuckSubscriberDoesNotStallOthers(t *testing.T) {
	s := newTestSFU(t, Config{TCPAddr: "127.0.0.1:0"})
	r := s.Room("r")
	serverPort := strconv.Itoa(s.TCPAddr().(*net.TCPAddr).Port)
	proxy := newStallProxy(t, s.TCPAddr().String())
	proxyPort := strconv.Itoa(proxy.ln.Addr().(*net.TCPAddr).Port)
	// The stuck client is TCP only and learns one server candidate: the
	// server's ICE-TCP one, with the proxy's port.
	re := regexp.MustCompile(` ` + serverPort + ` typ host tcptype passive`)
	viaProxy := func(c webrtc.ICECandidateInit) (webrtc.ICECandidateInit, bool) {
		if !re.MatchString(c.Candidate) || !strings.Contains(c.Candidate, "127.0.0.1") {
			return c, false
		}
		c.Candidate = re.ReplaceAllString(c.Candidate, " "+proxyPort+" typ host tcptype passive")
		return c, true
	}
	pub := newClient(t, r, "pub", JoinOptions{Publish: true})
	pub.videoPPS, pub.videoLen = 400, 1100 // ~3.5 Mbit/s
	ok := newClient(t, r, "ok", JoinOptions{})
	stuck := newClientAPI(t, r, "stuck", JoinOptions{}, clientAPI(t, true), viaProxy)
	pub.publish()
	waitFor(t, 10*time.Second, "both receive", func() bool {
		return received(ok, []*client{pub}, 20) && received(stuck, []*client{pub}, 20)
	})
	pair, err := stuck.down.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Remote.Protocol != webrtc.ICEProtocolTCP ||
		strconv.Itoa(int(pair.Remote.Port)) != proxyPort || proxy.relayed.Load() == 0 {
		t.Fatalf("the stuck client does not go through the proxy: pair %v (%v), %d bytes relayed",
			pair, err, proxy.relayed.Load())
	}
	if !stuck.m.sink.queued.Load() || ok.m.sink.queued.Load() {
		t.Fatal("the TCP subscriber should be queued, the UDP one direct")
	}

	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	proxy.stalled.Store(true)
	stallAt := time.Now()
	waitFor(t, 2*time.Second, "the stall is felt", func() bool { return r.Stats().DroppedStuck > 0 })
	felt := time.Since(stallAt)

	// Measure with every buffer on the way full.
	sent := func() int64 { return pub.sentV.Load() + pub.sentA.Load() }
	stuckGot := func() int { return stuck.count("pub/video") + stuck.count("pub/audio") }
	o0, v0, s0, g0, d0 := ok.count("pub/video"), pub.sentV.Load(), sent(), stuckGot(), r.Stats().DroppedStuck
	start := time.Now()
	maxQ := 0
	for time.Since(start) < 1500*time.Millisecond {
		maxQ = max(maxQ, len(stuck.m.sink.q))
		time.Sleep(10 * time.Millisecond)
	}
	el := time.Since(start)
	o, v, sn, g, d := ok.count("pub/video")-o0, pub.sentV.Load()-v0, sent()-s0, stuckGot()-g0, r.Stats().DroppedStuck-d0
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	// What was offered to the stuck subscriber and neither reached it nor
	// was dropped is held somewhere: with full buffers, nothing more.
	held := sn - int64(g) - int64(d)
	t.Logf("stall felt after %v; over %v: publisher sent %d video (%d in all), ok received %d (%.1f%%); "+
		"stuck received %d, dropped %d, held %d more; queue max %d of %d; heap %d → %d KB",
		felt.Round(time.Millisecond), el.Round(time.Millisecond), v, sn, o, 100*float64(o)/float64(v), g, d, held,
		maxQ, sinkQueue, ms0.HeapAlloc>>10, ms1.HeapAlloc>>10)
	if felt > time.Second {
		t.Errorf("the stall took %v to be felt", felt)
	}
	if float64(o) < 0.95*float64(v) {
		t.Errorf("the other subscriber got %d of %d", o, v)
	}
	if d == 0 {
		t.Error("nothing dropped for the stuck subscriber")
	}
	if maxQ > sinkQueue {
		t.Errorf("queue %d > %d", maxQ, sinkQueue)
	}
	if held > sinkQueue/4 {
		t.Errorf("%d packets held beyond full buffers: something buffers without bound", held)
	}

	// Leaving must not wait for the stalled socket.
	left := make(chan struct{})
	go func() {
		r.Leave("stuck")
		close(left)
	}()
	select {
	case <-left:
	case <-time.After(3 * time.Second):
		t.Fatal("Leave of a stuck subscriber blocks")
	}
}
