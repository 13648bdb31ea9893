// Package redislimit is the login limiter of cluster mode: the budgets of
// access.LoginLimits kept in Redis, so that every instance spends from the
// same ones (in memory, an attacker spread over n instances would get n
// budgets). Each Allow and Record is one Lua script: the three buckets are
// read, refilled, checked and spent atomically, as the in-memory limiter
// does under its lock, so concurrent attempts on several instances cannot
// all pass before a failure is counted.
//
// Redis unreachable: the instance falls back on its own in-memory limiter
// (a login is never refused because Redis is down; the budgets are then
// per instance again until Redis is back).
package redislimit

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"crisisroom/access"
)

// Limiter implements access.Limiter on Redis.
type Limiter struct {
	client   *goredis.Client
	prefix   string
	lim      access.LoginLimits
	fallback access.Limiter
	timeout  time.Duration
	log      *slog.Logger
	// down: the last call was answered by the fallback (an outage is
	// logged once, at its start and at its end); failedAt is when Redis
	// last failed (unix ns): for retryAfterFailure after it, logins go
	// straight to the fallback instead of each waiting for a dead Redis.
	down     atomic.Bool
	failedAt atomic.Int64
}

// RetryAfterFailure is how long Redis is left alone after a failure.
const RetryAfterFailure = 2 * time.Second

// skip tells whether Redis failed too recently to be asked.
func (l *Limiter) skip() bool {
	return time.Since(time.Unix(0, l.failedAt.Load())) < RetryAfterFailure
}

var _ access.Limiter = (*Limiter)(nil)

// Options of New.
type Options struct {
	// URL is redis://[user:password@]host:port[/db].
	URL string
	// Prefix is put before every key ("crisisroom:login:" by default).
	Prefix string
	// Timeout bounds one call to Redis (300 ms by default): a login waits
	// no longer before the fallback decides.
	Timeout time.Duration
}

// New returns a limiter with lim's budgets on the Redis at o.URL.
func New(o Options, lim access.LoginLimits, log *slog.Logger) (*Limiter, error) {
	opt, err := goredis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	opt.MaxRetries, opt.DialerRetries, opt.ContextTimeoutEnabled = 1, 1, true
	if opt.ClientName == "" {
		opt.ClientName = "crisisroom-login"
	}
	l := &Limiter{client: goredis.NewClient(opt), prefix: o.Prefix, lim: lim.WithDefaults(),
		fallback: access.NewLoginLimiter(lim), timeout: o.Timeout, log: log}
	if l.prefix == "" {
		l.prefix = "crisisroom:login:"
	}
	if l.timeout <= 0 {
		l.timeout = 300 * time.Millisecond
	}
	return l, nil
}

// Close closes the Redis connections.
func (l *Limiter) Close() error { return l.client.Close() }

func (l *Limiter) keys(account, ip string) []string {
	ip = access.IPKey(ip)
	// The pair's key must not be forgeable from another pair's parts: the
	// lengths go in front.
	return []string{l.prefix + "ip:" + ip, fmt.Sprintf("%spair:%d:%s:%s", l.prefix, len(account), account, ip), l.prefix + "acct:" + account}
}

func (l *Limiter) budgets(now time.Time) []any {
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	return []any{now.UnixMilli(), l.lim.PerIP.Burst, ms(l.lim.PerIP.Every), l.lim.PerPair.Burst, ms(l.lim.PerPair.Every),
		l.lim.PerAccount.Burst, ms(l.lim.PerAccount.Every), ms(l.lim.TrustFor)}
}

