package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// TestBenchJoin runs the command as a user would, with few runs, and checks
// the shape of its output: two timing lines, then join_ratio=X last.
func TestBenchJoin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"bench", "join", "--runs", "3", "--warmup", "1"}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	lines := bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n"))
	if len(lines) != 3 {
		t.Fatalf("want 3 lines, got:\n%s", out.String())
	}
	m := regexp.MustCompile(`^join_ratio=(\d+\.\d\d)$`).FindSubmatch(lines[2])
	if m == nil {
		t.Fatalf("last line %q is not join_ratio=X.XX", lines[2])
	}
	if r, _ := strconv.ParseFloat(string(m[1]), 64); r <= 0 {
		t.Fatalf("join_ratio %v", r)
	}
	t.Log(out.String())
}

// BenchmarkJoinThroughServer: one op is a newcomer dialing into a room with
// one member until both PeerConnections are connected (then both leave).
func BenchmarkJoinThroughServer(b *testing.B) { benchmarkJoin(b, false) }

// BenchmarkJoinDirect is the floor: the same two pion peers, SDP exchanged
// in process.
func BenchmarkJoinDirect(b *testing.B) { benchmarkJoin(b, true) }

func benchmarkJoin(b *testing.B, direct bool) {
	ctx := context.Background()
	jb, err := startJoinBench(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer jb.close()
	f := jb.throughServer
	if direct {
		f = jb.direct
	}
	var total time.Duration
	for b.Loop() {
		d, err := jb.run(ctx, 20*time.Second, f)
		if err != nil {
			b.Fatal(err)
		}
		total += d
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs-to-connected/op")
}
