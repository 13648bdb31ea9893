// Package bus is the live message bus between the parts of a deployment:
// in-process for the embedded default, Redis pub/sub in cluster mode.
//
// Delivery is at-most-once on purpose (Redis pub/sub is): a subscriber that
// falls behind loses messages, never blocks a publisher. Whoever needs
// gap-free state publishes full states with versions and recovers from a
// snapshot when it sees a gap.
package bus

import "context"

// Bus publishes and subscribes by topic.
type Bus interface {
	Publish(ctx context.Context, topic string, msg []byte) error
	// Subscribe delivers the topic's messages on the returned subscription
	// until Close or until ctx ends.
	Subscribe(ctx context.Context, topic string) (Subscription, error)
	// Ping tells whether the bus can carry messages now (/readyz).
	Ping(ctx context.Context) error
	Close() error
}

// Subscription is one subscriber's stream.
type Subscription interface {
	// C delivers the messages in publication order; it is closed when the
	// subscription ends (Close, its context, or the bus closing).
	C() <-chan []byte
	// Lost receives a signal whenever messages may have been lost between
	// two that C delivered, so that a consumer needing gap-free state
	// re-reads a snapshot (its source of truth) instead of waiting for a
	// periodic reconciliation. Two causes:
	//   - this subscriber fell more than SubscriberBuffer messages behind
	//     and the bus dropped some (every implementation);
	//   - the connection to the broker broke and was re-established
	//     (Redis): what was published in between is gone.
	// The signal is sent only once the subscription is live again, so a
	// snapshot read after receiving it misses nothing: every later change
	// arrives on C. Signals coalesce (the channel holds one) and the
	// channel is never closed: watch C for the end.
	Lost() <-chan struct{}
	Close()
}

// SubscriberBuffer is how many messages a subscriber may lag before it
// starts losing them.
const SubscriberBuffer = 256
