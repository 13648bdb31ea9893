// Package memory is the in-process bus of the embedded default.
package memory

import (
	"context"
	"errors"
	"sync"

	"crisisroom/bus"
)

// Bus is an in-process bus.Bus.
type Bus struct {
	mu     sync.RWMutex
	subs   map[string]map[*sub]struct{}
	closed bool
}

// New returns an empty bus.
func New() *Bus { return &Bus{subs: map[string]map[*sub]struct{}{}} }

var errClosed = errors.New("bus closed")

type sub struct {
	b     *Bus
	topic string
	ch    chan []byte
	lost  chan struct{}
	once  sync.Once
}

func (s *sub) C() <-chan []byte { return s.ch }

// Lost implements bus.Subscription: an in-process bus never disconnects,
// so it signals only the messages a lagging subscriber was dropped.
func (s *sub) Lost() <-chan struct{} { return s.lost }

func (s *sub) Close() {
	s.once.Do(func() {
		s.b.mu.Lock()
		delete(s.b.subs[s.topic], s)
		if len(s.b.subs[s.topic]) == 0 {
			delete(s.b.subs, s.topic)
		}
		s.b.mu.Unlock()
		close(s.ch)
	})
}

// Publish implements bus.Bus. The message is shared, not copied: callers
// must not modify it afterwards.
func (b *Bus) Publish(ctx context.Context, topic string, msg []byte) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return errClosed
	}
	for s := range b.subs[topic] {
		select {
		case s.ch <- msg:
		default: // at-most-once: a lagging subscriber loses this one
			select {
			case s.lost <- struct{}{}:
			default: // already signalled, not yet seen
			}
		}
	}
	return nil
}

// Subscribe implements bus.Bus.
func (b *Bus) Subscribe(ctx context.Context, topic string) (bus.Subscription, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, errClosed
	}
	s := &sub{b: b, topic: topic, ch: make(chan []byte, bus.SubscriberBuffer), lost: make(chan struct{}, 1)}
	if b.subs[topic] == nil {
		b.subs[topic] = map[*sub]struct{}{}
	}
	b.subs[topic][s] = struct{}{}
	b.mu.Unlock()
	go func() {
		<-ctx.Done()
		s.Close()
	}()
	return s, nil
}

// Ping implements bus.Bus.
func (b *Bus) Ping(context.Context) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return errClosed
	}
	return nil
}

// Close implements bus.Bus; it ends every subscription.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	var all []*sub
	for _, set := range b.subs {
		for s := range set {
			all = append(all, s)
		}
	}
	b.mu.Unlock()
	for _, s := range all {
		s.Close()
	}
	return nil
}
