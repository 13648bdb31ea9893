package declarations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"
	"time"
)

// Cluster mode: several instances share one store and one bus. Each
// instance commits its own declarations and keeps its aggregates in
// memory; it learns the others' from the commune states they publish on
// TopicCommuneState. The bus is at-most-once, so the store stays the source
// of truth and every path below keeps one invariant: an instance's cells
// and version of a commune are always exactly the store's sums at that
// version. Versions rise by one per change (every Store does so, see
// declarationstest), which is what lets a commit notice that it skipped
// another instance's change (absorb) and a sync notice that it missed a
// message (resync).

// changesBuffer is how many states may wait for the live map; past it the
// map's own periodic reconciliation repairs what was dropped.
const changesBuffer = 1024

// Syncer is what a Store offers for cheap cluster syncs. Stores without it
// are read with Counts (everything), which is fine for a single instance.
type Syncer interface {
	// Versions returns every commune's version.
	Versions(ctx context.Context) (map[string]int64, error)
	// CommuneCounts is Counts restricted to communes, from one snapshot.
	CommuneCounts(ctx context.Context, communes []string) ([]Cell, map[string]int64, error)
}

// StoreVersions returns every commune's version, through Syncer when st
// has it.
func StoreVersions(ctx context.Context, st Store) (map[string]int64, error) {
	if sy, ok := st.(Syncer); ok {
		return sy.Versions(ctx)
	}
	_, v, err := st.Counts(ctx)
	return v, err
}

// StoreCommuneCounts returns the cells and versions of communes, through
// Syncer when st has it.
func StoreCommuneCounts(ctx context.Context, st Store, communes []string) ([]Cell, map[string]int64, error) {
	if sy, ok := st.(Syncer); ok {
		return sy.CommuneCounts(ctx, communes)
	}
	cells, versions, err := st.Counts(ctx)
	if err != nil {
		return nil, nil, err
	}
	want := make(map[string]bool, len(communes))
	for _, c := range communes {
		want[c] = true
	}
	var outCells []Cell
	for _, c := range cells {
		if want[c.Commune] {
			outCells = append(outCells, c)
		}
	}
	outVersions := map[string]int64{}
	for c, v := range versions {
		if want[c] {
			outVersions[c] = v
		}
	}
	return outCells, outVersions, nil
}

// Feed is a subscription to TopicCommuneState; bus.Subscription is one.
type Feed interface {
	C() <-chan []byte
	// Lost signals that messages may have been missed (see bus).
	Lost() <-chan struct{}
}

// SyncStats count what the cluster paths did, for metrics.
type SyncStats struct {
	RemoteStates   int64 // newer states taken from other instances
	Resyncs        int64 // version comparisons with the store
	LostSignals    int64 // of which asked for by the bus after a loss
	GapReloads     int64 // commits that had to reload communes
	Reloaded       int64 // communes re-read from the store
	SyncErrors     int64 // store reads that failed (retried later)
	ChangesDropped int64 // states the live map was too slow to take
}

type syncCounters struct {
	remoteStates, resyncs, lostSignals, gapReloads, reloaded, syncErrors, changesDropped atomic.Int64
}

// SyncStats returns the counters.
func (s *Service) SyncStats() SyncStats {
	c := &s.stats
	return SyncStats{RemoteStates: c.remoteStates.Load(), Resyncs: c.resyncs.Load(), LostSignals: c.lostSignals.Load(),
		GapReloads: c.gapReloads.Load(), Reloaded: c.reloaded.Load(), SyncErrors: c.syncErrors.Load(),
		ChangesDropped: c.changesDropped.Load()}
}

// Changes delivers every commune state this
// instance takes: its own commits and, in cluster mode, the other
// instances' (from Follow). It is the live map's feed; it is never closed.
// When its reader falls behind, states are dropped (counted in SyncStats):
// the reader reconciles against Snapshot periodically.
func (s *Service) Changes() <-chan CommuneState { return s.changes }

func (s *Service) emit(cs CommuneState) {
	select {
	case s.changes <- cs:
	default:
		s.stats.changesDropped.Add(1)
	}
}

// Follow keeps the aggregates in step with the other instances until ctx
// ends: it takes the newer states from feed, re-reads from the store what
// changed when feed reports a loss, and compares versions with the store
// every interval (0: never) for the losses no one reports (another
// instance that could not publish). It syncs once at start, for what was
// committed between New and the subscription.
func (s *Service) Follow(ctx context.Context, feed Feed, every time.Duration) {
	var tick <-chan time.Time
	if every > 0 {
		t := time.NewTicker(every)
		defer t.Stop()
		tick = t.C
	}
	s.resync(ctx)
	msgs := feed.C()
	for {
		select {
		case <-ctx.Done():
			return
		case b, ok := <-msgs:
			if !ok {
				msgs = nil // bus gone: the periodic sync alone keeps us right
				continue
			}
			s.absorbRemote(b)
		case <-feed.Lost():
			s.stats.lostSignals.Add(1)
			s.log.Info("commune states may have been lost on the bus: syncing with the store")
			s.resync(ctx)
		case <-tick:
			s.resync(ctx)
		}
	}
}

