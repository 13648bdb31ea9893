package access

import (
	"math"
	"net/netip"
	"sync"
	"time"
)

// Budget is a token bucket: Burst attempts at once, then one more every
// Every.
type Budget struct {
	Burst float64
	Every time.Duration
}

// LoginLimits are the budgets of failed logins.
type LoginLimits struct {
	// PerIP bounds password spraying from one address (many accounts).
	// It is generous because a whole prefecture may sit behind one NAT.
	PerIP Budget
	// PerPair bounds guessing one account from one address: the real
	// user's typos land here, and a success refills it.
	PerPair Budget
	// PerAccount bounds a distributed attack on one account (many
	// addresses, each under its own budgets). Only attempts that passed
	// the two checks above spend it, so a flood from one address cannot
	// lock the account for everyone else.
	PerAccount Budget
	// TrustFor: an address a user logged in from successfully skips the
	// per-account budget for this long (its pair budget still holds), so
	// that a distributed attack does not lock out a user at their usual
	// desk either.
	TrustFor time.Duration
	// MaxKeys caps each of the three tables; past it, keys whose bucket
	// has refilled are dropped, then arbitrary ones.
	MaxKeys int
}

// DefaultLoginLimits: per address 50 failures then 10 a minute; per
// account and address 5 then 1 a minute; per account 20 then 2 a minute
// (under 3,000 guesses a day against a 12-character password).
func DefaultLoginLimits() LoginLimits {
	return LoginLimits{
		PerIP:      Budget{Burst: 50, Every: 6 * time.Second},
		PerPair:    Budget{Burst: 5, Every: time.Minute},
		PerAccount: Budget{Burst: 20, Every: 30 * time.Second},
		TrustFor:   30 * 24 * time.Hour,
		MaxKeys:    100_000,
	}
}

// Limiter rate-limits password logins by client address, by account and
// address, and by account (LoginLimits). Implementations must pass
// limitertest.Run.
type Limiter interface {
	// Allow tells whether a login attempt for account from ip may go on,
	// and if so reserves it (see Record). When it may not, retryAfter says
	// when it may, in whole seconds. account should be the normalized
	// login, known or not (the answer must not depend on whether it
	// exists).
	Allow(account, ip string, now time.Time) (ok bool, retryAfter time.Duration)
	// Record reports how an attempt Allow let through ended. A success
	// gives back what Allow reserved, refills the (account, address)
	// budget and trusts that address for the account; a failure keeps the
	// reservation spent.
	Record(account, ip string, success bool, now time.Time)
}

var _ Limiter = (*LoginLimiter)(nil)

// WithDefaults returns lim with the default's budget in place of one of
// less than one attempt or that never refills, and the default MaxKeys in
// place of none.
func (lim LoginLimits) WithDefaults() LoginLimits {
	def := DefaultLoginLimits()
	for _, b := range []struct{ b, def *Budget }{{&lim.PerIP, &def.PerIP}, {&lim.PerPair, &def.PerPair}, {&lim.PerAccount, &def.PerAccount}} {
		if b.b.Burst < 1 || b.b.Every <= 0 {
			*b.b = *b.def
		}
	}
	if lim.MaxKeys <= 0 {
		lim.MaxKeys = def.MaxKeys
	}
	return lim
}

// LoginLimiter is the Limiter in memory: each instance of a cluster would
// count on its own (an attacker spread over n instances gets n budgets),
// and a restart forgets; argon2id's cost is the floor under both. Cluster
// mode uses the Redis one (access/redislimit), which falls back on this.
//
// Allow reserves one attempt from each budget before the password is
// checked, so that concurrent attempts cannot all pass the check before
// any failure is counted; Record(success) gives it back, so only failures
// count.
type LoginLimiter struct {
	lim LoginLimits

	mu        sync.Mutex
	ips       map[string]*bucket
	pairs     map[pairKey]*bucket
	accounts  map[string]*bucket
	lastSweep time.Time
}

type pairKey struct{ account, ip string }

// bucket is a Budget's state. A key without a bucket is a full one.
type bucket struct {
	tokens       float64
	at           time.Time // of tokens
	trustedUntil time.Time // pairs only: last success + TrustFor
}

// NewLoginLimiter returns a limiter with lim's budgets. A budget of less
// than one attempt, or that never refills, is raised to the default's.
func NewLoginLimiter(lim LoginLimits) *LoginLimiter {
	lim = lim.WithDefaults()
	return &LoginLimiter{lim: lim, ips: map[string]*bucket{}, pairs: map[pairKey]*bucket{}, accounts: map[string]*bucket{}}
}

// sweepEvery is how often full buckets are dropped.
const sweepEvery = time.Minute

