package declarations_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"crisisroom/declarations"
	"crisisroom/store/sqlite"
)

var communes = []string{"56003", "56121", "56260"}

func rules(now time.Time) declarations.Rules {
	return declarations.Rules{
		KnownCommune: func(c string) bool { return c == "56003" || c == "56121" || c == "56260" },
		EventStart:   "2026-11-01",
		MaxCount:     200,
		Location:     time.UTC,
		Now:          func() time.Time { return now },
	}
}

// countingStore counts Apply calls to prove group commit.
type countingStore struct {
	declarations.Store
	applies atomic.Int64
	ops     atomic.Int64
}

func (c *countingStore) Apply(ctx context.Context, ops []declarations.Op) ([]declarations.OpResult, error) {
	c.applies.Add(1)
	c.ops.Add(int64(len(ops)))
	return c.Store.Apply(ctx, ops)
}

type recorder struct {
	mu   sync.Mutex
	msgs map[string][][]byte
}

func (r *recorder) Publish(_ context.Context, topic string, b []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.msgs == nil {
		r.msgs = map[string][][]byte{}
	}
	r.msgs[topic] = append(r.msgs[topic], b)
	return nil
}

func newService(t *testing.T, dir string, pub declarations.Publisher) (*declarations.Service, *countingStore, func()) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{Store: st.Declarations()}
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	svc, err := declarations.New(context.Background(), declarations.Config{
		Rules: rules(now), Communes: communes, Population: func(string) int { return 5000 }, PublishStates: true,
	}, cs, pub, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return svc, cs, func() { svc.Close(); st.Close() }
}

func input(commune, key string, n int) declarations.Input {
	return declarations.Input{Commune: commune, Date: "2026-11-26", Place: "domicile", Count: n, IdempotencyKey: key}
}

func TestSameKeyConcurrentlyAndAfterRestartIsOne(t *testing.T) {
	dir := t.TempDir()
	svc, _, stop := newService(t, dir, nil)
	actor := declarations.Actor{ID: "link-56121", Commune: "56121"}
	var wg sync.WaitGroup
	ids := make([]string, 20)
	created := atomic.Int64{}
	for i := range ids {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			d, c, err := svc.Declare(context.Background(), actor, input("56121", "same-key-123", 3))
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = d.ID
			if c {
				created.Add(1)
			}
		}(i)
	}
	wg.Wait()
	if created.Load() != 1 {
		t.Fatalf("%d creations for one key", created.Load())
	}
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("different ids for one key: %v", ids)
		}
	}
	stop()
	svc, _, stop = newService(t, dir, nil)
	defer stop()
	d, c, err := svc.Declare(context.Background(), actor, input("56121", "same-key-123", 3))
	if err != nil || c || d.ID != ids[0] {
		t.Fatalf("after restart: id %s created %v err %v", d.ID, c, err)
	}
	if got := svc.State("56121").Total; got != 3 {
		t.Fatalf("total %d, want 3", got)
	}
}

