// Package livemap pushes the live figures of the map to every watcher: a
// snapshot on subscribe, then deltas that carry full commune states with
// their versions, numbered so that a watcher can tell it missed one.
//
// Every update is encoded once and the same bytes are queued for every
// watcher; updates that arrive while a fan-out is in progress are
// coalesced into the next delta (latest state per commune wins).
package livemap

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"crisisroom/declarations"
	"crisisroom/protocol"
	"crisisroom/rooms"
)

// Subscriber is a connection watching the map; signaling's connections
// implement it. Send must not block (a full queue disconnects the watcher:
// a slow watcher is dropped, never waited for).
type Subscriber interface {
	Send(f rooms.Frame)
}

// Queuer is a Subscriber whose Send may write at once, on the caller's
// goroutine (signaling's connections do, the cheapest way to deliver one
// frame). The hub's fan-outs use Queue, which only queues: a fan-out to
// thousands of watchers written from the hub's goroutine would hold the
// next update back for the whole of it.
type Queuer interface {
	Queue(f rooms.Frame)
}

// fanLocked queues f for every subscriber; the same bytes for all. h.mu is
// held.
func (h *Hub) fanLocked(f rooms.Frame) {
	for s := range h.subs {
		if q, ok := s.(Queuer); ok {
			q.Queue(f)
		} else {
			s.Send(f)
		}
	}
}

// State is the map's compact view of one commune ("" = the département):
// what colours a polygon and fills the header strip. The time series is
// fetched on demand (GET /api/v1/aggregates?commune=), not pushed.
type State struct {
	Code    string  `json:"code"`
	V       int64   `json:"v"`
	Total   int     `json:"total"`
	Today   int     `json:"today"`
	Last7   int     `json:"last7"`
	Rate7   float64 `json:"rate7"`
	Level   int     `json:"level"`
	ByPlace [4]int  `json:"by_place"` // domicile, ehpad, hopital, autre
	// The same split for today and the last 7 days: the map filters any
	// period by place.
	TodayByPlace [4]int `json:"today_by_place"`
	Last7ByPlace [4]int `json:"last7_by_place"`
}

// FromCommuneState compacts a declarations state.
func FromCommuneState(cs declarations.CommuneState) State {
	s := State{Code: cs.Code, V: cs.Version, Total: cs.Total, Today: cs.Today, Last7: cs.Last7, Rate7: cs.Rate7, Level: int(cs.Level)}
	for i, p := range declarations.Places {
		s.ByPlace[i] = cs.ByPlace[string(p)]
		s.TodayByPlace[i] = cs.TodayByPlace[string(p)]
		s.Last7ByPlace[i] = cs.Last7ByPlace[string(p)]
	}
	return s
}

// Snapshot is the map-snapshot payload.
type Snapshot struct {
	Seq    uint64  `json:"seq"`
	States []State `json:"states"`
}

// Delta is the map-delta payload: the states changed since Seq-1.
type Delta struct {
	Seq    uint64  `json:"seq"`
	States []State `json:"states"`
}

// Message types of the map topic (server → client).
const (
	TypeSnapshot = "map-snapshot"
	TypeDelta    = "map-delta"
)

// Source gives the authoritative states, for the first snapshot and for
// reconciliation (the bus may lose messages).
type Source interface {
	Snapshot() []declarations.CommuneState
	State(code string) declarations.CommuneState
}

// Hub fans map updates out to subscribers.
type Hub struct {
	src Source
	log *slog.Logger

	mu       sync.Mutex
	states   map[string]State
	seq      uint64
	subs     map[Subscriber]struct{}
	snapshot []byte // encoded snapshot at seq, nil when stale
	pending  map[string]State
	wake     chan struct{}
}

// NewHub returns a hub primed from src.
func NewHub(src Source, log *slog.Logger) *Hub {
	h := &Hub{src: src, log: log, states: map[string]State{}, subs: map[Subscriber]struct{}{},
		pending: map[string]State{}, wake: make(chan struct{}, 1)}
	for _, cs := range src.Snapshot() {
		h.states[cs.Code] = FromCommuneState(cs)
	}
	dep := FromCommuneState(src.State(""))
	h.states[""] = dep
	return h
}

