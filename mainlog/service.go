package mainlog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"crisisroom/access"
	"crisisroom/bus"
)

// TopicChanges is the bus topic on which the instances of a cluster show
// each other their changes (entries, boards, events).
const TopicChanges = "mainlog.change"

// Publisher is the part of the bus the service needs.
type Publisher interface {
	Publish(ctx context.Context, topic string, msg []byte) error
}

// RoomMaker creates the rooms of sub-events and mints their links (the
// app's rooms store).
type RoomMaker interface {
	// CreateRoom reports created=false when the name is taken.
	CreateRoom(ctx context.Context, name, title string) (created bool, err error)
	// RoomLink mints a link to room with role and returns its URL.
	RoomLink(ctx context.Context, room, role, label string) (string, error)
}

// Config of a Service. Store is required; the rest may be nil.
type Config struct {
	Store Store
	Rooms RoomMaker
	// KnownCommune checks an entry's commune; nil when the server has no
	// territory (then no entry may name a commune).
	KnownCommune func(code string) bool
	// AnnotationExists checks an entry's annotation in the event's room;
	// nil when annotations are off.
	AnnotationExists func(ctx context.Context, room, id string) (bool, error)
	Publisher        Publisher
	Log              *slog.Logger
	Now              func() time.Time
}

// Actor is who calls, as the app's access gate established it. What the
// actor may do was decided before the call (access.Routes); the service
// only uses the principal to tell which events exist for it.
type Actor struct {
	ID    string // the link's, token's or user's: entries and boards name it
	Label string
	P     *access.Principal
}

// sees tells whether the actor may read slug, given the events tree.
func (s *Service) seesLocked(a Actor, slug string) bool {
	return s.hub.readsLocked(a.P, slug)
}

// Chain is slug followed by the slugs of the events above it; an event
// this instance does not know is its own chain.
func (s *Service) Chain(slug string) []string {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	if c := s.hub.chainSlugsLocked(slug); len(c) > 0 {
		return c
	}
	return []string{slug}
}

// Service is the main courante of every event.
type Service struct {
	cfg    Config
	st     Store
	hub    *Hub
	log    *slog.Logger
	origin string // this instance, on the bus

	mu       sync.Mutex
	locks    map[string]*eventLock
	reloaded time.Time // last reload of the events for an unknown slug
}

// New loads the events and returns the service.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	s := &Service{cfg: cfg, st: cfg.Store, hub: newHub(), log: cfg.Log, origin: hex.EncodeToString(b), locks: map[string]*eventLock{}}
	if err := s.hub.load(ctx, s.st); err != nil {
		return nil, fmt.Errorf("load events: %w", err)
	}
	return s, nil
}

// Hub is the live feed of the rooms' logs (the WebSocket topic "log").
func (s *Service) Hub() *Hub { return s.hub }

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Millisecond) }

// eventLock serialises an event's writes with their fan-out, so that
// every watcher gets its entries in number order, and stamps them.
type eventLock struct {
	sync.Mutex
	last time.Time
}

// lock takes the event's lock. stamp gives an entry its time and ID under
// it: strictly after the event's previous entry, so that the order of
// times (the lists' order) is the order of numbers.
func (s *Service) lock(slug string) (stamp func(e *Entry), unlock func()) {
	s.mu.Lock()
	l := s.locks[slug]
	if l == nil {
		l = &eventLock{}
		s.locks[slug] = l
	}
	s.mu.Unlock()
	l.Lock()
	return func(e *Entry) {
		now := s.now()
		if !now.After(l.last) {
			now = l.last.Add(time.Millisecond)
		}
		l.last = now
		e.CreatedAt, e.ID = now, newEntryID(now)
	}, l.Unlock
}

// EnsureRoot creates a root event (its room must exist) unless it does.
func (s *Service) EnsureRoot(ctx context.Context, slug, title string) error {
	if _, ok := s.hub.event(slug); ok {
		return nil
	}
	e := Event{Slug: slug, Title: title, Kind: EventKinds[0], Room: slug, CreatedAt: s.now(), CreatedBy: "système", Tags: DefaultTags()}
	err := s.st.CreateEvent(ctx, e)
	if errors.Is(err, ErrExists) { // another instance made it
		return s.hub.load(ctx, s.st)
	}
	if err != nil {
		return err
	}
	s.publish(ctx, change{Event: &e})
	return nil
}