func TestManyDeclarantsTotalsExactAndGroupCommit(t *testing.T) {
	pub := &recorder{}
	svc, cs, stop := newService(t, t.TempDir(), pub)
	defer stop()
	const clients, each = 50, 40
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			commune := communes[c%len(communes)]
			actor := declarations.Actor{ID: fmt.Sprint("link-", c), Commune: commune}
			for i := 0; i < each; i++ {
				if _, _, err := svc.Declare(context.Background(), actor, input(commune, fmt.Sprintf("k-%03d-%03d", c, i), 1+i%3)); err != nil {
					t.Error(err)
					return
				}
			}
		}(c)
	}
	wg.Wait()
	want := clients * (14*1 + 13*2 + 13*3) // 1+i%3 over i in 0..39
	if got := svc.State("").Total; got != want {
		t.Fatalf("département total %d, want %d", got, want)
	}
	sum := 0
	for _, st := range svc.Snapshot() {
		sum += st.Total
	}
	if sum != want {
		t.Fatalf("sum of communes %d, want %d", sum, want)
	}
	t.Logf("%d declarations in %d commits (%.1f per fsync)", cs.ops.Load(), cs.applies.Load(), float64(cs.ops.Load())/float64(cs.applies.Load()))
	if cs.applies.Load() >= cs.ops.Load() {
		t.Fatalf("no group commit: %d commits for %d ops", cs.applies.Load(), cs.ops.Load())
	}
	// Every state published carries a strictly increasing version per commune.
	if len(pub.msgs[declarations.TopicCommuneState]) == 0 {
		t.Fatal("no commune state published")
	}
	last := map[string]int64{}
	for _, b := range pub.msgs[declarations.TopicCommuneState] {
		var st struct {
			Code    string
			Version int64
		}
		if err := jsonUnmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		if st.Version <= last[st.Code] {
			t.Fatalf("commune %s version %d after %d", st.Code, st.Version, last[st.Code])
		}
		last[st.Code] = st.Version
	}
}

func TestAmendAndAuthorization(t *testing.T) {
	svc, _, stop := newService(t, t.TempDir(), nil)
	defer stop()
	ctx := context.Background()
	mayor := declarations.Actor{ID: "link-a", Commune: "56121"}
	if _, _, err := svc.Declare(ctx, mayor, input("56003", "key-other-1", 1)); !errors.Is(err, declarations.ErrForbidden) {
		t.Fatalf("declaring for another commune: %v", err)
	}
	d, _, err := svc.Declare(ctx, mayor, input("56121", "key-own-001", 4))
	if err != nil {
		t.Fatal(err)
	}
	two := 2
	if _, err := svc.Amend(ctx, declarations.Actor{ID: "x", Commune: "56003"}, d.ID, declarations.Amendment{Count: &two, Reason: "x"}); !errors.Is(err, declarations.ErrForbidden) {
		t.Fatalf("amend by another commune: %v", err)
	}
	var ve *declarations.ValidationError
	if _, err := svc.Amend(ctx, mayor, d.ID, declarations.Amendment{Count: &two}); !errors.As(err, &ve) {
		t.Fatalf("amend without reason: %v", err)
	}
	a, err := svc.Amend(ctx, mayor, d.ID, declarations.Amendment{Count: &two, Reason: "compté deux fois"})
	if err != nil || a.Count != 2 || a.Revision != 2 {
		t.Fatalf("amend: %+v %v", a, err)
	}
	if st := svc.State("56121"); st.Total != 2 || st.ByPlace["domicile"] != 2 || st.Version != 2 {
		t.Fatalf("state after amendment %+v", st)
	}
	_, revs, err := svc.Get(ctx, d.ID)
	if err != nil || len(revs) != 2 || revs[0].Count != 4 {
		t.Fatalf("audit trail %+v %v", revs, err)
	}
}

// TestStatesStayLocalForOneInstance: without PublishStates (one instance)
// commune states go to the local map only, not to the bus, which nobody
// reads for them.
func TestStatesStayLocalForOneInstance(t *testing.T) {
	pub := &recorder{}
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := declarations.New(context.Background(), declarations.Config{
		Rules: rules(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)), Communes: communes, Population: func(string) int { return 5000 },
	}, st.Declarations(), pub, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if _, _, err := svc.Declare(context.Background(), declarations.Actor{ID: "link-56121", Commune: "56121"}, input("56121", "key-local-1", 2)); err != nil {
		t.Fatal(err)
	}
	select {
	case cs := <-svc.Changes():
		if cs.Code != "56121" || cs.Total != 2 {
			t.Fatalf("local state %+v", cs)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no state for the local map")
	}
	if n := len(pub.msgs[declarations.TopicCommuneState]); n != 0 {
		t.Fatalf("%d states published on the bus for nobody", n)
	}
}
