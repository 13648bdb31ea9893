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
	C() <-chan []byte
	Close()
}

// SubscriberBuffer is how many messages a subscriber may lag before it
// starts losing them.
const SubscriberBuffer = 256
