package declarations_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"crisisroom/declarations"
	"crisisroom/store/sqlite"
)

// Two services on one store model two instances of a cluster; the test
// plays the bus between them (feed), so it decides what is lost.

type feed struct {
	c    chan []byte
	lost chan struct{}
}

func newFeed() *feed { return &feed{c: make(chan []byte, 64), lost: make(chan struct{}, 1)} }

func (f *feed) C() <-chan []byte      { return f.c }
func (f *feed) Lost() <-chan struct{} { return f.lost }

type pair struct {
	a, b       *declarations.Service
	pubA, pubB *recorder
	feedB      *feed
}

// newPair starts instance a, and instance b; with follow, b follows feedB
// with a periodic sync every `every` (0: none), and its start sync is done
// when newPair returns.
func newPair(t *testing.T, follow bool, every time.Duration) *pair {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	cfg := declarations.Config{Rules: rules(now), Communes: communes, Population: func(string) int { return 5000 }, PublishStates: true}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := &pair{pubA: &recorder{}, pubB: &recorder{}, feedB: newFeed()}
	if p.a, err = declarations.New(context.Background(), cfg, st.Declarations(), p.pubA, log); err != nil {
		t.Fatal(err)
	}
	if p.b, err = declarations.New(context.Background(), cfg, st.Declarations(), p.pubB, log); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.a.Close(); p.b.Close(); st.Close() })
	if !follow {
		return p
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.b.Follow(ctx, p.feedB, every) }()
	t.Cleanup(func() { cancel(); <-done })
	// Follow reports nothing when its start sync finds nothing to do: poll
	// its counter (a few milliseconds).
	for deadline := time.Now().Add(5 * time.Second); p.b.SyncStats().Resyncs == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("b's start sync did not run")
		}
	}
	return p
}

func (p *pair) declare(t *testing.T, svc *declarations.Service, commune, key string, n int) declarations.Declaration {
	t.Helper()
	d, created, err := svc.Declare(context.Background(), declarations.Actor{ID: "link-" + commune, Commune: commune}, input(commune, key, n))
	if err != nil || !created {
		t.Fatalf("declare %s: created %v, %v", key, created, err)
	}
	return d
}

// deliverA hands b every commune state a published since the last call.
func (p *pair) deliverA(t *testing.T, from int) int {
	t.Helper()
	p.pubA.mu.Lock()
	msgs := p.pubA.msgs[declarations.TopicCommuneState]
	p.pubA.mu.Unlock()
	for _, b := range msgs[from:] {
		p.feedB.c <- b
	}
	return len(msgs)
}

// waitChange reads b's map feed until commune has the wanted total and
// version: what the live map of b would show.
func waitChange(t *testing.T, svc *declarations.Service, commune string, total int, version int64) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case cs := <-svc.Changes():
			if cs.Code == commune && cs.Total == total && cs.Version == version {
				return
			}
		case <-deadline:
			st := svc.State(commune)
			t.Fatalf("commune %s: no change to total %d v%d on the map feed (service has %d v%d)", commune, total, version, st.Total, st.Version)
		}
	}
}

func sameFigures(t *testing.T, a, b *declarations.Service) {
	t.Helper()
	for _, code := range append(communes, "") {
		sa, sb := a.State(code), b.State(code)
		ja, _ := json.Marshal(sa)
		jb, _ := json.Marshal(sb)
		if string(ja) != string(jb) {
			t.Fatalf("commune %q differs:\na %s\nb %s", code, ja, jb)
		}
	}
}

