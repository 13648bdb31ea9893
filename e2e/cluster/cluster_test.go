// Package cluster runs two `crisisroom serve` processes on one PostgreSQL
// and one Redis (throwaway servers, internal/testsvc) and checks the live
// map across instances and through faults: a declaration taken by one
// instance reaches the other's map watchers; after a Redis restart and
// while it is down, figures end right; while PostgreSQL is down writes
// answer 503 with Retry-After and store nothing; after a SIGKILL, a
// watcher that reconnects to the survivor sees every acknowledged figure.
package cluster

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"testing"
	"time"

	"crisisroom/internal/testsvc"
)

type declaration struct {
	Commune        string `json:"commune"`
	Date           string `json:"date"`
	Place          string `json:"place"`
	Count          int    `json:"count"`
	IdempotencyKey string `json:"idempotency_key"`
}

// cluster is the shared state of the scenarios, which run in order.
type cluster struct {
	e      *env
	redis  *testsvc.Redis
	pg     *testsvc.Postgres
	a, b   *server
	host   string            // host link token: operator, room token for watchers
	tokens map[string]string // commune → declarant token
	day    string

	mu   sync.Mutex
	want map[string]int // every acknowledged count, by commune
	keys int
}

var codes = []string{"56121", "56260", "56003"} // Vannes, Lorient, Auray

func TestCluster(t *testing.T) {
	c := &cluster{redis: testsvc.StartRedis(t), pg: testsvc.StartPostgres(t), want: map[string]int{}}
	c.e = newEnv(t, c.pg.Schema(t), c.redis.URL)
	c.tokens = c.e.communeTokens(t, codes...)
	c.host = c.e.hostToken(t)
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	c.day = time.Now().In(loc).AddDate(0, 0, -1).Format("2006-01-02")
	c.a, c.b = c.e.start(t, "A"), c.e.start(t, "B")

	steps := []struct {
		name string
		run  func(*testing.T)
	}{
		{"DeclarationOnAReachesWatcherOnB", c.testAcross},
		{"ConcurrentWritersOnBothInstances", c.testConcurrent},
		{"RedisRestart", c.testRedisRestart},
		{"PostgresRestart", c.testPostgresRestart},
		{"KillNineWatcherMovesToB", c.testKillNine},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.run) {
			return // the next scenarios start from this one's state
		}
	}
}

func (c *cluster) expected() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.want)
}

func (c *cluster) newDecl(commune string, n int) declaration {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys++
	return declaration{Commune: commune, Date: c.day, Place: []string{"domicile", "ehpad", "hopital", "autre"}[c.keys%4],
		Count: n, IdempotencyKey: fmt.Sprintf("cluster-key-%05d", c.keys)}
}

// declare posts d to s and requires a 201; the count is then expected
// everywhere.
func (c *cluster) declare(t *testing.T, s *server, d declaration) {
	t.Helper()
	a := do(t, http.MethodPost, s.base+"/api/v1/declarations", c.tokens[d.Commune], d)
	if a.status != http.StatusCreated {
		t.Fatalf("%s: declaration %s: %d %s", s.name, d.IdempotencyKey, a.status, a.body)
	}
	c.acked(d)
}

func (c *cluster) acked(d declaration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.want[d.Commune] += d.Count
}

// storedTotals reads the operator's aggregates from an instance: its
// in-memory figures, which the map shows.
func (c *cluster) storedTotals(t *testing.T, s *server) (int, map[string]int) {
	t.Helper()
	a := do(t, http.MethodGet, s.base+"/api/v1/aggregates", c.host, nil)
	var all struct {
		Total    int `json:"total"`
		Communes []struct {
			Code  string `json:"code"`
			Total int    `json:"total"`
		} `json:"communes"`
	}
	if a.status != http.StatusOK || json.Unmarshal(a.body, &all) != nil {
		t.Fatalf("%s aggregates: %d %s", s.name, a.status, a.body)
	}
	per := map[string]int{}
	for _, cs := range all.Communes {
		if cs.Total != 0 {
			per[cs.Code] = cs.Total
		}
	}
	return all.Total, per
}

