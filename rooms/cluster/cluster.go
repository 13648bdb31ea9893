// Package cluster links the rooms of several instances (cluster mode)
// through the bus: rooms says what it needs (rooms.ClusterLink) and this
// package provides it on one bus topic.
//
// One topic carries every room's events rather than one per room: each
// instance must know every room's members before its first local join
// (capacity, the joined list), so it would subscribe to every room anyway,
// and one topic keeps a single order between an instance's joins, leaves
// and relays, which the rooms' join protocol relies on.
package cluster

import (
	"context"

	"crisisroom/bus"
	"crisisroom/rooms"
)

// Topic is the bus topic of the rooms' events.
const Topic = "rooms"

// Link is a rooms.ClusterLink on a bus topic. The bus must deliver one
// order to every subscriber: Redis pub/sub does; the in-process bus does
// not order concurrent publishers, and has no other instance to talk to.
type Link struct {
	Bus   bus.Bus
	Topic string
}

// New returns the Link on b's rooms topic.
func New(b bus.Bus) Link { return Link{Bus: b, Topic: Topic} }

// Publish implements rooms.ClusterLink.
func (l Link) Publish(ctx context.Context, msg []byte) error {
	return l.Bus.Publish(ctx, l.Topic, msg)
}

// Subscribe implements rooms.ClusterLink.
func (l Link) Subscribe(ctx context.Context) (rooms.ClusterFeed, error) {
	s, err := l.Bus.Subscribe(ctx, l.Topic)
	if err != nil {
		return nil, err
	}
	return s, nil
}

var _ rooms.ClusterLink = Link{}