// Allow tells whether a login attempt for account from ip may go on, and
// if so reserves it (see Record). When it may not, retryAfter says when
// it may. account should be the normalized login, known or not (the
// answer must not depend on whether it exists).
func (l *LoginLimiter) Allow(account, ip string, now time.Time) (ok bool, retryAfter time.Duration) {
	ip = IPKey(ip)
	pk := pairKey{account, ip}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.maybeSweep(now)
	ipB, pairB, accB := l.ips[ip], l.pairs[pk], l.accounts[account]
	// The address first: a refused address spends nothing else.
	if w := wait(ipB, l.lim.PerIP, now); w > 0 {
		return false, w
	}
	if w := wait(pairB, l.lim.PerPair, now); w > 0 {
		return false, w
	}
	trusted := pairB != nil && now.Before(pairB.trustedUntil)
	if !trusted {
		if w := wait(accB, l.lim.PerAccount, now); w > 0 {
			return false, w
		}
	}
	take(l.ips, ip, ipB, l.lim.PerIP, now)
	take(l.pairs, pk, pairB, l.lim.PerPair, now)
	if !trusted {
		take(l.accounts, account, accB, l.lim.PerAccount, now)
	}
	return true, 0
}

// Record reports how an attempt Allow let through ended. A success gives
// back what Allow reserved, refills the (account, address) budget and
// trusts that address for the account; a failure keeps the reservation
// spent.
func (l *LoginLimiter) Record(account, ip string, success bool, now time.Time) {
	if !success {
		return
	}
	ip = IPKey(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.maybeSweep(now)
	pk := pairKey{account, ip}
	b := l.pairs[pk]
	giveBack(l.ips, ip, l.lim.PerIP, now)
	if b == nil || !now.Before(b.trustedUntil) { // else Allow did not take from it
		giveBack(l.accounts, account, l.lim.PerAccount, now)
	}
	if b == nil {
		b = &bucket{}
		l.pairs[pk] = b
	}
	b.tokens, b.at, b.trustedUntil = l.lim.PerPair.Burst, now, now.Add(l.lim.TrustFor)
}

// refill brings b's tokens to now (a clock going back refills nothing).
func (b *bucket) refill(bud Budget, now time.Time) {
	if now.After(b.at) {
		b.tokens = min(bud.Burst, b.tokens+float64(now.Sub(b.at))/float64(bud.Every))
		b.at = now
	}
}

// full tells whether b holds nothing a missing key would not (so it may
// be dropped).
func (b *bucket) full(bud Budget, now time.Time) bool {
	b.refill(bud, now)
	return b.tokens >= bud.Burst && !now.Before(b.trustedUntil)
}

// wait is how long until b holds one attempt (0: it does now), rounded
// up to the second for Retry-After.
func wait(b *bucket, bud Budget, now time.Time) time.Duration {
	if b == nil {
		return 0 // a missing key is a full bucket
	}
	b.refill(bud, now)
	if b.tokens >= 1 {
		return 0
	}
	d := time.Duration(math.Ceil((1 - b.tokens) * float64(bud.Every)))
	return (d + time.Second - 1).Truncate(time.Second)
}

// take spends one attempt from key's bucket b (nil: a full one, stored
// now; maybeSweep made room).
func take[K comparable](m map[K]*bucket, key K, b *bucket, bud Budget, now time.Time) {
	if b == nil {
		b = &bucket{tokens: bud.Burst, at: now}
		m[key] = b
	}
	b.tokens--
}

func giveBack[K comparable](m map[K]*bucket, key K, bud Budget, now time.Time) {
	if b := m[key]; b != nil {
		b.refill(bud, now)
		b.tokens = min(bud.Burst, b.tokens+1)
	}
}

// maybeSweep sweeps once a minute, and whenever a table is full: it runs
// before the buckets are looked up, so it never drops one in use.
func (l *LoginLimiter) maybeSweep(now time.Time) {
	if now.Sub(l.lastSweep) >= sweepEvery || now.Before(l.lastSweep) ||
		len(l.ips) >= l.lim.MaxKeys || len(l.pairs) >= l.lim.MaxKeys || len(l.accounts) >= l.lim.MaxKeys {
		l.sweep(now)
	}
}

// sweep drops the buckets that have refilled, then, if a table is still
// at its cap, arbitrary entries: memory stays bounded
// whatever an attacker sends, at the price of forgetting some budgets
// (which needs MaxKeys failures to force).
func (l *LoginLimiter) sweep(now time.Time) {
	l.lastSweep = now
	prune(l.ips, l.lim.PerIP, l.lim.MaxKeys, now)
	prune(l.pairs, l.lim.PerPair, l.lim.MaxKeys, now)
	prune(l.accounts, l.lim.PerAccount, l.lim.MaxKeys, now)
}

func prune[K comparable](m map[K]*bucket, bud Budget, maxKeys int, now time.Time) {
	for k, b := range m {
		if b.full(bud, now) {
			delete(m, k)
		}
	}
	if len(m) < maxKeys {
		return
	}
	// Down to 90%: a flood of new keys then costs one full pass per
	// tenth of the cap, not one per attempt.
	for k := range m {
		if len(m) <= maxKeys*9/10 {
			break
		}
		delete(m, k)
	}
}

// Len returns how many keys each table holds (for tests and metrics).
func (l *LoginLimiter) Len() (ips, pairs, accounts int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ips), len(l.pairs), len(l.accounts)
}

// IPKey is the key of a client address: IPv6 clients are counted by /64,
// the block one subscriber usually gets (counting single addresses would
// give each attacker 2^64 budgets).
func IPKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.String()
		}
	}
	return a.String()
}
