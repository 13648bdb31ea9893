package app

import (
	"context"
	"sync"
	"time"

	"crisisroom/rooms"
)

// linkCache remembers the links that bearer tokens resolved to, for a
// second. Every API request of a commune's declarant presents its link; in
// the embedded store each lookup is a read transaction whose page cache
// every declaration's commit has just invalidated (the lookup was about a
// fifth of a declaration's CPU in bench intake). During a burst the same
// few dozen links come back many times a second.
//
// What may be stale, and for how long: a link is only ever changed by its
// revocation (and use counts, which the API does not read here; joins use
// the store's UseLink). A revocation through rooms.Manager — this
// instance's or, in cluster mode, another's, announced on the bus — evicts
// the link at once (forget, a kick hook). One made by another process on
// the same database (a command-line tool) is seen within linkCacheTTL.
// Expiry is checked against the clock on every use, as before. Unknown
// tokens are never cached: a guesser always reaches the store (and the
// rate limits).
type linkCache struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[string]cachedLink // by hash
	// forgets counts evictions: a link read before one is not cached after
	// it (it may be the revoked one, read just before its revocation).
	forgets uint64
}

type cachedLink struct {
	link rooms.Link
	at   time.Time
}

// linkCacheTTL bounds how long a revocation made outside this process's
// rooms.Manager may go unseen: within the second that revocations promise.
const linkCacheTTL = time.Second

// linkCacheMax bounds the memory: a département's commune links and a
// crisis room's guests, many times over.
const linkCacheMax = 4096

func newLinkCache(ttl time.Duration, max int, now func() time.Time) *linkCache {
	return &linkCache{ttl: ttl, max: max, now: now, entries: map[string]cachedLink{}}
}

// lookup returns the link of hash, from the cache if it was read less than
// ttl ago, else from load (and remembers it if found).
func (c *linkCache) lookup(ctx context.Context, hash []byte, load func(context.Context, []byte) (rooms.Link, error)) (rooms.Link, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[string(hash)]
	forgets := c.forgets
	c.mu.Unlock()
	if ok && now.Sub(e.at) < c.ttl {
		return e.link, nil
	}
	l, err := load(ctx, hash)
	if err != nil {
		return l, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.forgets != forgets {
		return l, nil
	}
	if len(c.entries) >= c.max {
		c.sweepLocked(now)
	}
	if len(c.entries) < c.max {
		c.entries[string(hash)] = cachedLink{link: l, at: now}
	}
	return l, nil
}

// sweepLocked drops the stale entries; if none is stale the cache is full
// of live ones and new links go uncached until some age.
func (c *linkCache) sweepLocked(now time.Time) {
	for k, e := range c.entries {
		if now.Sub(e.at) >= c.ttl {
			delete(c.entries, k)
		}
	}
}

// forget evicts link id (revoked). The cache is keyed by hash, which a
// revocation does not carry: a scan, as rare as revocations.
func (c *linkCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgets++
	for k, e := range c.entries {
		if e.link.ID == id {
			delete(c.entries, k)
		}
	}
}
