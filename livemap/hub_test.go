package livemap

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"crisisroom/declarations"
	"crisisroom/protocol"
	"crisisroom/rooms"
)

// fakeSource is a hand-written Source whose states the test sets.
type fakeSource struct {
	mu     sync.Mutex
	states map[string]declarations.CommuneState
}

func (f *fakeSource) set(code string, v int64, total int) declarations.CommuneState {
	f.mu.Lock()
	defer f.mu.Unlock()
	cs := declarations.CommuneState{Code: code, Version: v, Total: total, ByPlace: map[string]int{"ehpad": total}}
	f.states[code] = cs
	dep := f.states[""]
	dep.Version++
	dep.Total += total
	f.states[""] = dep
	return cs
}

func (f *fakeSource) Snapshot() []declarations.CommuneState {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []declarations.CommuneState
	for c, s := range f.states {
		if c != "" {
			out = append(out, s)
		}
	}
	return out
}

func (f *fakeSource) State(code string) declarations.CommuneState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.states[code]
}

type recorder struct {
	mu     sync.Mutex
	frames [][]byte
	got    chan struct{}
}

func (r *recorder) Send(f rooms.Frame) {
	r.mu.Lock()
	r.frames = append(r.frames, f.Data)
	r.mu.Unlock()
	select {
	case r.got <- struct{}{}:
	default:
	}
}

type decoded struct {
	typ   string
	seq   uint64
	state map[string]State
}

func (r *recorder) all(t *testing.T) []decoded {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []decoded
	for _, b := range r.frames {
		var env protocol.Envelope
		var body struct {
			Seq    uint64  `json:"seq"`
			States []State `json:"states"`
		}
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(env.Data, &body); err != nil {
			t.Fatal(err)
		}
		d := decoded{typ: env.Type, seq: body.Seq, state: map[string]State{}}
		for _, s := range body.States {
			d.state[s.Code] = s
		}
		out = append(out, d)
	}
	return out
}

func TestSnapshotThenContiguousDeltasWithIncreasingVersions(t *testing.T) {
	src := &fakeSource{states: map[string]declarations.CommuneState{}}
	src.set("56121", 1, 1)
	h := NewHub(src, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	updates := make(chan declarations.CommuneState, 100)
	go h.Run(ctx, updates, time.Hour)

	sub := &recorder{got: make(chan struct{}, 1)}
	h.Subscribe(sub)
	for v := int64(2); v <= 20; v++ {
		cs := src.set("56121", v, int(v))
		updates <- cs
		if v%5 == 0 { // a duplicate and a stale one: must be ignored
			updates <- cs
			updates <- declarations.CommuneState{Code: "56121", Version: 1, Total: 999}
		}
	}
	waitFor(t, func() bool {
		fs := sub.all(t)
		return len(fs) > 0 && fs[len(fs)-1].state["56121"].V == 20
	})
	fs := sub.all(t)
	if fs[0].typ != TypeSnapshot || fs[0].state["56121"].V != 1 {
		t.Fatalf("first frame %+v", fs[0])
	}
	lastSeq, lastV := fs[0].seq, int64(1)
	for _, f := range fs[1:] {
		if f.typ != TypeDelta || f.seq != lastSeq+1 {
			t.Fatalf("frame %s seq %d after %d", f.typ, f.seq, lastSeq)
		}
		lastSeq = f.seq
		if s, ok := f.state["56121"]; ok {
			if s.V <= lastV || s.Total == 999 {
				t.Fatalf("version %d after %d (total %d)", s.V, lastV, s.Total)
			}
			lastV = s.V
		}
	}
}

func TestReconcileRepairsLostBusMessage(t *testing.T) {
	src := &fakeSource{states: map[string]declarations.CommuneState{}}
	h := NewHub(src, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Run(ctx, nil, 20*time.Millisecond)
	sub := &recorder{got: make(chan struct{}, 1)}
	h.Subscribe(sub)
	src.set("56003", 7, 3) // changed at the source, never published on the bus
	waitFor(t, func() bool {
		fs := sub.all(t)
		return fs[len(fs)-1].state["56003"].V == 7
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