func (c *cluster) testAcross(t *testing.T) {
	wb := dialWatcher(t, "on-B", c.b, c.host)
	wa := dialWatcher(t, "on-A", c.a, c.host)
	wb.wantFigures(t, c.expected(), 10*time.Second)
	if n := wb.communes(); n != 251 {
		t.Fatalf("snapshot of %d states, want 250 communes + the département", n)
	}
	start := time.Now()
	c.declare(t, c.a, c.newDecl("56121", 3))
	wb.wantFigures(t, c.expected(), 5*time.Second)
	t.Logf("A's 201 → B's watcher: %s (POST included)", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	c.declare(t, c.b, c.newDecl("56260", 2))
	wa.wantFigures(t, c.expected(), 5*time.Second)
	wb.wantFigures(t, c.expected(), 5*time.Second)
	t.Logf("B's 201 → A's watcher: %s", time.Since(start).Round(time.Millisecond))
	if v := c.b.metric(t, "crisisroom_declarations_remote_states_total"); v < 1 {
		t.Fatalf("B took %v states over the bus, want ≥ 1", v)
	}
}

// testConcurrent: both instances take declarations for the same communes
// at once, so each often commits on top of a change it has not heard of
// yet (a version gap) and must reload the commune instead of adding.
func (c *cluster) testConcurrent(t *testing.T) {
	wa := dialWatcher(t, "on-A", c.a, c.host)
	wb := dialWatcher(t, "on-B", c.b, c.host)
	const each = 15
	var wg sync.WaitGroup
	for i, s := range []*server{c.a, c.b, c.a, c.b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < each; j++ {
				d := c.newDecl(codes[(i+j)%2], 1+j%3)
				a := do(t, http.MethodPost, s.base+"/api/v1/declarations", c.tokens[d.Commune], d)
				if a.status != http.StatusCreated {
					t.Errorf("%s: %d %s", s.name, a.status, a.body)
					return
				}
				c.acked(d)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	want := c.expected()
	wa.wantFigures(t, want, 10*time.Second)
	wb.wantFigures(t, want, 10*time.Second)
	for _, s := range []*server{c.a, c.b} {
		total, per := c.storedTotals(t, s)
		if !maps.Equal(per, want) || total != sum(want) {
			t.Fatalf("%s aggregates %v (total %d), want %v", s.name, per, total, want)
		}
	}
	t.Logf("gap reloads: A %v, B %v; states over the bus: A %v, B %v",
		c.a.metric(t, "crisisroom_declarations_gap_reloads_total"), c.b.metric(t, "crisisroom_declarations_gap_reloads_total"),
		c.a.metric(t, "crisisroom_declarations_remote_states_total"), c.b.metric(t, "crisisroom_declarations_remote_states_total"))
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// testRedisRestart: while Redis is down, A still takes declarations (the
// store is fine; their publication is lost) and B's watchers get them
// from B's sync with the store; once Redis is back both instances
// resubscribe, and the next declaration travels over the bus again.
func (c *cluster) testRedisRestart(t *testing.T) {
	wb := dialWatcher(t, "on-B", c.b, c.host)
	wb.wantFigures(t, c.expected(), 10*time.Second)
	lostA := c.a.metric(t, "crisisroom_declarations_bus_losses_total")
	lostB := c.b.metric(t, "crisisroom_declarations_bus_losses_total")
	c.redis.Stop(t)
	c.declare(t, c.a, c.newDecl("56003", 4))
	c.declare(t, c.a, c.newDecl("56121", 1))
	took := wb.wantFigures(t, c.expected(), 15*time.Second) // the periodic sync (5 s) brings them
	t.Logf("declarations made on A while Redis is down reached B's watcher in %s", took.Round(time.Millisecond))
	if v := c.a.metric(t, "crisisroom_bus_publish_errors_total"); v < 1 {
		t.Fatalf("A's publications failed %v times while Redis was down", v)
	}

	c.redis.Start(t)
	start := time.Now()
	c.a.waitMetric(t, "crisisroom_declarations_bus_losses_total", lostA+1, 20*time.Second)
	c.b.waitMetric(t, "crisisroom_declarations_bus_losses_total", lostB+1, 20*time.Second)
	t.Logf("both instances resubscribed %s after Redis came back", time.Since(start).Round(time.Millisecond))

	remote := c.b.metric(t, "crisisroom_declarations_remote_states_total")
	start = time.Now()
	c.declare(t, c.a, c.newDecl("56260", 5))
	wb.wantFigures(t, c.expected(), 5*time.Second)
	t.Logf("first declaration after the restart: A's 201 → B's watcher in %s", time.Since(start).Round(time.Millisecond))
	if v := c.b.metric(t, "crisisroom_declarations_remote_states_total"); v <= remote {
		t.Fatalf("B's figures did not come over the bus after the restart (remote states %v → %v)", remote, v)
	}
	// A browser that (re)connects now starts from a snapshot with the
	// same, right figures.
	fresh := dialWatcher(t, "fresh-on-B", c.b, c.host)
	fresh.wantFigures(t, c.expected(), 5*time.Second)
}

// testPostgresRestart: while PostgreSQL is down, every instance answers a
// declaration with 503 and Retry-After, and stores nothing: resent with
// the same key once the database is back, it is created (201), not found
// as a duplicate.
func (c *cluster) testPostgresRestart(t *testing.T) {
	wa := dialWatcher(t, "on-A", c.a, c.host)
	wb := dialWatcher(t, "on-B", c.b, c.host)
	before := c.expected()
	wa.wantFigures(t, before, 10*time.Second)
	// B's subscription must be served before the store goes away: its
	// snapshot is read from the store.
	wb.wantFigures(t, before, 10*time.Second)

	c.pg.Stop(t)
	pending := []struct {
		s *server
		d declaration
	}{{c.a, c.newDecl("56121", 7)}, {c.b, c.newDecl("56003", 2)}}
	for _, p := range pending {
		a := do(t, http.MethodPost, p.s.base+"/api/v1/declarations", c.tokens[p.d.Commune], p.d)
		if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" {
			t.Fatalf("%s with PostgreSQL down: %d, Retry-After %q: %s", p.s.name, a.status, a.header.Get("Retry-After"), a.body)
		}
	}
	if a := do(t, http.MethodGet, c.a.base+"/readyz", "", nil); a.status != http.StatusServiceUnavailable {
		t.Fatalf("A /readyz with PostgreSQL down: %d %s", a.status, a.body)
	}
	// Nothing half-written reached the figures either.
	wa.wantFigures(t, before, time.Second)
	wb.wantFigures(t, before, time.Second)

	c.pg.Start(t)
	start := time.Now()
	for _, p := range pending {
		// As the form's outbox does: resend with the same key, after
		// Retry-After, until the database answers.
		for {
			a := do(t, http.MethodPost, p.s.base+"/api/v1/declarations", c.tokens[p.d.Commune], p.d)
			if a.status == http.StatusCreated {
				c.acked(p.d)
				break
			}
			if a.status != http.StatusServiceUnavailable || time.Since(start) > 30*time.Second {
				t.Fatalf("%s after PostgreSQL restart: %d %s (201 expected: the first try must have stored nothing)", p.s.name, a.status, a.body)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	t.Logf("writes resumed %s after PostgreSQL came back", time.Since(start).Round(time.Millisecond))
	want := c.expected()
	wa.wantFigures(t, want, 5*time.Second)
	wb.wantFigures(t, want, 5*time.Second)
	// The store holds exactly the acknowledged declarations.
	var list struct {
		Declarations []declaration `json:"declarations"`
	}
	a := do(t, http.MethodGet, c.b.base+"/api/v1/declarations", c.host, nil)
	if a.status != http.StatusOK || json.Unmarshal(a.body, &list) != nil {
		t.Fatalf("list: %d %s", a.status, a.body)
	}
	stored := map[string]int{}
	for _, d := range list.Declarations {
		stored[d.Commune] += d.Count
	}
	c.mu.Lock()
	issued := c.keys // every key issued so far was acknowledged once
	c.mu.Unlock()
	if len(list.Declarations) != issued || !maps.Equal(stored, want) {
		t.Fatalf("store: %d declarations %v, want %d %v", len(list.Declarations), stored, issued, want)
	}
}

// testKillNine: A takes a declaration and is killed at once; its map
// watcher's socket drops, it reconnects to B (as a browser behind the
// load balancer would) and sees every acknowledged figure, then B's next
// declaration live.
func (c *cluster) testKillNine(t *testing.T) {
	wa := dialWatcher(t, "on-A", c.a, c.host)
	wa.wantFigures(t, c.expected(), 10*time.Second)
	c.declare(t, c.a, c.newDecl("56260", 6))
	c.a.kill9(t)
	select {
	case <-wa.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher's socket on A outlived A")
	}
	start := time.Now()
	moved := dialWatcher(t, "moved-to-B", c.b, c.host)
	took := moved.wantFigures(t, c.expected(), 10*time.Second)
	t.Logf("watcher reconnected to B with the right figures in %s (figures: %s after dial)",
		time.Since(start).Round(time.Millisecond), took.Round(time.Millisecond))
	c.declare(t, c.b, c.newDecl("56003", 1))
	moved.wantFigures(t, c.expected(), 5*time.Second)
}
