package sfu

import (
	"flag"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

func TestFloodingPublisherIsCapped(t *testing.T) {
	s := newTestSFU(t, Config{})
	r := s.Room("r")
	flood := newClient(t, r, "flood", JoinOptions{Publish: true})
	flood.videoPPS, flood.videoLen = 2000, 1200 // ~19 Mbit/s
	good := newClient(t, r, "good", JoinOptions{Publish: true})
	good.videoPPS = 30
	sub := newClient(t, r, "sub", JoinOptions{})
	good.publish()
	waitFor(t, 10*time.Second, "sub receives good", func() bool { return received(sub, []*client{good}, 5) })
	flood.publish()
	waitFor(t, 10*time.Second, "sub receives flood", func() bool { return sub.count("flood/video") > 0 })
	g0, gs0, f0, fs0 := sub.count("good/video"), good.sentV.Load(), sub.count("flood/video"), flood.sentV.Load()
	start := time.Now()
	time.Sleep(1500 * time.Millisecond)
	el := time.Since(start).Seconds()
	g, gs, f, fs := sub.count("good/video")-g0, good.sentV.Load()-gs0, sub.count("flood/video")-f0, flood.sentV.Load()-fs0
	st := r.Stats()
	t.Logf("flood sent %.1f Mbit/s, forwarded %.1f Mbit/s; good: %d sent, %d received; stats %+v",
		float64(fs)*1212*8/el/1e6, float64(f)*1212*8/el/1e6, gs, g, st)
	if st.DroppedRateCap == 0 {
		t.Error("nothing dropped by the rate cap")
	}
	if rate := float64(f) * 1212 * 8 / el; rate > 1.3*DefaultMaxPublisherBitrate {
		t.Errorf("flood forwarded at %.0f bit/s", rate)
	}
	if float64(g) < 0.8*float64(gs) {
		t.Errorf("good publisher suffered: %d of %d", g, gs)
	}
}

var stuckTest = flag.Bool("sfu.stuck", false, "run the stuck-subscriber test (work in progress)")

// stallProxy relays an ICE-TCP connection and can stop reading from the
// server, like a subscriber whose network stalls.
type stallProxy struct {
	ln      net.Listener
	target  string
	stalled atomic.Bool
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, target: target}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			_ = s.(*net.TCPConn).SetReadBuffer(4096)
			t.Cleanup(func() { _ = c.Close(); _ = s.Close() })
			go func() { _, _ = io.Copy(s, c) }()
			go func() {
				buf := make([]byte, 2048)
				for {
					for p.stalled.Load() {
						time.Sleep(10 * time.Millisecond)
					}
					n, err := s.Read(buf)
					if err != nil {
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}

func TestStuckSubscriberDoesNotStallOthers(t *testing.T) {
	if testing.Short() || !*stuckTest {
		t.Skip("not yet green: through the stalled proxy the server's writes do not block, so nothing is counted as dropped (see report); run with -sfu.stuck")
	}
	s := newTestSFU(t, Config{TCPAddr: "127.0.0.1:0"})
	r := s.Room("r")
	serverPort := strconv.Itoa(s.TCPAddr().(*net.TCPAddr).Port)
	proxy := newStallProxy(t, s.TCPAddr().String())
	proxyPort := strconv.Itoa(proxy.ln.Addr().(*net.TCPAddr).Port)
	re := regexp.MustCompile(` ` + serverPort + ` typ host tcptype passive`)
	viaProxy := func(c webrtc.ICECandidateInit) webrtc.ICECandidateInit {
		c.Candidate = re.ReplaceAllString(c.Candidate, " "+proxyPort+" typ host tcptype passive")
		return c
	}
	pub := newClient(t, r, "pub", JoinOptions{Publish: true})
	pub.videoPPS, pub.videoLen = 400, 1100 // ~3.5 Mbit/s
	ok := newClient(t, r, "ok", JoinOptions{})
	stuck := newClientAPI(t, r, "stuck", JoinOptions{}, clientAPI(t, true), viaProxy)
	pub.publish()
	waitFor(t, 10*time.Second, "both receive", func() bool {
		return received(ok, []*client{pub}, 20) && received(stuck, []*client{pub}, 20)
	})
	if !stuck.m.sink.queued.Load() {
		t.Fatal("the TCP subscriber is not on the queued path")
	}
	proxy.stalled.Store(true)
	time.Sleep(500 * time.Millisecond) // let the buffers fill
	o0, s0, sent0 := ok.count("pub/video"), stuck.count("pub/video"), pub.sentV.Load()
	start := time.Now()
	time.Sleep(1500 * time.Millisecond)
	el := time.Since(start)
	o, st, sent := ok.count("pub/video")-o0, stuck.count("pub/video")-s0, pub.sentV.Load()-sent0
	out, _ := exec.Command("ss", "-tnm", "sport = :"+serverPort).CombinedOutput()
	t.Logf("ss: %s", out)
	stats := r.Stats()
	t.Logf("stalled %v: publisher sent %d, ok received %d, stuck received %d; dropped for stuck: %d",
		el, sent, o, st, stats.DroppedStuck)
	if stats.DroppedStuck == 0 {
		t.Error("nothing dropped for the stuck subscriber")
	}
	if float64(o) < 0.9*float64(sent) {
		t.Errorf("the other subscriber got %d of %d", o, sent)
	}
	if n := len(stuck.m.sink.q); n > sinkQueue {
		t.Errorf("queue %d", n)
	}
}
