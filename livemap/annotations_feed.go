package livemap

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"crisisroom/protocol"
	"crisisroom/rooms"
)

// Message types of annotations and layers (server → client).
const (
	TypeAnnotation  = "annotation"  // AnnotationEvent: one change, to the room's map watchers
	TypeAnnotations = "annotations" // AnnotationList: the room's set, after the map snapshot
	TypeLayers      = "layers"      // the operator layers' list, to every map watcher
)

// AnnotationEvent is one change. A delete carries the annotation as it was,
// with its new version.
type AnnotationEvent struct {
	Op         string     `json:"op"`
	Annotation Annotation `json:"annotation"`
}

// AnnotationList is a room's live annotations, oldest first.
type AnnotationList struct {
	Room  string       `json:"room"`
	Items []Annotation `json:"items"`
}

// Change is one annotate request, already stripped to what the client may
// set (Item: ID for update and delete; kind, coords, label, colour).
type Change struct {
	Room string
	By   Author
	Op   string // protocol.OpCreate, OpUpdate or OpDelete
	Item Annotation
}

// Annotations keeps each room's annotations in memory (loaded from the store
// on first use) and fans changes out to the room's map watchers. The set is
// cached so that a crowd of watchers re-subscribing after a restart costs
// one query and one encoding per room.
type Annotations struct {
	st  AnnotationStore
	log *slog.Logger
	now func() time.Time

	mu       sync.Mutex
	rooms    map[string]*annoRoom
	watchers map[Subscriber]*annoRoom
}

type annoRoom struct {
	name string
	// mu serialises a room's writes with their fan-out, so every watcher
	// sees the versions in order, and a new watcher's list is followed by
	// exactly the changes made after it.
	mu     sync.Mutex
	loaded bool
	items  map[string]Annotation
	points int
	list   []byte // encoded AnnotationList, nil when stale
	subs   map[Subscriber]struct{}
}

// NewAnnotations returns the service on st.
func NewAnnotations(st AnnotationStore, log *slog.Logger) *Annotations {
	return &Annotations{st: st, log: log, now: time.Now, rooms: map[string]*annoRoom{}, watchers: map[Subscriber]*annoRoom{}}
}

func (a *Annotations) room(name string) *annoRoom {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.rooms[name]
	if r == nil {
		r = &annoRoom{name: name, items: map[string]Annotation{}, subs: map[Subscriber]struct{}{}}
		a.rooms[name] = r
	}
	return r
}

func (a *Annotations) loadLocked(ctx context.Context, r *annoRoom) error {
	if r.loaded {
		return nil
	}
	list, err := a.st.List(ctx, r.name)
	if err != nil {
		return fmt.Errorf("load annotations of %q: %w", r.name, err)
	}
	for _, it := range list {
		r.items[it.ID] = it
		r.points += len(it.Coords)
	}
	r.loaded = true
	return nil
}

func (r *annoRoom) listLocked() []byte {
	if r.list == nil {
		l := AnnotationList{Room: r.name, Items: make([]Annotation, 0, len(r.items))}
		for _, it := range r.items {
			l.Items = append(l.Items, it)
		}
		sort.Slice(l.Items, func(i, j int) bool {
			x, y := l.Items[i], l.Items[j]
			return x.CreatedAt.Before(y.CreatedAt) || x.CreatedAt.Equal(y.CreatedAt) && x.ID < y.ID
		})
		r.list = protocol.Encode(TypeAnnotations, "", l)
	}
	return r.list
}

// Watch sends s the room's annotations and then every change to them, until
// Unwatch. A subscriber watches one room at a time.
func (a *Annotations) Watch(ctx context.Context, room string, s Subscriber) error {
	a.Unwatch(s)
	r := a.room(room)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := a.loadLocked(ctx, r); err != nil {
		return err
	}
	s.Send(rooms.Frame{Data: r.listLocked()})
	r.subs[s] = struct{}{}
	a.mu.Lock()
	a.watchers[s] = r
	a.mu.Unlock()
	return nil
}

