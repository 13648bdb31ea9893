package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"crisisroom/declarations"
	"crisisroom/declarations/declarationstest"
	"crisisroom/internal/testsvc"
	"crisisroom/layers"
	"crisisroom/layers/layerstest"
	"crisisroom/livemap"
	"crisisroom/livemap/annotationstest"
	"crisisroom/rooms"
	"crisisroom/rooms/roomstest"
)

// open opens a store on url, closed at the end of t.
func open(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestOnOneServer runs what does not stop the server on one throwaway
// server (a server costs about a second), each subtest on a fresh schema.
func TestOnOneServer(t *testing.T) {
	pg := testsvc.StartPostgres(t)
	t.Run("Conformance", func(t *testing.T) { conformance(t, pg) })
	t.Run("Migrations", func(t *testing.T) { migrate(t, pg) })
	t.Run("TwoInstances", func(t *testing.T) { twoInstances(t, pg) })
}

// conformance runs every store suite.
func conformance(t *testing.T, pg *testsvc.Postgres) {
	fresh := func(t *testing.T) *Store { return open(t, pg.Schema(t)) }
	t.Run("Rooms", func(t *testing.T) {
		roomstest.Run(t, func(t *testing.T) rooms.Store { return fresh(t) })
	})
	t.Run("Declarations", func(t *testing.T) {
		declarationstest.Run(t, func(t *testing.T) declarations.Store { return fresh(t).Declarations() })
	})
	t.Run("Annotations", func(t *testing.T) {
		annotationstest.Run(t, func(t *testing.T) livemap.AnnotationStore { return fresh(t).Annotations() })
	})
	t.Run("Layers", func(t *testing.T) {
		layerstest.Run(t, func(t *testing.T) layers.Store { return fresh(t).Layers() })
	})
}

// migrate: opening again migrates nothing, and a database written by a
// newer binary is refused.
func migrate(t *testing.T, pg *testsvc.Postgres) {
	ctx := context.Background()
	url := pg.Schema(t)
	s := open(t, url)
	if _, err := s.CreateRoom(ctx, rooms.RoomInfo{Name: "main", Title: "x"}); err != nil {
		t.Fatal(err)
	}
	again := open(t, url)
	if _, err := again.Room(ctx, "main"); err != nil {
		t.Fatalf("room after reopen: %v", err)
	}
	var n, max int
	if err := s.pool.QueryRow(ctx, `SELECT COUNT(*), MAX(version) FROM schema_version`).Scan(&n, &max); err != nil ||
		n != SchemaVersion() || max != SchemaVersion() {
		t.Fatalf("schema_version: %d rows, max %d, %v; want %d", n, max, err, SchemaVersion())
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO schema_version(version) VALUES ($1)`, SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	if s2, err := Open(ctx, url); err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		if s2 != nil {
			s2.Close()
		}
		t.Fatalf("open of a newer schema: %v", err)
	}
}

// decl is a one-insert batch for the restart tests.
func decl(id string) []declarations.Op {
	return []declarations.Op{{Insert: &declarations.Declaration{ID: id, Commune: "56121", Date: "2026-11-25", Place: "ehpad",
		Count: 1, IdempotencyKey: "key-" + id, Declarant: "l1", CreatedAt: time.Now(), Revision: 1}}}
}

// TestOutage: while PostgreSQL is down every call returns an error (the
// service answers 503) at once, and once it is back the same store works
// again without being reopened, with nothing lost.
func TestOutage(t *testing.T) {
	pg := testsvc.StartPostgres(t)
	s := open(t, pg.Schema(t))
	st := s.Declarations()
	ctx := context.Background()
	if _, err := st.Apply(ctx, decl("before")); err != nil {
		t.Fatal(err)
	}

	pg.Stop(t)
	down := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if res, err := st.Apply(cctx, decl("during")); err == nil {
		t.Fatalf("Apply succeeded with the database down: %+v", res)
	} else {
		t.Logf("Apply while down: %v (%s)", err, time.Since(down).Round(time.Millisecond))
	}
	if _, err := st.Declaration(cctx, "before"); err == nil {
		t.Fatal("read succeeded with the database down")
	}
	if _, err := s.LinkByHash(cctx, []byte("x")); err == nil || errors.Is(err, rooms.ErrNotFound) {
		t.Fatalf("token lookup with the database down: %v, want a store error", err)
	}
	if err := s.Ping(cctx); err == nil {
		t.Fatal("Ping succeeded with the database down")
	}
	if d := time.Since(down); d > 5*time.Second {
		t.Fatalf("calls while down took %s: they must fail fast", d)
	}

	pg.Start(t)
	res, err := st.Apply(ctx, decl("after"))
	if err != nil {
		t.Fatalf("Apply after the restart: %v", err)
	}
	if res[0].Version != 2 {
		t.Fatalf("version after restart %d, want 2 (the failed batch stored nothing)", res[0].Version)
	}
	all, err := st.Declarations(ctx, "")
	if err != nil || len(all) != 2 || all[0].ID != "before" || all[1].ID != "after" {
		t.Fatalf("after restart: %+v, %v", all, err)
	}
}

// TestRestartBetweenRequests: PostgreSQL restarts while the pool holds
// idle connections, which are all dead then (the server said so as it shut
// down). A batch still goes through (it is run again on a fresh
// connection), and of the reads only the first one can fail: meeting a dead
// connection empties the pool.
func TestRestartBetweenRequests(t *testing.T) {
	pg := testsvc.StartPostgres(t)
	s := open(t, pg.Schema(t))
	st := s.Declarations()
	ctx := context.Background()
	fillPool := func() {
		var conns []*pgxpool.Conn
		for range 4 {
			c, err := s.pool.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			c.Release()
		}
	}
	fillPool()
	pg.Restart(t)
	if _, err := st.Apply(ctx, decl("first")); err != nil {
		t.Fatalf("Apply on a pool of dead connections: %v", err)
	}

	fillPool()
	pg.Restart(t)
	failed := 0
	for range 4 {
		if _, err := st.Declaration(ctx, "first"); err != nil {
			failed++
			t.Logf("read after restart: %v", err)
		}
	}
	if failed > 1 {
		t.Fatalf("%d of 4 reads failed after the restart, want at most 1", failed)
	}
}

// twoInstances: two stores (two servers of a cluster) take the same
// retried requests at once, in opposite orders: each declaration is stored
// once, and each commune's versions are handed out once each.
func twoInstances(t *testing.T, pg *testsvc.Postgres) {
	url := pg.Schema(t)
	a, b := open(t, url).Declarations(), open(t, url).Declarations()
	ctx := context.Background()
	const keys, batch = 60, 6
	communes := []string{"56121", "56003", "56260"}
	ops := func(inst string, reverse bool) [][]declarations.Op {
		var out [][]declarations.Op
		for k := 0; k < keys; k += batch {
			var ops []declarations.Op
			for j := k; j < k+batch; j++ {
				n := j
				if reverse {
					n = keys - 1 - j
				}
				ops = append(ops, declarations.Op{Insert: &declarations.Declaration{ID: fmt.Sprint(inst, n),
					Commune: communes[n%len(communes)], Date: "2026-11-25", Place: "domicile", Count: 1,
					IdempotencyKey: fmt.Sprint("key-", n), Declarant: "l1", CreatedAt: time.Now(), Revision: 1}})
			}
			out = append(out, ops)
		}
		return out
	}
	var mu sync.Mutex
	stored := map[string]int{}       // key → times reported new
	versions := map[string][]int64{} // commune → versions handed out
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, run := range []struct {
		st      declarations.Store
		inst    string
		reverse bool
	}{{a, "a", false}, {b, "b", true}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, ops := range ops(run.inst, run.reverse) {
				res, err := run.st.Apply(ctx, ops)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for _, r := range res {
					if !r.Existed {
						stored[r.Decl.IdempotencyKey]++
						versions[r.Decl.Commune] = append(versions[r.Decl.Commune], r.Version)
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(stored) != keys {
		t.Fatalf("%d keys stored, want %d", len(stored), keys)
	}
	for k, n := range stored {
		if n != 1 {
			t.Fatalf("key %s stored %d times", k, n)
		}
	}
	_, final, err := a.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for c, vs := range versions {
		slices.Sort(vs)
		for i, v := range vs {
			if v != int64(i+1) {
				t.Fatalf("commune %s versions %v: not 1..n once each", c, vs)
			}
		}
		if final[c] != int64(len(vs)) {
			t.Fatalf("commune %s at version %d, handed out %d", c, final[c], len(vs))
		}
	}
}
