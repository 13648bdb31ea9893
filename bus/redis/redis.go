// Package redis is the cluster-mode bus: Redis pub/sub through go-redis.
//
// One Redis connection carries every subscription of the process: topics
// are subscribed on Redis when their first local subscriber arrives and
// unsubscribed when the last one leaves, and one goroutine fans messages
// out to the local subscribers without ever blocking (a subscriber more
// than bus.SubscriberBuffer behind loses messages and is told on Lost).
//
// When the connection breaks (Redis restarted, network cut), go-redis
// redials and re-subscribes every topic by itself. Redis answers each
// re-subscription with a confirmation; a second confirmation for a topic
// is how this package knows that topic's subscribers may have missed
// messages, and it signals Lost on each of them then — after Redis has the
// subscription again, so a snapshot read on that signal misses nothing.
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"crisisroom/bus"
)

// Options tune the bus; the zero value of every field but URL is a
// sensible default.
type Options struct {
	// URL is redis://[user:password@]host:port[/db] (rediss:// for TLS).
	URL string
	// Prefix is put before every topic: Redis pub/sub channels are global
	// to a server (the db number does not separate them), so two
	// deployments sharing one Redis need different prefixes.
	Prefix string
	// SubscribeTimeout bounds how long Subscribe waits for Redis to
	// confirm a new topic (default 10s).
	SubscribeTimeout time.Duration
}

// DefaultPrefix is the topic prefix when Options.Prefix is empty.
const DefaultPrefix = "crisisroom:"

// Bus is a bus.Bus on Redis pub/sub.
type Bus struct {
	client *goredis.Client
	ps     *goredis.PubSub
	prefix string
	subTTL time.Duration
	log    *slog.Logger

	// opMu orders SUBSCRIBE/UNSUBSCRIBE with the local topic table, so that
	// a topic left and joined again at once ends subscribed.
	opMu sync.Mutex
	// mu guards topics and closed; the receive loop holds it while it
	// hands a message to the topic's subscribers (non-blocking sends).
	mu     sync.Mutex
	topics map[string]*topic
	closed bool
	quit   chan struct{} // closed by Close
	done   chan struct{} // closed when the receive loop has ended
}

// topic is the local state of one subscribed Redis channel.
type topic struct {
	subs      map[*sub]struct{}
	ready     chan struct{} // closed at Redis's first confirmation
	confirmed bool
}

type sub struct {
	b     *Bus
	name  string
	ch    chan []byte
	lost  chan struct{}
	once  sync.Once
	ended chan struct{} // closed by Close; stops the context watcher
}

func (s *sub) C() <-chan []byte      { return s.ch }
func (s *sub) Lost() <-chan struct{} { return s.lost }
func (s *sub) Close()                { s.once.Do(func() { close(s.ended); s.b.leave(s) }) }

// signal tells the subscriber it may have missed messages.
func (s *sub) signal() {
	select {
	case s.lost <- struct{}{}:
	default: // already pending
	}
}

// New connects to Redis and checks it answers: a wrong URL or a Redis that
// is down fails the start, not the first publish.
func New(ctx context.Context, o Options, log *slog.Logger) (*Bus, error) {
	opt, err := goredis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	// At-most-once: a publish during an outage fails fast instead of
	// stalling its caller through go-redis's default 3 retries × 5 dials.
	// One retry still covers a pooled connection that died with a restart.
	opt.MaxRetries, opt.DialerRetries, opt.ContextTimeoutEnabled = 1, 1, true
	if opt.DialTimeout == 0 {
		opt.DialTimeout = 2 * time.Second
	}
	if opt.ClientName == "" {
		opt.ClientName = "crisisroom"
	}
	b := &Bus{client: goredis.NewClient(opt), prefix: o.Prefix, subTTL: o.SubscribeTimeout, log: log,
		topics: map[string]*topic{}, quit: make(chan struct{}), done: make(chan struct{})}
	if b.prefix == "" {
		b.prefix = DefaultPrefix
	}
	if b.subTTL <= 0 {
		b.subTTL = 10 * time.Second
	}
	if err := b.client.Ping(ctx).Err(); err != nil {
		b.client.Close()
		return nil, fmt.Errorf("redis %s: %w", opt.Addr, err)
	}
	b.ps = b.client.Subscribe(context.Background()) // no channel yet: connects on the first Subscribe
	go b.receive()
	return b, nil
}

var errClosed = errors.New("bus closed")

// Publish implements bus.Bus (PUBLISH; no subscriber anywhere is not an
// error).
func (b *Bus) Publish(ctx context.Context, topic string, msg []byte) error {
	if b.isClosed() {
		return errClosed
	}
	return b.client.Publish(ctx, b.prefix+topic, msg).Err()
}

// Ping implements bus.Bus with PING.
func (b *Bus) Ping(ctx context.Context) error {
	if b.isClosed() {
		return errClosed
	}
	return b.client.Ping(ctx).Err()
}

