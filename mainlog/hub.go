package mainlog

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"sync"

	"crisisroom/access"
	"crisisroom/livemap"
	"crisisroom/protocol"
	"crisisroom/rooms"
)

// Message types on the room's WebSocket (topic "log", server → client).
const (
	TypeSnapshot = "log-snapshot" // Snapshot: on subscribe, resync, and after the bus lost messages
	TypeEntry    = "log-entry"    // Entry: a new entry
	TypeBoard    = "log-board"    // Board: a new board version
	TypeEvent    = "log-event"    // Event: a new sub-event, or a changed taxonomy
)

// Subscriber is a socket watching the log (signaling's connections).
type Subscriber = livemap.Subscriber

// Snapshot is what a watcher of a room gets first: the events it may see
// (the room's event and those of its sub-events it may read) with their
// latest entry numbers, taxonomies and boards. Entries themselves are
// read over HTTP: a client whose numbers differ from the snapshot's reads
// what it misses.
type Snapshot struct {
	Room   string           `json:"room"`
	Events []Event          `json:"events"`
	Boards map[string]Board `json:"boards"`
}

// Hub keeps the events' live state in memory and fans changes out to the
// sockets watching the log of a room. A room's watchers see the changes of
// the room's event and of the sub-events below it that they may read.
type Hub struct {
	mu     sync.Mutex
	events map[string]*Event
	boards map[string]Board
	// rooms holds each room's watchers with the principal they
	// subscribed as: each change is decided for each of them.
	rooms    map[string]map[Subscriber]*access.Principal
	watchers map[Subscriber]string
}

func newHub() *Hub {
	return &Hub{events: map[string]*Event{}, boards: map[string]Board{},
		rooms: map[string]map[Subscriber]*access.Principal{}, watchers: map[Subscriber]string{}}
}

// readsLog is this package's one rule for reading a log: p reads an
// event's log if a direct read of that event would let it, decided in
// the event's own chain (the event and its ancestors, nearest first),
// where a direct membership wins over what is inherited. Reads that
// gather sub-events (the tree, its export, the live feed) ask it for each
// event, so that a role in the parent does not open a sub-event closed to
// p.
func readsLog(p *access.Principal, chain []string) bool {
	return access.Decide(p, access.LogRead, chain) == nil
}

// readsLocked tells whether p reads slug's log.
func (h *Hub) readsLocked(p *access.Principal, slug string) bool {
	return readsLog(p, h.chainSlugsLocked(slug))
}

// treeLocked lists slug and the events below it whose log p reads. slug
// itself is the caller's to have decided (a read of its log, a
// subscription to its room: a room's name is its event's slug).
func (h *Hub) treeLocked(p *access.Principal, slug string) []string {
	out := []string{slug}
	for other := range h.events {
		if other == slug {
			continue
		}
		chain := h.chainSlugsLocked(other)
		if slices.Contains(chain, slug) && readsLog(p, chain) {
			out = append(out, other)
		}
	}
	return out
}

// load replaces the cached state with the store's.
func (h *Hub) load(ctx context.Context, st Store) error {
	evs, err := st.Events(ctx)
	if err != nil {
		return err
	}
	boards := make(map[string]Board, len(evs))
	for _, e := range evs {
		b, err := st.Board(ctx, e.Slug)
		if err != nil {
			return err
		}
		boards[e.Slug] = b
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range evs {
		e := evs[i]
		if old := h.events[e.Slug]; old != nil && old.LastSeq > e.LastSeq {
			e.LastSeq = old.LastSeq
		}
		h.events[e.Slug] = &e
	}
	for slug, b := range boards {
		if old, ok := h.boards[slug]; !ok || b.Version >= old.Version {
			h.boards[slug] = b
		}
	}
	return nil
}

// event returns a copy of a cached event.
func (h *Hub) event(slug string) (Event, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.events[slug]
	if e == nil {
		return Event{}, false
	}
	return copyEvent(*e), true
}

// all returns copies of every cached event, oldest first.
func (h *Hub) all() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Event, 0, len(h.events))
	for _, e := range h.events {
		out = append(out, copyEvent(*e))
	}
	sortEvents(out)
	return out
}

func copyEvent(e Event) Event {
	e.Tags = append([]Tag(nil), e.Tags...)
	return e
}

func sortEvents(evs []Event) {
	sort.Slice(evs, func(i, j int) bool {
		a, b := evs[i], evs[j]
		return a.CreatedAt.Before(b.CreatedAt) || a.CreatedAt.Equal(b.CreatedAt) && a.Slug < b.Slug
	})
}

// chainSlugsLocked lists slug and its ancestors, nearest first.
func (h *Hub) chainSlugsLocked(slug string) []string {
	var out []string
	for i := 0; slug != "" && i < 64; i++ { // bounded: a corrupt parent loop must not hang
		e := h.events[slug]
		if e == nil {
			break
		}
		out = append(out, slug)
		slug = e.Parent
	}
	return out
}

