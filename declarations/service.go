package declarations

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Publisher is the part of the bus the service needs.
type Publisher interface {
	Publish(ctx context.Context, topic string, msg []byte) error
}

// Bus topics.
const (
	TopicCommuneState = "declarations.commune"
	TopicAlert        = "declarations.alert"
)

// Config of a Service.
type Config struct {
	Rules      Rules
	Alerts     AlertRule
	Population func(code string) int
	// Communes lists every commune code of the territory (for totals and
	// the "not declared yet" list).
	Communes []string
	// MaxBatch bounds one group commit.
	MaxBatch int
	// PublishStates: other instances follow the commune states on the bus
	// (cluster mode). One instance alone has no reader for them: its map
	// takes them from Changes.
	PublishStates bool
}

// Service takes declarations and amendments, commits them in groups and
// keeps the aggregates in memory.
type Service struct {
	cfg   Config
	store Store
	pub   Publisher
	log   *slog.Logger

	reqs chan *pending
	stop chan struct{}
	done chan struct{}
	// pendings recycles requests and their answer channels.
	pendings sync.Pool

	mu       sync.RWMutex
	cells    map[string]map[string]*[4]int // commune → date → counts by place index
	versions map[string]int64
	// dep and depVersion are the sums of cells and versions over the
	// communes, kept up to date as they change: the département's state
	// and level are computed on every commit.
	dep        map[string]*[4]int
	depVersion int64
	win        atomic.Pointer[dayWindow]
	levels     map[string]Level // last published level per commune ("" = département)
	// depPopulation is the sum over the communes, computed once: the
	// département's state is read on every commit.
	depPopulation int
	events        []AlertEvent

	// changes carries every commune state this instance learns, its own
	// and other instances', to the live map (see Changes).
	changes chan CommuneState
	stats   syncCounters
}

type pending struct {
	op  Op
	res chan OpResult
}

// New loads the aggregates from the store and starts the committer.
func New(ctx context.Context, cfg Config, st Store, pub Publisher, log *slog.Logger) (*Service, error) {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 512
	}
	if cfg.Rules.Location == nil {
		cfg.Rules.Location = time.UTC
	}
	if cfg.Rules.Now == nil {
		cfg.Rules.Now = time.Now
	}
	if cfg.Rules.MaxCount <= 0 {
		cfg.Rules.MaxCount = 200
	}
	cfg.Alerts = cfg.Alerts.withDefaults()
	s := &Service{cfg: cfg, store: st, pub: pub, log: log,
		reqs: make(chan *pending, 4*cfg.MaxBatch), stop: make(chan struct{}), done: make(chan struct{}),
		cells: map[string]map[string]*[4]int{}, dep: map[string]*[4]int{}, levels: map[string]Level{},
		changes: make(chan CommuneState, changesBuffer)}
	cells, versions, err := st.Counts(ctx)
	if err != nil {
		return nil, fmt.Errorf("load aggregates: %w", err)
	}
	for _, c := range cells {
		s.addLocked(c.Commune, c.Date, c.Place, c.Count)
	}
	s.versions = map[string]int64{}
	for code, v := range versions {
		s.setVersionLocked(code, v)
	}
	for _, code := range cfg.Communes {
		s.depPopulation += cfg.Population(code)
	}
	w := s.window()
	for _, code := range cfg.Communes {
		s.levels[code] = s.levelLocked(code, w)
	}
	s.levels[""] = s.levelLocked("", w)
	go s.run()
	return s, nil
}

// Close stops the committer after the batch in flight; waiting callers
// get ErrClosed (nothing of theirs was acknowledged).
func (s *Service) Close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// Rules returns the validation rules (for the form's limits).
func (s *Service) Rules() Rules { return s.cfg.Rules }