// Offer proposes a newer state; older or equal versions are ignored, so
// duplicates and reordering on the bus are harmless.
func (h *Hub) Offer(s State) {
	h.mu.Lock()
	best := h.states[s.Code].V
	if p, ok := h.pending[s.Code]; ok && p.V > best {
		best = p.V
	}
	if s.V <= best {
		h.mu.Unlock()
		return
	}
	h.pending[s.Code] = s
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// Run fans out until ctx ends. updates delivers commune states: the
// declarations service's Changes, i.e. this instance's own commits and, in
// cluster mode, the states its Follow took from the other instances (the
// hub never reads the bus itself). Updates already waiting are folded into
// one delta. Every reconcile interval the hub compares versions with the
// source and offers whatever the feed dropped (Changes drops states when
// this loop falls behind); if updates is closed, reconciliation alone
// keeps the map right.
func (h *Hub) Run(ctx context.Context, updates <-chan declarations.CommuneState, reconcile time.Duration) {
	tick := time.NewTicker(reconcile)
	defer tick.Stop()
	depStale := false
	for {
		select {
		case <-ctx.Done():
			return
		case cs, ok := <-updates:
			if !ok {
				updates = nil // feed closed: reconciliation alone keeps us right
				continue
			}
			h.Offer(FromCommuneState(cs))
			// Every update already waiting joins the same delta: a burst (one
			// group commit) makes one delta, so one write per watcher, not
			// one per commune.
			for more := true; more; {
				select {
				case cs, ok := <-updates:
					if !ok {
						updates = nil
						more = false
						continue
					}
					h.Offer(FromCommuneState(cs))
				default:
					more = false
				}
			}
			// The département changes with every commune; it is summed
			// once per delta, not once per message of a burst.
			depStale = true
		case <-h.wake:
			if depStale {
				depStale = false
				h.Offer(FromCommuneState(h.src.State("")))
			}
			h.flush()
		case <-tick.C:
			h.Reconcile()
		}
	}
}

// Reconcile offers every source state; only newer versions pass.
func (h *Hub) Reconcile() {
	for _, cs := range h.src.Snapshot() {
		h.Offer(FromCommuneState(cs))
	}
	h.Offer(FromCommuneState(h.src.State("")))
}

// flush publishes what is pending as one delta, encoded once.
func (h *Hub) flush() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.pending) == 0 {
		return
	}
	d := Delta{States: make([]State, 0, len(h.pending))}
	for code, s := range h.pending {
		if s.V > h.states[code].V {
			h.states[code] = s
			d.States = append(d.States, s)
		}
	}
	clear(h.pending)
	if len(d.States) == 0 {
		return
	}
	sort.Slice(d.States, func(i, j int) bool { return d.States[i].Code < d.States[j].Code })
	h.seq++
	d.Seq = h.seq
	h.snapshot = nil
	h.fanLocked(rooms.Frame{Data: protocol.Encode(TypeDelta, "", d)})
}

// Subscribe adds s and sends it the snapshot. Under the hub lock, so the
// snapshot's seq and the next delta's are consecutive for s.
func (h *Hub) Subscribe(s Subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs[s] = struct{}{}
	s.Send(rooms.Frame{Data: h.snapshotLocked()})
}

// Resync sends s a fresh snapshot (after it saw a gap).
func (h *Hub) Resync(s Subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		s.Send(rooms.Frame{Data: h.snapshotLocked()})
	}
}

// Unsubscribe removes s.
func (h *Hub) Unsubscribe(s Subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, s)
}

// Subscribers counts the watchers.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// snapshotLocked is encoded once per seq: 5,000 watchers reconnecting
// after a restart share one encoding.
func (h *Hub) snapshotLocked() []byte {
	if h.snapshot != nil {
		return h.snapshot
	}
	snap := Snapshot{Seq: h.seq, States: make([]State, 0, len(h.states))}
	for _, s := range h.states {
		snap.States = append(snap.States, s)
	}
	sort.Slice(snap.States, func(i, j int) bool { return snap.States[i].Code < snap.States[j].Code })
	h.snapshot = protocol.Encode(TypeSnapshot, "", snap)
	return h.snapshot
}

// Broadcast sends one frame, encoded once by the caller, to every
// subscriber (e.g. the operator layers' list after a change).
func (h *Hub) Broadcast(f rooms.Frame) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fanLocked(f)
}
