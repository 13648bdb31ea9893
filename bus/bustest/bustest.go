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
			select {
			case <-s.Lost():
				t.Fatal("loss signalled although nothing was lost")
			default:
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

	t.Run("RejoinAfterLastLeft", func(t *testing.T) {
		// The last subscriber leaving and a new one arriving at once (a
		// networked bus unsubscribes, then subscribes again): the new one
		// gets what follows.
		b := newBus(t)
		tp := topic(t)
		for i := 0; i < 3; i++ {
			s, err := b.Subscribe(ctx, tp)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Publish(ctx, tp, []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
			if got := string(recv(t, s)); got != fmt.Sprint(i) {
				t.Fatalf("round %d got %q", i, got)
			}
			s.Close()
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
		// The subscriber is told it lost messages, and it still works.
		select {
		case <-slow.Lost():
		case <-time.After(5 * time.Second):
			t.Fatal("dropped messages were not signalled on Lost")
		}
		// Catch up (what is buffered), then the next message gets through.
		for quiet := false; !quiet; {
			select {
			case _, ok := <-slow.C():
				if !ok {
					t.Fatal("subscription closed")
				}
			case <-time.After(300 * time.Millisecond):
				quiet = true
			}
		}
		if err := b.Publish(ctx, tp, []byte("after")); err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			if i > 4*bus.SubscriberBuffer {
				t.Fatal("the message published after the loss never came")
			}
			if string(recv(t, slow)) == "after" {
				break
			}
		}
	})

	t.Run("Ping", func(t *testing.T) {
		if err := newBus(t).Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// RunOutage checks a networked bus through an outage of its broker: stop
// and start stop and restart it (same address). While it is down, Publish
// and Ping fail within their context instead of hanging and subscriptions
// stay open; once it is back, every subscription signals Lost and then
// carries messages again, without the consumer re-subscribing.
func RunOutage(t *testing.T, b bus.Bus, stop, start func(t testing.TB)) {
	ctx := context.Background()
	tp := fmt.Sprintf("bustest.outage.%d", time.Now().UnixNano())
	s, err := b.Subscribe(ctx, tp)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	expect := func(want string) {
		t.Helper()
		select {
		case m, ok := <-s.C():
			if !ok || string(m) != want {
				t.Fatalf("got %q (open %v), want %q", m, ok, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%q not received within 5s", want)
		}
	}
	if err := b.Publish(ctx, tp, []byte("before")); err != nil {
		t.Fatal(err)
	}
	expect("before")

	stop(t)
	down := time.Now()
	for _, call := range []struct {
		name string
		f    func(context.Context) error
	}{
		{"publish", func(c context.Context) error { return b.Publish(c, tp, []byte("lost")) }},
		{"ping", b.Ping},
	} {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := call.f(cctx)
		cancel()
		if err == nil {
			t.Fatalf("%s succeeded with the broker down", call.name)
		}
		t.Logf("%s while down: %v", call.name, err)
	}
	if d := time.Since(down); d > 10*time.Second {
		t.Fatalf("calls while down took %s", d)
	}
	select {
	case m, ok := <-s.C():
		t.Fatalf("subscription got %q (open %v) while the broker was down", m, ok)
	default:
	}

	start(t)
	back := time.Now()
	select {
	case <-s.Lost():
		t.Logf("resubscribed and signalled %s after the broker came back", time.Since(back).Round(time.Millisecond))
	case <-time.After(20 * time.Second):
		t.Fatal("no Lost signal within 20s of the broker coming back")
	}
	if err := b.Publish(ctx, tp, []byte("after")); err != nil {
		t.Fatal(err)
	}
	expect("after")
	if err := b.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}