// Declare validates and durably stores one declaration. created is false
// when the same (declarant, idempotency key) was stored before with the
// same values: the original is returned and nothing is counted twice.
// The same key with other values is ErrKeyReused; nothing is counted.
func (s *Service) Declare(ctx context.Context, actor Actor, in Input) (d Declaration, created bool, err error) {
	if err := s.cfg.Rules.Validate(in); err != nil {
		return d, false, err
	}
	if !actor.Operator && actor.Commune != in.Commune {
		return d, false, ErrForbidden
	}
	d = Declaration{ID: newID(), Commune: in.Commune, Date: in.Date, Place: in.Place, Count: in.Count, Note: in.Note,
		IdempotencyKey: in.IdempotencyKey, Declarant: actor.ID, DeclarantLabel: actor.Label,
		CreatedAt: s.cfg.Rules.Now().UTC().Truncate(time.Millisecond), Revision: 1}
	r, err := s.submit(ctx, Op{Insert: &d})
	if err != nil {
		return Declaration{}, false, err
	}
	if r.Err == nil && r.Existed {
		if err := s.checkRetry(ctx, r.Decl, in); err != nil {
			return Declaration{}, false, err
		}
	}
	return r.Decl, !r.Existed, r.Err
}

// checkRetry tells a genuine retry (the values first sent under the key)
// from a reused key (ErrKeyReused). The comparison is with revision 1, the
// declaration as received: amendments change the row since, and a
// client's outbox resends only what it first sent. Inputs are stored as
// received, so the comparison is exact; nothing was written by the retry
// either way.
func (s *Service) checkRetry(ctx context.Context, stored Declaration, in Input) error {
	orig := Revision{Date: stored.Date, Place: stored.Place, Count: stored.Count, Note: stored.Note}
	if stored.Revision != 1 {
		revs, err := s.store.Revisions(ctx, stored.ID)
		if err != nil {
			return fmt.Errorf("declaration %s: read its first revision: %w", stored.ID, err)
		}
		if len(revs) == 0 || revs[0].Revision != 1 {
			return fmt.Errorf("declaration %s: no first revision", stored.ID)
		}
		orig = revs[0]
	}
	if stored.Commune != in.Commune || orig.Date != in.Date || orig.Place != in.Place || orig.Count != in.Count || orig.Note != in.Note {
		return ErrKeyReused
	}
	return nil
}

// Amend corrects a declaration; the store keeps the previous values in the
// audit trail.
func (s *Service) Amend(ctx context.Context, actor Actor, id string, a Amendment) (Declaration, error) {
	if err := s.cfg.Rules.ValidateAmendment(a); err != nil {
		return Declaration{}, err
	}
	r, err := s.submit(ctx, Op{Amend: &AmendOp{ID: id, Actor: actor, Amendment: a, At: s.cfg.Rules.Now().UTC().Truncate(time.Millisecond)}})
	if err != nil {
		return Declaration{}, err
	}
	return r.Decl, r.Err
}

// CanAmend is the amendment rule every store applies inside its
// transaction: operators amend anything, declarants their commune's.
func CanAmend(a Actor, d Declaration) bool {
	return a.Operator || (a.Commune != "" && a.Commune == d.Commune)
}

// ApplyAmendment returns d with a's changes and the next revision number.
func ApplyAmendment(d Declaration, a Amendment) Declaration {
	if a.Date != nil {
		d.Date = *a.Date
	}
	if a.Place != nil {
		d.Place = *a.Place
	}
	if a.Count != nil {
		d.Count = *a.Count
	}
	if a.Note != nil {
		d.Note = *a.Note
	}
	d.Revision++
	return d
}

func (s *Service) submit(ctx context.Context, op Op) (OpResult, error) {
	p, _ := s.pendings.Get().(*pending)
	if p == nil {
		p = &pending{res: make(chan OpResult, 1)}
	}
	p.op = op
	select {
	case s.reqs <- p:
	case <-s.stop:
		s.release(p)
		return OpResult{}, ErrClosed
	case <-ctx.Done():
		s.release(p)
		return OpResult{}, ctx.Err()
	}
	// Once queued we wait for the commit even if ctx ends: the caller may
	// retry with the same key and must then find the same result.
	r := <-p.res
	s.release(p) // its one answer taken, nobody else holds it
	return r, nil
}

func (s *Service) release(p *pending) {
	p.op = Op{}
	s.pendings.Put(p)
}