// Unwatch stops the changes to s.
func (a *Annotations) Unwatch(s Subscriber) {
	a.mu.Lock()
	r := a.watchers[s]
	delete(a.watchers, s)
	a.mu.Unlock()
	if r != nil {
		r.mu.Lock()
		delete(r.subs, s)
		r.mu.Unlock()
	}
}

// List returns a room's live annotations, oldest first.
func (a *Annotations) List(ctx context.Context, room string) ([]Annotation, error) {
	r := a.room(room)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := a.loadLocked(ctx, r); err != nil {
		return nil, err
	}
	out := make([]Annotation, 0, len(r.items))
	for _, it := range r.items {
		out = append(out, it)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].CreatedAt.Before(out[j].CreatedAt) || out[i].CreatedAt.Equal(out[j].CreatedAt) && out[i].ID < out[j].ID
	})
	return out, nil
}

// Apply checks the annotation, stores the change and shows it to the
// room's watchers. origin (the author's socket) gets it with reqID echoed,
// watching or not, so it learns the assigned ID. Who may draw is decided
// before (access.RoomAnnotate, in signaling). Errors: *ValidationError,
// ErrNotFound, ErrTooMany, or a store failure.
func (a *Annotations) Apply(ctx context.Context, c Change, origin Subscriber, reqID string) (Annotation, error) {
	if c.Op != protocol.OpDelete {
		if err := c.Item.Validate(); err != nil {
			return Annotation{}, err
		}
		c.Item.Color = strings.ToLower(c.Item.Color)
	}
	r := a.room(c.Room)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := a.loadLocked(ctx, r); err != nil {
		return Annotation{}, err
	}
	got, err := a.storeLocked(ctx, r, c)
	if err != nil {
		return Annotation{}, err
	}
	r.list = nil
	ev := AnnotationEvent{Op: c.Op, Annotation: got}
	shared := rooms.Frame{Data: protocol.Encode(TypeAnnotation, "", ev)}
	for s := range r.subs {
		if s != origin {
			s.Send(shared)
		}
	}
	origin.Send(rooms.Frame{Data: protocol.Encode(TypeAnnotation, reqID, ev)})
	return got, nil
}

// storeLocked enforces the room's caps, writes the change and updates the
// cache.
func (a *Annotations) storeLocked(ctx context.Context, r *annoRoom, c Change) (Annotation, error) {
	now := a.now().UTC().Truncate(time.Millisecond) // what the store keeps
	old, exists := r.items[c.Item.ID]
	if c.Op != protocol.OpCreate && !exists {
		return Annotation{}, ErrNotFound
	}
	if c.Op == protocol.OpDelete {
		got, err := a.st.Delete(ctx, r.name, c.Item.ID, c.By, now)
		if err != nil {
			return Annotation{}, err
		}
		delete(r.items, got.ID)
		r.points -= len(old.Coords)
		return got, nil
	}
	if c.Op == protocol.OpCreate {
		if len(r.items) >= MaxRoomItems {
			return Annotation{}, fmt.Errorf("%w: %d, at most %d: delete some first", ErrTooMany, len(r.items), MaxRoomItems)
		}
		c.Item.ID, old = rooms.NewID(), Annotation{}
	}
	if p := r.points - len(old.Coords) + len(c.Item.Coords); p > MaxRoomPoints {
		return Annotation{}, fmt.Errorf("%w: %d points in all, at most %d: simplify or delete some", ErrTooMany, p, MaxRoomPoints)
	}
	in := c.Item
	in.Room, in.Editor, in.EditorName, in.UpdatedAt = r.name, c.By.ID, c.By.Name, now
	got, err := a.st.Put(ctx, in)
	if err != nil {
		return Annotation{}, err
	}
	r.items[got.ID] = got
	r.points += len(got.Coords) - len(old.Coords)
	return got, nil
}
