package app

import (
	"context"
	"crisisroom/internal/testsvc"
	"errors"
	"net/http"
	"testing"
	"time"

	"crisisroom/rooms"
)

// fakeLinks is a store's LinkByHash that counts its reads.
type fakeLinks struct {
	links map[string]rooms.Link
	reads int
	// during runs inside a read, after the link was read (a revocation
	// racing with the lookup).
	during func()
}

func (f *fakeLinks) load(_ context.Context, hash []byte) (rooms.Link, error) {
	f.reads++
	l, ok := f.links[string(hash)]
	if f.during != nil {
		f.during()
	}
	if !ok {
		return rooms.Link{}, rooms.ErrNotFound
	}
	return l, nil
}

func TestLinkCache(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	live := rooms.Link{ID: "l1", Hash: []byte("h1"), Kind: KindCommune, Scope: "56121"}
	newStore := func() *fakeLinks {
		return &fakeLinks{links: map[string]rooms.Link{"h1": live, "h2": {ID: "l2", Hash: []byte("h2")}}}
	}

	t.Run("HitsWithinTTLThenRereads", func(t *testing.T) {
		st, c := newStore(), newLinkCache(time.Second, 10, clock)
		for range 5 {
			if l, err := c.lookup(ctx, []byte("h1"), st.load); err != nil || l.ID != "l1" {
				t.Fatalf("lookup = %+v, %v", l, err)
			}
		}
		if st.reads != 1 {
			t.Fatalf("%d store reads for 5 lookups within the TTL, want 1", st.reads)
		}
		// A revocation made by another process shows within the TTL.
		revoked := live
		revoked.RevokedAt = now
		st.links["h1"] = revoked
		now = now.Add(time.Second)
		if l, _ := c.lookup(ctx, []byte("h1"), st.load); l.RevokedAt.IsZero() || st.reads != 2 {
			t.Fatalf("after the TTL: %+v, %d reads; want the revoked link, read again", l, st.reads)
		}
	})

	t.Run("UnknownTokensAreNeverCached", func(t *testing.T) {
		st, c := newStore(), newLinkCache(time.Second, 10, clock)
		for range 3 {
			if _, err := c.lookup(ctx, []byte("guess"), st.load); !errors.Is(err, rooms.ErrNotFound) {
				t.Fatalf("unknown hash: %v", err)
			}
		}
		if st.reads != 3 {
			t.Fatalf("%d store reads for 3 unknown lookups, want 3", st.reads)
		}
	})

	t.Run("ForgetEvictsAtOnce", func(t *testing.T) {
		st, c := newStore(), newLinkCache(time.Second, 10, clock)
		c.lookup(ctx, []byte("h1"), st.load)
		c.lookup(ctx, []byte("h2"), st.load)
		c.forget("l1")
		c.lookup(ctx, []byte("h1"), st.load)
		c.lookup(ctx, []byte("h2"), st.load)
		if st.reads != 3 {
			t.Fatalf("%d store reads, want 3 (h1 twice: evicted; h2 once: kept)", st.reads)
		}
	})

	t.Run("ReadBeforeARevocationIsNotCached", func(t *testing.T) {
		st, c := newStore(), newLinkCache(time.Second, 10, clock)
		st.during = func() { c.forget("l1") } // revoked between the read and the caching
		c.lookup(ctx, []byte("h1"), st.load)
		st.during = nil
		c.lookup(ctx, []byte("h1"), st.load)
		if st.reads != 2 {
			t.Fatalf("%d store reads, want 2: the link read before its revocation must not be served", st.reads)
		}
	})

	t.Run("Bounded", func(t *testing.T) {
		st, c := newStore(), newLinkCache(time.Second, 1, clock)
		c.lookup(ctx, []byte("h1"), st.load)
		c.lookup(ctx, []byte("h2"), st.load) // full of live entries: not cached
		if len(c.entries) != 1 {
			t.Fatalf("%d entries, max 1", len(c.entries))
		}
		now = now.Add(2 * time.Second)
		c.lookup(ctx, []byte("h2"), st.load) // h1 stale: swept, h2 cached
		if _, ok := c.entries["h2"]; !ok || len(c.entries) != 1 {
			t.Fatalf("entries %v, want h2 alone", c.entries)
		}
	})
}

// TestLinkCacheClusterRevocation: a link revoked on one instance stops
// working on another at once, although that one had just cached it: the
// revocation's announcement evicts it (the TTL is set far out here, so
// only the eviction can explain the refusal).
func TestLinkCacheClusterRevocation(t *testing.T) {
	rd, pg := testsvc.StartRedis(t), testsvc.StartPostgres(t)
	cfg := DefaultConfig()
	cfg.DatabaseURL, cfg.RedisURL = pg.Schema(t), rd.URL
	n1, n2 := clStart(t, cfg), clStart(t, cfg)
	n2.a.links.ttl = time.Hour
	tok := n1.token(t)
	me := func() int {
		req, _ := http.NewRequest(http.MethodGet, n2.srv.URL+"/api/v1/session", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := me(); got != http.StatusOK {
		t.Fatalf("instance 2 before the revocation: %d", got)
	}
	n2.a.links.mu.Lock()
	_, cached := n2.a.links.entries[string(rooms.HashSecret(tok))]
	n2.a.links.mu.Unlock()
	if !cached {
		t.Fatal("instance 2 did not cache the link it has just checked")
	}
	l, err := n1.be.Store.LinkByHash(context.Background(), rooms.HashSecret(tok))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := n1.a.Rooms.RevokeLink(context.Background(), l.ID); err != nil {
		t.Fatal(err)
	}
	for me() != http.StatusUnauthorized {
		if time.Since(start) > 10*time.Second {
			t.Fatal("instance 2 still accepts the link revoked on instance 1 10 s later")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("refused on instance 2 %s after the revocation on instance 1", time.Since(start).Round(time.Millisecond))
}