// Allow implements access.Limiter.
func (l *Limiter) Allow(account, ip string, now time.Time) (bool, time.Duration) {
	if l.skip() {
		return l.fallback.Allow(account, ip, now)
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	res, err := allowScript.Run(ctx, l.client, l.keys(account, ip), l.budgets(now)...).Int64Slice()
	if err != nil || len(res) != 2 {
		l.fellBack(err)
		return l.fallback.Allow(account, ip, now)
	}
	l.back()
	if res[0] == 1 {
		return true, 0
	}
	// Whole seconds, rounded up, as Retry-After wants.
	return false, time.Duration(math.Ceil(float64(res[1])/1000)) * time.Second
}

// Record implements access.Limiter.
func (l *Limiter) Record(account, ip string, success bool, now time.Time) {
	if !success {
		return // the reservation stays spent
	}
	if l.skip() {
		l.fallback.Record(account, ip, success, now)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	if err := recordScript.Run(ctx, l.client, l.keys(account, ip), l.budgets(now)...).Err(); err != nil {
		l.fellBack(err)
		l.fallback.Record(account, ip, success, now)
		return
	}
	l.back()
}

func (l *Limiter) fellBack(err error) {
	l.failedAt.Store(time.Now().UnixNano())
	if !l.down.Swap(true) {
		l.log.Warn("login limiter: Redis unreachable, counting on this instance alone", "err", err)
	}
}

func (l *Limiter) back() {
	if l.down.Swap(false) {
		l.log.Info("login limiter: Redis is back")
	}
}

// The scripts keep each bucket as a hash: t tokens (a float, as a string),
// a the time of t (ms), u the time a pair is trusted until (ms). A missing
// key is a full bucket; a key expires once it would be full again (or, for
// a trusted pair, when the trust ends), so Redis holds only the buckets
// that matter, as the in-memory sweep does. ARGV: now, then burst and
// refill period (ms) of the address, the pair and the account, then the
// trust period (ms).
const bucketLib = `
local now = tonumber(ARGV[1])
local function load(key, burst, every)
  local v = redis.call('HMGET', key, 't', 'a', 'u')
  local t, a, u = tonumber(v[1]), tonumber(v[2]), tonumber(v[3]) or 0
  if t == nil then return burst, u end
  if now > a then t = math.min(burst, t + (now - a) / every) end
  return t, u
end
local function save(key, t, u, burst, every)
  redis.call('HSET', key, 't', tostring(t), 'a', tostring(now), 'u', tostring(u))
  local ttl = math.ceil((burst - t) * every)
  if u - now > ttl then ttl = u - now end
  if ttl < 1000 then ttl = 1000 end
  redis.call('PEXPIRE', key, ttl)
end
local ipB, ipE = tonumber(ARGV[2]), tonumber(ARGV[3])
local pairB, pairE = tonumber(ARGV[4]), tonumber(ARGV[5])
local accB, accE = tonumber(ARGV[6]), tonumber(ARGV[7])
local trustFor = tonumber(ARGV[8])
`

// allowScript answers {1, 0} (reserved) or {0, wait ms}: the address
// first, then the pair, then the account unless the pair is trusted, as
// access.LoginLimiter.Allow.
var allowScript = goredis.NewScript(bucketLib + `
local ipT, ipU = load(KEYS[1], ipB, ipE)
if ipT < 1 then return {0, math.ceil((1 - ipT) * ipE)} end
local pairT, pairU = load(KEYS[2], pairB, pairE)
if pairT < 1 then return {0, math.ceil((1 - pairT) * pairE)} end
local trusted = pairU > now
local accT, accU = 0, 0
if not trusted then
  accT, accU = load(KEYS[3], accB, accE)
  if accT < 1 then return {0, math.ceil((1 - accT) * accE)} end
end
save(KEYS[1], ipT - 1, ipU, ipB, ipE)
save(KEYS[2], pairT - 1, pairU, pairB, pairE)
if not trusted then save(KEYS[3], accT - 1, accU, accB, accE) end
return {1, 0}
`)

// recordScript records a success: what Allow took is given back, the
// pair is refilled and trusted, as access.LoginLimiter.Record.
var recordScript = goredis.NewScript(bucketLib + `
if redis.call('EXISTS', KEYS[1]) == 1 then
  local t, u = load(KEYS[1], ipB, ipE)
  save(KEYS[1], math.min(ipB, t + 1), u, ipB, ipE)
end
local pairT, pairU = load(KEYS[2], pairB, pairE)
if not (pairU > now) and redis.call('EXISTS', KEYS[3]) == 1 then
  local t, u = load(KEYS[3], accB, accE)
  save(KEYS[3], math.min(accB, t + 1), u, accB, accE)
end
save(KEYS[2], pairB, now + trustFor, pairB, pairE)
return 1
`)
