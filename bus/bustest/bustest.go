// Package bustest is the conformance suite every bus.Bus must pass.
package bustest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"crisisroom/bus"
)

// Run runs the suite; newBus returns a fresh bus for each subtest. Topics
// are made unique per subtest so that implementations sharing a server
// (Redis) do not see each other's traffic.
func Run(t *testing.T, newBus func(t *testing.T) bus.Bus) {
	ctx := context.Background()
	topic := func(t *testing.T) string { return fmt.Sprintf("bustest.%s.%d", t.Name(), time.Now().UnixNano()) }

	recv := func(t *testing.T, s bus.Subscription) []byte {
		t.Helper()
		select {
		case m, ok := <-s.C():
			if !ok {
				t.Fatal("subscription closed")
			}
			return m
		case <-time.After(5 * time.Second):
			t.Fatal("no message within 5s")
		}
		return nil
	}

	t.Run("PublishReachesEverySubscriberInOrder", func(t *testing.T) {
		b := newBus(t)
		tp := topic(t)
		s1, err := b.Subscribe(ctx, tp)
		if err != nil {
			t.Fatal(err)
		}
		defer s1.Close()
		s2, err := b.Subscribe(ctx, tp)
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		for i := 0; i < 10; i++ {
			if err := b.Publish(ctx, tp, []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
		for _, s := range []bus.Subscription{s1, s2} {
			for i := 0; i < 10; i++ {
				if got := string(recv(t, s)); got != fmt.Sprint(i) {
					t.Fatalf("message %d = %q", i, got)
				}
			}
		}
	})

	t.Run("TopicsAreIsolated", func(t *testing.T) {
		b := newBus(t)
		a, other := topic(t)+".a", topic(t)+".b"
		s, err := b.Subscribe(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := b.Publish(ctx, other, []byte("wrong")); err != nil {
			t.Fatal(err)
		}
		if err := b.Publish(ctx, a, []byte("right")); err != nil {
			t.Fatal(err)
		}
		if got := string(recv(t, s)); got != "right" {
			t.Fatalf("got %q from another topic", got)
		}
	})

	t.Run("CloseStopsDelivery", func(t *testing.T) {
		b := newBus(t)
		tp := topic(t)
		s, err := b.Subscribe(ctx, tp)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		s.Close() // idempotent
		if err := b.Publish(ctx, tp, []byte("x")); err != nil {
			t.Fatal(err)
		}
		select {
		case m, ok := <-s.C():
			if ok {
				t.Fatalf("closed subscription got %q", m)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("closed subscription's channel was not closed")
		}
	})

	t.Run("ContextEndsSubscription", func(t *testing.T) {
		b := newBus(t)
		cctx, cancel := context.WithCancel(ctx)
		s, err := b.Subscribe(cctx, topic(t))
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		select {
		case _, ok := <-s.C():
			if ok {
				t.Fatal("unexpected message")
			}
		case <-time.After(2 * time.Second):
			t.Fatal("subscription outlived its context")
		}
	})

	t.Run("SlowSubscriberNeverBlocksPublisher", func(t *testing.T) {
		b := newBus(t)
		tp := topic(t)
		slow, err := b.Subscribe(ctx, tp)
		if err != nil {
			t.Fatal(err)
		}
		defer slow.Close()
		done := make(chan error, 1)
		go func() {
			for i := 0; i < 4*bus.SubscriberBuffer; i++ {
				if err := b.Publish(ctx, tp, []byte("x")); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("publisher blocked on a subscriber that does not read")
		}
	})

	t.Run("Ping", func(t *testing.T) {
		if err := newBus(t).Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