// absorbRemote takes a commune state from the bus when it is newer than
// ours: it replaces the commune's cells (latest version wins). Our own
// states come back too and are ignored the same way.
func (s *Service) absorbRemote(b []byte) {
	var cs CommuneState
	if err := json.Unmarshal(b, &cs); err != nil || cs.Code == "" {
		s.log.Warn("bad commune state on the bus", "err", err)
		return
	}
	s.mu.Lock()
	if cs.Version <= s.versions[cs.Code] {
		s.mu.Unlock()
		return
	}
	days := make(map[string]*[4]int, len(cs.Days))
	for _, d := range cs.Days {
		days[d.Date] = &[4]int{d.Domicile, d.EHPAD, d.Hopital, d.Autre}
	}
	s.replaceLocked(cs.Code, days, cs.Version)
	events := s.levelChangesLocked(s.window(), []string{cs.Code}, nil)
	s.mu.Unlock()
	s.stats.remoteStates.Add(1)
	s.logEvents(events)
	s.emit(cs) // the state as its author computed it: the same as ours now
}

// resync compares every commune's version with the store's and reloads the
// communes we are behind on. The comparison is one small read; the reload
// only touches the communes that changed.
func (s *Service) resync(ctx context.Context) {
	// Counted once done: whoever waits for a sync (a test, a probe) then
	// knows that it has read the store.
	defer s.stats.resyncs.Add(1)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	versions, err := StoreVersions(ctx, s.store)
	if err != nil && errors.Is(err, context.Canceled) {
		return // shutting down
	}
	if err != nil {
		s.stats.syncErrors.Add(1)
		s.log.Warn("sync with the store: versions", "err", err)
		return
	}
	var behind []string
	s.mu.RLock()
	for code, v := range versions {
		if v > s.versions[code] {
			behind = append(behind, code)
		}
	}
	s.mu.RUnlock()
	if len(behind) == 0 {
		return
	}
	sort.Strings(behind)
	reloaded, err := s.reload(ctx, behind)
	if err != nil {
		s.stats.syncErrors.Add(1)
		s.log.Warn("sync with the store: reload", "communes", len(behind), "err", err)
		return
	}
	if len(reloaded) == 0 {
		return
	}
	s.log.Info("synced communes from the store", "communes", len(reloaded))
	states, events := s.statesAndEvents(reloaded)
	for i := range states {
		s.emit(states[i].state())
	}
	s.logEvents(events)
}

// reload reads communes from the store and takes those newer than ours;
// it returns them, sorted.
func (s *Service) reload(ctx context.Context, communes []string) ([]string, error) {
	cells, versions, err := StoreCommuneCounts(ctx, s.store, communes)
	if err != nil {
		return nil, fmt.Errorf("read communes: %w", err)
	}
	days := make(map[string]map[string]*[4]int, len(communes))
	for _, c := range cells {
		idx := placeIndex(c.Place)
		if idx < 0 {
			continue
		}
		d := days[c.Commune]
		if d == nil {
			d = map[string]*[4]int{}
			days[c.Commune] = d
		}
		cell := d[c.Date]
		if cell == nil {
			cell = &[4]int{}
			d[c.Date] = cell
		}
		cell[idx] += c.Count
	}
	var out []string
	s.mu.Lock()
	for _, code := range communes {
		if v := versions[code]; v > s.versions[code] {
			s.replaceLocked(code, days[code], v)
			out = append(out, code)
		}
	}
	s.mu.Unlock()
	s.stats.reloaded.Add(int64(len(out)))
	sort.Strings(out)
	return out, nil
}

// replaceLocked sets a commune's cells and version wholesale, and the
// département's sums with them.
func (s *Service) replaceLocked(code string, days map[string]*[4]int, version int64) {
	if days == nil {
		days = map[string]*[4]int{}
	}
	old := s.cells[code]
	s.cells[code] = days
	s.setVersionLocked(code, version)
	for d, c := range old {
		dc := s.dep[d]
		for i := range c {
			dc[i] -= c[i]
		}
		if _, kept := days[d]; !kept && !s.anyCommuneHasLocked(d) {
			delete(s.dep, d) // the département has a day only if a commune has it
		}
	}
	for d, c := range days {
		dc := s.dep[d]
		if dc == nil {
			dc = &[4]int{}
			s.dep[d] = dc
		}
		for i := range c {
			dc[i] += c[i]
		}
	}
}

func (s *Service) anyCommuneHasLocked(day string) bool {
	for _, days := range s.cells {
		if _, ok := days[day]; ok {
			return true
		}
	}
	return false
}

func (s *Service) logEvents(events []AlertEvent) {
	for _, ev := range events {
		s.log.Info("alert level changed", "commune", ev.Commune, "from", ev.From.Name(), "to", ev.To.Name())
	}
}
