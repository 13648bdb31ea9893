package main

import (
	"bytes"
	"context"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBenchSFU runs `bench sfu` small and short (1 publisher, 2
// subscribers, 2 s per run) and checks its output: a figures line per
// run with packets flowing, loss and freezes sane, the SFU's own
// counters, then sfu_ratio=X last.
func TestBenchSFU(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds of media")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	args := []string{"bench", "sfu", "--publishers", "1", "--subscribers", "2", "--seconds", "2", "--warmup", "500ms", "--timeout", "40s"}
	if err := run(ctx, args, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	t.Log(out.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	fig := regexp.MustCompile(`^(floor|crisisroom) \(.*\): in (\d+) packets/s, out (\d+) packets/s, ([\d.]+) Mbit/s out; loss ([\d.]+) % .* freezes (\d+) .* p99 added latency ([\d.]+) ms \(p50 [\d.]+ ms\); .* = ([\d.]+) µs per forwarded packet; UDP drops \(full receive buffers\) at the forwarder's sockets \d+, at the clients' \d+, machine-wide \d+$`)
	runs := map[string]bool{}
	for _, l := range lines[1 : len(lines)-1] {
		if strings.HasPrefix(l, "note: a run lost") {
			continue // the checks below fail such a run anyway
		}
		if strings.HasPrefix(l, "  its own counters: RTP in ") {
			runs["own counters"] = true
			continue
		}
		m := fig.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("not a figures line: %q", l)
		}
		runs[m[1]] = true
		num := func(i int) float64 { v, _ := strconv.ParseFloat(m[i], 64); return v }
		// One publisher sends about 230 packets/s; two subscribers get
		// each of them.
		if in, out := num(2), num(3); in < 150 || out < 1.6*in || out > 2.5*in {
			t.Errorf("%s: in %v out %v packets/s", m[1], in, out)
		}
		if loss := num(5); loss > 2 {
			t.Errorf("%s: loss %v %% on loopback", m[1], loss)
		}
		if f := num(6); f != 0 {
			t.Errorf("%s: %v freezes", m[1], f)
		}
		if lat := num(7); lat <= 0 || lat > 500 {
			t.Errorf("%s: p99 added latency %v ms", m[1], lat)
		}
		if cpu := num(8); cpu <= 0 {
			t.Errorf("%s: cpu per packet %v µs", m[1], cpu)
		}
	}
	if !runs["floor"] || !runs["crisisroom"] || !runs["own counters"] {
		t.Fatalf("missing figures: %v", runs)
	}
	last := lines[len(lines)-1]
	m := regexp.MustCompile(`^sfu_ratio=(\d+\.\d\d)$`).FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("last line %q is not sfu_ratio=X.XX", last)
	}
	if r, _ := strconv.ParseFloat(m[1], 64); r <= 0 {
		t.Fatalf("sfu_ratio %v", r)
	}
}

// The counters the receivers keep: a retransmission counts once, across
// the 16-bit wrap; the histogram's bounds hold what they say.
func TestSFUCounters(t *testing.T) {
	var s seqSet
	n := 0
	for i := range 70000 {
		seq := uint16(65000 + i)
		if s.add(seq) {
			n++
		}
		if i >= 3 && i%7 == 0 && s.add(seq-3) { // a late retransmission
			t.Fatalf("seq %d counted twice", seq-3)
		}
	}
	if n != 70000 {
		t.Fatalf("%d distinct of 70000", n)
	}
	// A gap filled late (a retransmission of a loss) is new once.
	last := uint16((65000 + 70000 - 1) % 65536)
	if !s.add(last+2) || !s.add(last+1) || s.add(last+1) {
		t.Fatal("a gap filled late not counted exactly once")
	}
	var h latHist
	for _, us := range []int64{0, 5, 63, 64, 100, 1000, 12345, 999999, 1 << 40} {
		i := latBucket(us)
		if up := latUpper(i); up < min(us, latMaxUS) || (i > 0 && latUpper(i-1) >= us) {
			t.Fatalf("%d µs in bucket %d, bounds (%d, %d]", us, i, latUpper(i-1), up)
		}
	}
	for us := range int64(1000) {
		h.add(us)
	}
	if p := h.quantileUS(0.99); p < 989 || p > 1030 {
		t.Fatalf("p99 of 0..999 µs: %d", p)
	}
}

// TestUDPDrops overflows a socket nobody reads and finds its drops among
// this process's, on the side its port says.
func TestUDPDrops(t *testing.T) {
	ln, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_ = ln.SetReadBuffer(4096)
	c, err := net.DialUDP("udp4", nil, ln.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var clients portSet
	cl0, fwd0 := udpDrops(&clients)
	for range 200 {
		_, _ = c.Write(make([]byte, 1000))
	}
	cl1, fwd1 := udpDrops(&clients)
	if fwd1 == fwd0 || cl1 != cl0 {
		t.Fatalf("drops: forwarder %d → %d, clients %d → %d", fwd0, fwd1, cl0, cl1)
	}
	clients.add(ln.LocalAddr().(*net.UDPAddr).Port)
	if cl, _ := udpDrops(&clients); cl < fwd1-fwd0 {
		t.Fatalf("clients' drops %d, want at least %d", cl, fwd1-fwd0)
	}
}