// Watch sends s the room's snapshot and then every change p may see,
// until Unwatch. A socket watches one room, as the principal the
// subscription was decided for.
func (h *Hub) Watch(_ context.Context, room string, p *access.Principal, s Subscriber) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unwatchLocked(s)
	subs := h.rooms[room]
	if subs == nil {
		subs = map[Subscriber]*access.Principal{}
		h.rooms[room] = subs
	}
	subs[s] = p
	h.watchers[s] = room
	send(s, rooms.Frame{Data: protocol.Encode(TypeSnapshot, "", h.snapshotLocked(room, p))})
	return nil
}

// Unwatch stops the changes to s.
func (h *Hub) Unwatch(s Subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unwatchLocked(s)
}

func (h *Hub) unwatchLocked(s Subscriber) {
	room, ok := h.watchers[s]
	if !ok {
		return
	}
	delete(h.watchers, s)
	delete(h.rooms[room], s)
	if len(h.rooms[room]) == 0 {
		delete(h.rooms, room)
	}
}

// Resync sends s its room's snapshot again (the client saw a gap).
func (h *Hub) Resync(s Subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if room, ok := h.watchers[s]; ok {
		send(s, rooms.Frame{Data: protocol.Encode(TypeSnapshot, "", h.snapshotLocked(room, h.rooms[room][s]))})
	}
}

// Watchers counts the sockets watching the log.
func (h *Hub) Watchers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.watchers)
}

// snapshotLocked is room's snapshot as p may see it. The room's event is
// always in it: the subscription was decided for it.
func (h *Hub) snapshotLocked(room string, p *access.Principal) Snapshot {
	snap := Snapshot{Room: room, Events: []Event{}, Boards: map[string]Board{}}
	for _, slug := range h.treeLocked(p, room) {
		if e := h.events[slug]; e != nil {
			snap.Events = append(snap.Events, copyEvent(*e))
			snap.Boards[slug] = h.boards[slug]
		}
	}
	sortEvents(snap.Events)
	return snap
}

// resyncAll sends every watcher a fresh snapshot (after the bus lost
// messages: what they miss, they read again).
func (h *Hub) resyncAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for room, subs := range h.rooms {
		for s, p := range subs {
			send(s, rooms.Frame{Data: protocol.Encode(TypeSnapshot, "", h.snapshotLocked(room, p))})
		}
	}
}

// change is one update, applied locally and published to the other
// instances of a cluster.
type change struct {
	Origin string `json:"origin"`
	Entry  *Entry `json:"entry,omitempty"`
	Board  *Board `json:"board,omitempty"`
	Event  *Event `json:"event,omitempty"`
}

// apply updates the cache and shows the change to the watchers who may
// see it: those of the rooms above it whose principal reads the changed
// event's log. The same bytes go to every one of them.
func (h *Hub) apply(c change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var slug string
	var f rooms.Frame
	switch {
	case c.Event != nil:
		e := copyEvent(*c.Event)
		if old := h.events[e.Slug]; old != nil && old.LastSeq > e.LastSeq {
			e.LastSeq = old.LastSeq
		}
		h.events[e.Slug] = &e
		if _, ok := h.boards[e.Slug]; !ok {
			h.boards[e.Slug] = Board{Event: e.Slug}
		}
		slug, f = e.Slug, rooms.Frame{Data: protocol.Encode(TypeEvent, "", e)}
	case c.Board != nil:
		if old, ok := h.boards[c.Board.Event]; ok && old.Version >= c.Board.Version {
			return
		}
		h.boards[c.Board.Event] = *c.Board
		slug, f = c.Board.Event, rooms.Frame{Data: protocol.Encode(TypeBoard, "", c.Board)}
	case c.Entry != nil:
		if e := h.events[c.Entry.Event]; e != nil && c.Entry.Seq > e.LastSeq {
			e.LastSeq = c.Entry.Seq
		}
		slug, f = c.Entry.Event, rooms.Frame{Data: protocol.Encode(TypeEntry, "", c.Entry)}
	default:
		return
	}
	chain := h.chainSlugsLocked(slug)
	for _, room := range chain { // an event's room is named by its slug
		for s, p := range h.rooms[room] {
			if readsLog(p, chain) {
				send(s, f)
			}
		}
	}
}

// send queues f without writing on the caller's goroutine when the socket
// can (see livemap.Queuer): the caller holds the hub's lock.
func send(s Subscriber, f rooms.Frame) {
	if q, ok := s.(livemap.Queuer); ok {
		q.Queue(f)
		return
	}
	s.Send(f)
}

func (c change) encode() []byte {
	b, _ := json.Marshal(c) // our own structs
	return b
}
