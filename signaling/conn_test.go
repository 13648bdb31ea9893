package signaling_test

import (
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"crisisroom/livemap"
	"crisisroom/protocol"
)

// TestMapFanoutSlowWatcher: map deltas go out through the shared outbox.
// A watcher that stops reading fills its socket, gets a writer of its own,
// overflows its queue and is cut off with 4001 (after a bye), while the
// watchers that read get every delta, in order, without a gap.
func TestMapFanoutSlowWatcher(t *testing.T) {
	e := mapEnv(t)
	slowDialer := &websocket.Dialer{NetDialContext: (&net.Dialer{Control: smallRecvBuf}).DialContext}
	slow, _, err := e.dialWith(slowDialer, nil)
	if err != nil {
		t.Fatal(err)
	}
	slow.name = "slow"
	slow.send(protocol.TypeSubscribe, protocol.Subscribe{Topic: protocol.TopicMap, Token: e.token("main")})

	// More deltas than the send queue (256) holds, plus what the kernel
	// buffers for the small socket (a delta of 20 communes is ~2.5 KB).
	const deltas, perDelta = 1000, 20
	fast := make([]*biClient, 3)
	start := make([]uint64, len(fast))
	var codes []string
	for i := range fast {
		fast[i] = e.dial()
		fast[i].name = fmt.Sprintf("fast %d", i)
		fast[i].send(protocol.TypeSubscribe, protocol.Subscribe{Topic: protocol.TopicMap, Token: e.token("main")})
		var snap livemap.Snapshot
		fast[i].expect(livemap.TypeSnapshot, &snap)
		start[i] = snap.Seq
		for _, st := range snap.States[1 : 1+perDelta] { // [0] is the département
			codes = append(codes, st.Code)
		}
	}

	// Fast watchers read in the background; the first one paces the
	// updates, so that each becomes a delta of its own.
	got := make(chan uint64, deltas)
	errs := make(chan error, len(fast))
	var wg sync.WaitGroup
	for i, c := range fast {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- readDeltas(c, start[i], deltas, func(seq uint64) {
				if i == 0 {
					got <- seq
				}
			})
		}()
	}
	for n := 1; n <= deltas; n++ { // the store is empty: every version is news
		for _, code := range codes[:perDelta] {
			e.a.Map.Offer(livemap.State{Code: code, V: int64(n), Total: n})
		}
		select {
		case <-got:
		case <-time.After(biWait):
			t.Fatalf("delta %d did not reach the first fast watcher", n)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	frames, code := slow.readToClose()
	if code != protocol.CloseSlowConsumer || len(frames) == 0 || frames[len(frames)-1].Type != protocol.TypeBye {
		t.Fatalf("slow watcher: close %d after %d frames; want a bye and 4001", code, len(frames))
	}
	if len(frames) >= deltas {
		t.Fatalf("slow watcher got %d frames: its queue never overflowed", len(frames))
	}
	t.Logf("slow watcher got %d frames before 4001", len(frames))
}

// readDeltas reads n deltas after seq from, each numbered one more than the
// last, skipping other frames (the room's annotations).
func readDeltas(c *biClient, from uint64, n int, each func(seq uint64)) error {
	_ = c.ws.SetReadDeadline(time.Now().Add(4 * biWait))
	for seq := from; seq < from+uint64(n); {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			return fmt.Errorf("%s after seq %d: %w", c.name, seq, err)
		}
		var env protocol.Envelope
		if err := json.Unmarshal(b, &env); err != nil {
			return fmt.Errorf("%s: bad frame %q", c.name, b)
		}
		if env.Type != livemap.TypeDelta {
			continue
		}
		var d livemap.Delta
		if err := json.Unmarshal(env.Data, &d); err != nil || d.Seq != seq+1 {
			return fmt.Errorf("%s: delta %s after seq %d", c.name, env.Data, seq)
		}
		seq = d.Seq
		each(seq)
	}
	return nil
}

// TestClientPingIsAnswered: the server's writer answers a client's ping
// with a pong carrying the same payload, and the socket keeps working.
func TestClientPingIsAnswered(t *testing.T) {
	e := biStart(t, nil)
	c := e.dial()
	c.name = "pinger"
	pong := make(chan string, 1)
	c.ws.SetPongHandler(func(data string) error { pong <- data; return nil })
	if err := c.ws.WriteControl(websocket.PingMessage, []byte("ça va ?"), time.Now().Add(biWait)); err != nil {
		t.Fatal(err)
	}
	// Control frames are handled while reading: the error answering an
	// unjoined chat comes after the pong.
	id := c.send(protocol.TypeChat, protocol.Chat{Text: "x"})
	c.expectError(protocol.ErrNotJoined, id)
	select {
	case got := <-pong:
		if got != "ça va ?" {
			t.Fatalf("pong %q", got)
		}
	default:
		t.Fatal("no pong before the next frame")
	}
}