func (b *Bus) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// Subscribe implements bus.Bus. It returns once Redis has confirmed the
// topic, so that a message published after it returns is delivered.
func (b *Bus) Subscribe(ctx context.Context, name string) (bus.Subscription, error) {
	s := &sub{b: b, name: name, ch: make(chan []byte, bus.SubscriberBuffer), lost: make(chan struct{}, 1),
		ended: make(chan struct{})}
	ready, err := b.join(ctx, s)
	if err != nil {
		return nil, err
	}
	wait := time.NewTimer(b.subTTL)
	defer wait.Stop()
	select {
	case <-ready:
	case <-ctx.Done():
		s.Close()
		return nil, ctx.Err()
	case <-wait.C:
		s.Close()
		return nil, fmt.Errorf("redis subscribe %s: not confirmed within %s", name, b.subTTL)
	case <-b.done:
		s.Close()
		return nil, errClosed
	}
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-s.ended:
		}
	}()
	return s, nil
}

// join adds s to its topic, subscribing on Redis for the first one.
func (b *Bus) join(ctx context.Context, s *sub) (ready <-chan struct{}, err error) {
	b.opMu.Lock()
	defer b.opMu.Unlock()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, errClosed
	}
	t := b.topics[s.name]
	first := t == nil
	if first {
		t = &topic{subs: map[*sub]struct{}{}, ready: make(chan struct{})}
		b.topics[s.name] = t
	}
	t.subs[s] = struct{}{}
	b.mu.Unlock()
	if first {
		if err := b.ps.Subscribe(ctx, b.prefix+s.name); err != nil {
			b.mu.Lock()
			delete(b.topics, s.name)
			b.mu.Unlock()
			// go-redis remembers the channel even when the write failed
			// (to subscribe on reconnect): make it forget.
			_ = b.ps.Unsubscribe(context.WithoutCancel(ctx), b.prefix+s.name)
			return nil, fmt.Errorf("redis subscribe %s: %w", s.name, err)
		}
	}
	return t.ready, nil
}

// leave removes s from its topic, unsubscribing on Redis for the last one,
// and closes s's channel.
func (b *Bus) leave(s *sub) {
	b.opMu.Lock()
	defer b.opMu.Unlock()
	b.mu.Lock()
	t := b.topics[s.name]
	last := false
	if t != nil {
		if _, ok := t.subs[s]; ok {
			delete(t.subs, s)
			if last = len(t.subs) == 0; last {
				delete(b.topics, s.name)
			}
		}
	}
	closed := b.closed
	close(s.ch) // under mu: the receive loop sends under mu too
	b.mu.Unlock()
	if last && !closed {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// On error (Redis down) go-redis has still dropped the channel
		// from what it re-subscribes on reconnect.
		_ = b.ps.Unsubscribe(ctx, b.prefix+s.name)
	}
}

// receive is the one reader of the Redis connection. go-redis reconnects
// inside Receive after an error; this loop only paces the retries.
func (b *Bus) receive() {
	defer close(b.done)
	ctx := context.Background()
	const minPause, maxPause = 50 * time.Millisecond, time.Second
	pause := minPause
	down := false
	for {
		msg, err := b.ps.Receive(ctx)
		if err != nil {
			if b.isClosed() {
				return
			}
			if !down {
				b.log.Warn("redis bus: connection lost, reconnecting", "err", err)
				down = true
			}
			select { // a closed port answers at once: do not spin
			case <-time.After(pause):
			case <-b.quit:
			}
			pause = min(2*pause, maxPause)
			continue
		}
		pause = minPause
		if down {
			b.log.Info("redis bus: connection re-established")
			down = false
		}
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				b.confirmed(strings.TrimPrefix(m.Channel, b.prefix))
			}
		case *goredis.Message:
			b.deliver(strings.TrimPrefix(m.Channel, b.prefix), []byte(m.Payload))
		}
	}
}

// confirmed handles Redis's confirmation of a topic: the first one
// releases Subscribe, a later one means a re-subscription after a broken
// connection.
func (b *Bus) confirmed(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[name]
	switch {
	case t == nil: // left meanwhile
	case !t.confirmed:
		t.confirmed = true
		close(t.ready)
	default:
		for s := range t.subs {
			s.signal()
		}
	}
}

// deliver hands msg to every local subscriber of the topic; the message is
// shared, subscribers must not modify it.
func (b *Bus) deliver(name string, msg []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[name]
	if t == nil {
		return
	}
	for s := range t.subs {
		select {
		case s.ch <- msg:
		default: // at-most-once: a lagging subscriber loses this one
			s.signal()
		}
	}
}

// Close implements bus.Bus: it ends every subscription and the connections.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.quit)
	var all []*sub
	for _, t := range b.topics {
		for s := range t.subs {
			all = append(all, s)
		}
	}
	b.mu.Unlock()
	err := b.ps.Close() // ends the receive loop's Receive
	<-b.done
	for _, s := range all {
		s.Close()
	}
	return errors.Join(err, b.client.Close())
}