// run is the group committer: it takes every request waiting, commits them
// in one transaction (one fsync), and hands the batch to the finisher,
// which folds it into the aggregates, publishes and answers, while the
// next batch is being committed. Under load the batch grows by itself;
// alone, a request waits for nothing.
func (s *Service) run() {
	defer close(s.done)
	// One batch may wait for the finisher: the committer is never more
	// than one batch ahead, and batches are finished in commit order.
	committed := make(chan batchResult, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for b := range committed {
			s.finish(b)
		}
	}()
	defer func() { close(committed); <-finished }()
	for {
		var batch []*pending
		select {
		case p := <-s.reqs:
			batch = append(batch, p)
		case <-s.stop:
			s.failQueued()
			return
		}
	fill:
		for len(batch) < s.cfg.MaxBatch {
			select {
			case p := <-s.reqs:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		committed <- s.commit(batch)
	}
}

func (s *Service) failQueued() {
	for {
		select {
		case p := <-s.reqs:
			p.res <- OpResult{Err: ErrClosed}
		default:
			return
		}
	}
}

// batchResult is one committed (or failed) batch on its way to finish.
type batchResult struct {
	batch []*pending
	ops   []Op
	res   []OpResult
	err   error
}

func (s *Service) commit(batch []*pending) batchResult {
	ops := make([]Op, len(batch))
	for i, p := range batch {
		ops[i] = p.op
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := s.store.Apply(ctx, ops)
	return batchResult{batch: batch, ops: ops, res: res, err: err}
}

// finish takes a batch's results into the aggregates, publishes the new
// states and only then answers: a caller that got its answer finds its
// declaration in State and on the bus.
func (s *Service) finish(b batchResult) {
	if b.err != nil {
		s.log.Error("declarations commit failed", "ops", len(b.ops), "err", b.err)
		for _, p := range b.batch {
			p.res <- OpResult{Err: fmt.Errorf("%w: %v", ErrUnavailable, b.err)}
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	changed, stale := s.absorb(b.ops, b.res)
	if len(stale) > 0 {
		// Another instance changed these communes since we last heard: our
		// increments alone would be wrong, the store has the sums.
		s.stats.gapReloads.Add(1)
		reloaded, err := s.reload(ctx, stale)
		if err != nil {
			s.stats.syncErrors.Add(1)
			s.log.Warn("reload communes after a version gap", "communes", len(stale), "err", err)
		}
		for _, c := range reloaded {
			changed[c] = true
		}
	}
	s.publish(ctx, changed)
	for i, p := range b.batch {
		p.res <- b.res[i]
	}
}

// ErrUnavailable wraps store failures: nothing was stored, retry later.
var ErrUnavailable = fmt.Errorf("declarations store unavailable")

// absorb folds committed results into the in-memory aggregates and returns
// the communes whose state changed, and those it could not fold because
// another instance's change to them (a version in between) has not reached
// us yet: they must be reloaded from the store. Their versions stay as they
// were, so that a later reload or periodic sync still sees them behind.
func (s *Service) absorb(ops []Op, res []OpResult) (changed map[string]bool, stale []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed = map[string]bool{}
	gap := map[string]bool{}
	for i, r := range res {
		if r.Err != nil || r.Existed {
			continue
		}
		d := r.Decl
		have := s.versions[d.Commune]
		switch {
		case gap[d.Commune]:
			// The reload after the batch reads this op too.
		case r.Version <= have:
			// A newer state from another instance already counts this op.
		case r.Version == have+1:
			if ops[i].Amend != nil && r.Previous != nil {
				p := r.Previous
				s.addLocked(p.Commune, p.Date, p.Place, -p.Count)
			}
			s.addLocked(d.Commune, d.Date, d.Place, d.Count)
			s.setVersionLocked(d.Commune, r.Version)
			changed[d.Commune] = true
		default:
			gap[d.Commune] = true
			stale = append(stale, d.Commune)
		}
	}
	return changed, stale
}

func (s *Service) addLocked(commune, date, place string, n int) {
	idx := placeIndex(place)
	if idx < 0 {
		return
	}
	days := s.cells[commune]
	if days == nil {
		days = map[string]*[4]int{}
		s.cells[commune] = days
	}
	c := days[date]
	if c == nil {
		c = &[4]int{}
		days[date] = c
	}
	c[idx] += n
	dc := s.dep[date]
	if dc == nil {
		dc = &[4]int{}
		s.dep[date] = dc
	}
	dc[idx] += n
}

// setVersionLocked sets a commune's version and keeps their sum.
func (s *Service) setVersionLocked(code string, v int64) {
	s.depVersion += v - s.versions[code]
	s.versions[code] = v
}

func placeIndex(p string) int {
	for i, q := range Places {
		if string(q) == p {
			return i
		}
	}
	return -1
}

// publish sends each changed commune's full state (never an increment) and
// any level change. The bus is at-most-once; subscribers that miss one
// recover from a snapshot by version. The same states go to the local map,
// as values: it need not parse what we have just encoded.
func (s *Service) publish(ctx context.Context, changed map[string]bool) {
	if len(changed) == 0 {
		return
	}
	codes := make([]string, 0, len(changed))
	for c := range changed {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	states, events := s.statesAndEvents(codes)
	for i := range states {
		c := &states[i]
		s.emit(c.state())
		if s.pub == nil || !s.cfg.PublishStates {
			continue
		}
		if err := s.pub.Publish(ctx, TopicCommuneState, c.appendJSON(nil)); err != nil {
			s.log.Warn("publish commune state", "err", err)
		}
	}
	for _, ev := range events {
		if s.pub != nil {
			b, _ := json.Marshal(ev)
			if err := s.pub.Publish(ctx, TopicAlert, b); err != nil {
				s.log.Warn("publish alert", "commune", ev.Commune, "err", err)
			}
		}
		s.log.Info("alert level changed", "commune", ev.Commune, "from", ev.From.Name(), "to", ev.To.Name())
	}
}

// statesAndEvents computes the communes' current states and records their
// and the département's level changes, in one critical section so that
// the states and the levels agree.
func (s *Service) statesAndEvents(codes []string) (states []stateCalc, events []AlertEvent) {
	w := s.window()
	levels := make([]Level, len(codes))
	s.mu.Lock()
	defer s.mu.Unlock()
	states = make([]stateCalc, len(codes))
	for i, code := range codes {
		states[i] = s.calcLocked(code, w)
		levels[i] = states[i].level
	}
	return states, s.levelChangesLocked(w, codes, levels)
}

// levelChangesLocked records the level changes of codes, whose levels are
// given if levels is not nil, and of the département since they were last
// looked at.
func (s *Service) levelChangesLocked(w *dayWindow, codes []string, levels []Level) []AlertEvent {
	var events []AlertEvent
	note := func(code string, lvl Level) {
		if old := s.levels[code]; old != lvl {
			ev := AlertEvent{Commune: code, From: old, To: lvl, At: s.cfg.Rules.Now().UTC()}
			s.levels[code] = lvl
			s.events = append(s.events, ev)
			events = append(events, ev)
		}
	}
	for i, code := range codes {
		if levels != nil {
			note(code, levels[i])
		} else {
			note(code, s.levelLocked(code, w))
		}
	}
	note("", s.levelLocked("", w))
	return events
}

// History returns one commune's declarations (the declarant's own view).
func (s *Service) History(ctx context.Context, commune string) ([]Declaration, error) {
	return s.store.Declarations(ctx, commune)
}

// Get returns one declaration with its audit trail.
func (s *Service) Get(ctx context.Context, id string) (Declaration, []Revision, error) {
	d, err := s.store.Declaration(ctx, id)
	if err != nil {
		return d, nil, err
	}
	revs, err := s.store.Revisions(ctx, id)
	return d, revs, err
}

// AlertEvents returns the level changes seen since start.
func (s *Service) AlertEvents() []AlertEvent {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]AlertEvent(nil), s.events...)
}

// newID returns 16 bytes in hex: the time in milliseconds (6 bytes) then
// 80 random bits. Time-ordered ids keep the primary-key indexes of the
// declarations and their revisions append-mostly, so a group commit writes
// a few pages instead of one per declaration and index; the random part
// keeps them unguessable.
func newID() string {
	b := make([]byte, 16)
	ms := uint64(time.Now().UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	_, _ = rand.Read(b[6:])
	return hex.EncodeToString(b)
}