// Event returns an event by slug (ErrNotFound if there is none).
func (s *Service) Event(ctx context.Context, slug string) (Event, error) { return s.event(ctx, slug) }

// event returns a cached event, reading the store once more if it is not
// cached (another instance may have created it and its bus message may be
// late or lost).
func (s *Service) event(ctx context.Context, slug string) (Event, error) {
	if e, ok := s.hub.event(slug); ok {
		return e, nil
	}
	// At most one reload a second: requests for slugs that do not exist
	// must not each cost a read of every event.
	s.mu.Lock()
	due := time.Since(s.reloaded) >= time.Second
	if due {
		s.reloaded = time.Now()
	}
	s.mu.Unlock()
	if !due {
		return Event{}, ErrNotFound
	}
	if err := s.hub.load(ctx, s.st); err != nil {
		return Event{}, err
	}
	if e, ok := s.hub.event(slug); ok {
		return e, nil
	}
	return Event{}, ErrNotFound
}

// Visible returns the event if the actor may see it: its token is for the
// event's room or for the room of an event above it. Anything else is
// ErrNotFound, so that a link does not learn which other events exist.
func (s *Service) Visible(ctx context.Context, a Actor, slug string) (Event, error) {
	e, err := s.event(ctx, slug)
	if err != nil {
		return e, err
	}
	s.hub.mu.Lock()
	ok := s.seesLocked(a, slug)
	s.hub.mu.Unlock()
	if !ok {
		return Event{}, ErrNotFound
	}
	return e, nil
}

// Tree returns the events the actor sees, oldest first, and its home event:
// the topmost one it sees (the standing event "main" when it sees it);
// "" if it sees none.
func (s *Service) Tree(a Actor) (home string, events []Event) {
	events = []Event{}
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	for slug, e := range s.hub.events {
		if s.seesLocked(a, slug) {
			events = append(events, copyEvent(*e))
		}
	}
	sortEvents(events)
	for _, e := range events {
		if e.Slug == access.MainEvent {
			return e.Slug, events
		}
	}
	for _, e := range events {
		if e.Parent == "" || !s.seesLocked(a, e.Parent) {
			return e.Slug, events
		}
	}
	return "", events
}

// subtree lists slug and the events below it whose log the actor reads.
func (s *Service) subtree(a Actor, slug string) []string {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.hub.treeLocked(a.P, slug)
}

// publish shows a stored change: to this instance's watchers at once, to
// the cluster's other instances through the bus. Callers hold the event's
// lock, so that watchers get an event's changes in order.
func (s *Service) publish(ctx context.Context, c change) {
	s.hub.apply(c)
	if s.cfg.Publisher == nil {
		return
	}
	c.Origin = s.origin
	if err := s.cfg.Publisher.Publish(context.WithoutCancel(ctx), TopicChanges, c.encode()); err != nil {
		// Stored already; the other instances' watchers catch up on their
		// next resync.
		s.log.Warn("publish log change", "err", err)
	}
}

// Follow applies the other instances' changes until sub ends. When the bus
// may have lost some, the cache is read again and every watcher gets a new
// snapshot (and reads what it misses).
func (s *Service) Follow(ctx context.Context, sub bus.Subscription) {
	for {
		select {
		case msg, ok := <-sub.C():
			if !ok {
				return
			}
			var c change
			if err := json.Unmarshal(msg, &c); err != nil {
				s.log.Warn("bad log change on the bus", "err", err)
				continue
			}
			if c.Origin != s.origin {
				s.hub.apply(c)
			}
		case <-sub.Lost():
			if err := s.hub.load(ctx, s.st); err != nil {
				s.log.Warn("reload events after bus loss", "err", err)
			}
			s.hub.resyncAll()
		case <-ctx.Done():
			return
		}
	}
}