func TestRemoteStateLatestVersionWins(t *testing.T) {
	p := newPair(t, true, 0)
	depBefore := p.b.State("").Version
	p.declare(t, p.a, "56121", "key-remote-1", 3)
	d2 := p.declare(t, p.a, "56121", "key-remote-2", 4)
	two := 2
	if _, err := p.a.Amend(context.Background(), declarations.Actor{ID: "op", Operator: true}, d2.ID,
		declarations.Amendment{Count: &two, Reason: "doublon"}); err != nil {
		t.Fatal(err)
	}
	n := p.deliverA(t, 0)
	if n != 3 {
		t.Fatalf("a published %d states, want 3", n)
	}
	waitChange(t, p.b, "56121", 5, 3)
	sameFigures(t, p.a, p.b)
	if dep := p.b.State(""); dep.Version <= depBefore || dep.Total != 5 {
		t.Fatalf("département on b: v%d (was %d), total %d", dep.Version, depBefore, dep.Total)
	}
	// Old states again (a duplicate, a reordering): ignored.
	p.deliverA(t, 0)
	p.declare(t, p.a, "56003", "key-remote-3", 1)
	p.deliverA(t, n)
	waitChange(t, p.b, "56003", 1, 1)
	if st := p.b.State("56121"); st.Total != 5 || st.Version != 3 {
		t.Fatalf("an older state overwrote a newer one: %+v", st)
	}
	if got := p.b.SyncStats().RemoteStates; got != 4 {
		t.Fatalf("b took %d remote states, want 4 (3 + 1, duplicates ignored)", got)
	}
}

func TestCommitAfterMissedStateReloadsFromStore(t *testing.T) {
	p := newPair(t, false, 0)
	p.declare(t, p.a, "56121", "key-gap-1", 3) // its state never reaches b
	p.declare(t, p.b, "56121", "key-gap-2", 2)
	if st := p.b.State("56121"); st.Total != 5 || st.Version != 2 {
		t.Fatalf("b after its own commit over a missed one: total %d v%d, want 5 v2", st.Total, st.Version)
	}
	if s := p.b.SyncStats(); s.GapReloads != 1 || s.Reloaded != 1 {
		t.Fatalf("sync stats %+v", s)
	}
	// What b publishes is the reloaded state, so the others get it right.
	msgs := p.pubB.msgs[declarations.TopicCommuneState]
	var cs declarations.CommuneState
	if len(msgs) != 1 || json.Unmarshal(msgs[0], &cs) != nil || cs.Total != 5 || cs.Version != 2 {
		t.Fatalf("b published %d states, last %+v", len(msgs), cs)
	}
}

func TestLostSignalResyncsFromStore(t *testing.T) {
	p := newPair(t, true, 0)
	p.declare(t, p.a, "56121", "key-lost-1", 3)
	p.declare(t, p.a, "56260", "key-lost-2", 7)
	p.declare(t, p.a, "56260", "key-lost-3", 1) // none of these reach b
	if got := p.b.State("56260").Total; got != 0 {
		t.Fatalf("b has %d before any message or signal", got)
	}
	p.feedB.lost <- struct{}{}
	waitChange(t, p.b, "56260", 8, 2)
	sameFigures(t, p.a, p.b)
	if s := p.b.SyncStats(); s.LostSignals != 1 || s.Reloaded != 2 {
		t.Fatalf("sync stats %+v", s)
	}
}

func TestPeriodicSyncCatchesUnsignalledLoss(t *testing.T) {
	p := newPair(t, true, 20*time.Millisecond)
	p.declare(t, p.a, "56003", "key-tick-1", 6) // a could not publish; nobody signals
	waitChange(t, p.b, "56003", 6, 1)
	sameFigures(t, p.a, p.b)
}

func TestFollowSyncsAtStart(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	cfg := declarations.Config{Rules: rules(now), Communes: communes, Population: func(string) int { return 5000 }, PublishStates: true}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := declarations.New(context.Background(), cfg, st.Declarations(), nil, log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a, err := declarations.New(context.Background(), cfg, st.Declarations(), nil, log)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// Committed after b loaded and before b subscribed: only the start sync sees it.
	if _, _, err := a.Declare(context.Background(), declarations.Actor{ID: "x", Commune: "56121"}, input("56121", "key-start-1", 2)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Follow(ctx, newFeed(), 0) }()
	defer func() { cancel(); <-done }()
	waitChange(t, b, "56121", 2, 1)
}
