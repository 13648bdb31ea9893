package rtcpeer

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// TestPairConnects checks the in-process floor: both sides connect, get
// each other's RTP and a data-channel message.
func TestPairConnects(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := NewPair(Config{Settings: Loopback(&webrtc.SettingEngine{})})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.Connect()
	for _, w := range []struct {
		n    *Node
		peer string
	}{{p.A, "b"}, {p.B, "a"}} {
		if err := w.n.WaitConnected(ctx, w.peer); err != nil {
			t.Fatal(err)
		}
		if err := w.n.WaitRTP(ctx, w.peer, 3); err != nil {
			t.Fatal(err)
		}
		if err := w.n.SendData(ctx, w.peer, "hello from "+w.n.ID()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.B.WaitEvent(ctx, EventData, "a", "hello from a"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.A.WaitEvent(ctx, EventData, "b", "hello from b"); err != nil {
		t.Fatal(err)
	}
	if n := p.A.Count(EventFailure, "") + p.B.Count(EventFailure, ""); n != 0 {
		t.Fatalf("%d negotiation failures: %v %v", n, p.A.Events(), p.B.Events())
	}
}

func TestEndpoint(t *testing.T) {
	for _, c := range []struct{ in, ws, tok string }{
		{"http://127.0.0.1:8080", "ws://127.0.0.1:8080/ws", ""},
		{"https://salle.example.fr/r/main#t=abc_DEF", "wss://salle.example.fr/ws", "abc_DEF"},
		{"ws://h:1/ws", "ws://h:1/ws", ""},
	} {
		ws, tok, err := endpoint(c.in)
		if err != nil || ws != c.ws || tok != c.tok {
			t.Errorf("endpoint(%q) = %q, %q, %v; want %q, %q", c.in, ws, tok, err, c.ws, c.tok)
		}
	}
	if _, _, err := endpoint("ftp://x"); err == nil {
		t.Error("ftp URL accepted")
	}
}

// TestPairCloseLeavesNoGoroutines: Close waits for pion's goroutines and
// ours, so the count comes back to where it was.
func TestPairCloseLeavesNoGoroutines(t *testing.T) {
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := NewPair(Config{Settings: Loopback(&webrtc.SettingEngine{})})
	if err != nil {
		t.Fatal(err)
	}
	p.Connect()
	if err := p.A.WaitRTP(ctx, "b", 3); err != nil {
		p.Close()
		t.Fatal(err)
	}
	p.Close()
	// A few of pion's helpers (data-channel open callbacks, timers) end
	// just after Close returns; give them a bounded moment.
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before, %d after Close:\n%s", base, n, buf[:runtime.Stack(buf, true)])
	}
}
