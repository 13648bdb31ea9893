package livemap

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"crisisroom/declarations"
	"crisisroom/rooms"
)

// TestBurstIsOneDelta: commune states waiting on the bus together (one
// group commit) go out as one delta, so one write per watcher.
func TestBurstIsOneDelta(t *testing.T) {
	src := &fakeSource{states: map[string]declarations.CommuneState{}}
	h := NewHub(src, slog.New(slog.NewTextHandler(io.Discard, nil)))
	sub := &recorder{got: make(chan struct{}, 1)}
	h.Subscribe(sub)
	codes := []string{"56003", "56121", "56260", "56162", "56034"}
	updates := make(chan declarations.CommuneState, len(codes))
	for i, code := range codes {
		updates <- src.set(code, 1, i+1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Run(ctx, updates, time.Hour)
	waitFor(t, func() bool { return len(sub.all(t)) >= 2 })
	fs := sub.all(t)
	if len(fs) != 2 || fs[1].typ != TypeDelta {
		t.Fatalf("want the snapshot and one delta, got %d frames", len(fs))
	}
	for _, code := range append(codes, "") {
		if _, ok := fs[1].state[code]; !ok {
			t.Errorf("the delta lacks %q: %v", code, fs[1].state)
		}
	}
}

// queuer records which way frames came: the snapshot is for this
// subscriber alone (Send), fan-outs are queued (Queue).
type queuer struct {
	recorder
	queued int
}

func (q *queuer) Queue(f rooms.Frame) {
	q.mu.Lock()
	q.queued++
	q.mu.Unlock()
	q.Send(f)
}

func TestFanoutsAreQueued(t *testing.T) {
	src := &fakeSource{states: map[string]declarations.CommuneState{}}
	h := NewHub(src, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Run(ctx, nil, time.Hour)
	q := &queuer{recorder: recorder{got: make(chan struct{}, 1)}}
	h.Subscribe(q)
	h.Offer(State{Code: "56121", V: 3, Total: 2})
	waitFor(t, func() bool { return len(q.all(t)) == 2 })
	h.Broadcast(rooms.Frame{Data: []byte(`{"v":1,"type":"layers","data":{}}`)})
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.frames) != 3 || q.queued != 2 {
		t.Fatalf("%d frames, %d queued; want the snapshot sent, the delta and the broadcast queued", len(q.frames), q.queued)
	}
}
