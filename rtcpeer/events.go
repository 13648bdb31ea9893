package rtcpeer

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Kind names what an Event records.
type Kind string

// Event kinds. Peer is the remote peer concerned ("" when none).
const (
	EventJoined       Kind = "joined"        // the server seated us; Detail "resumed" after a resume
	EventPeerJoined   Kind = "peer-joined"   // the server announced a newcomer
	EventPeerLeft     Kind = "peer-left"     // the server announced a departure
	EventError        Kind = "error"         // the server refused something; Detail is the error code
	EventBye          Kind = "bye"           // the server is closing our socket; Detail is the close code
	EventSocketClosed Kind = "socket-closed" // our WebSocket ended (dropped, left, or closed by the server)
	EventState        Kind = "pc-state"      // a PeerConnectionState change; Detail is the new state (pion may report two quick changes out of order)
	EventConnected    Kind = "connected"     // a PeerConnection reached "connected" (again after an ICE restart)
	EventFirstRTP     Kind = "first-rtp"     // the first RTP packet arrived on a remote video track
	EventDataOpen     Kind = "data-open"     // the data channel with Peer opened
	EventData         Kind = "data"          // a data-channel message; Detail is its text
	EventFailure      Kind = "failure"       // a local negotiation step failed; Detail says which
	EventMode         Kind = "mode"          // the room's media mode changed; Detail is the mode
)

// Event is one thing a Node observed, stamped with the time it did.
type Event struct {
	Kind   Kind
	Peer   string
	Detail string
	At     time.Time
}

// tracker records events and RTP counts and wakes waiters. Waiters take the
// current "changed" channel before testing their condition, so a change
// between the test and the select is never missed.
type tracker struct {
	mu     sync.Mutex
	events []Event
	rtp    map[string]int // RTP packets received per remote peer
	// last and gap: when the latest packet from each peer came, and the
	// longest silence between two of its packets, whichever path they
	// took (mesh or SFU): a switch must not freeze a face.
	last    map[string]time.Time
	gap     map[string]time.Duration
	changed chan struct{}
}

func newTracker() *tracker {
	return &tracker{rtp: map[string]int{}, last: map[string]time.Time{}, gap: map[string]time.Duration{}, changed: make(chan struct{})}
}

// notifyLocked wakes every waiter. Called with t.mu held.
func (t *tracker) notifyLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}

func (t *tracker) add(kind Kind, peer, detail string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.events = append(t.events, Event{Kind: kind, Peer: peer, Detail: detail, At: time.Now()})
	t.notifyLocked()
}

// packet counts one RTP packet from peer; first reports whether it was the
// first one of this link, which the caller tracks (a re-created link starts
// again).
func (t *tracker) packet(peer string, first bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rtp[peer]++
	now := time.Now()
	if last, ok := t.last[peer]; ok && now.Sub(last) > t.gap[peer] {
		t.gap[peer] = now.Sub(last)
	}
	t.last[peer] = now
	if first {
		t.events = append(t.events, Event{Kind: EventFirstRTP, Peer: peer, At: now})
	}
	t.notifyLocked()
}

func (t *tracker) watch() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.changed
}

// wait blocks until cond holds or ctx ends. cond must not take t.mu.
func (t *tracker) wait(ctx context.Context, what string, cond func() bool) error {
	for {
		ch := t.watch()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		}
	}
}

// Events returns a copy of everything observed so far, oldest first.
func (n *Node) Events() []Event {
	n.t.mu.Lock()
	defer n.t.mu.Unlock()
	return append([]Event(nil), n.t.events...)
}

// Count returns how many events of kind concern peer ("" counts any peer).
func (n *Node) Count(kind Kind, peer string) int {
	n.t.mu.Lock()
	defer n.t.mu.Unlock()
	c := 0
	for _, e := range n.t.events {
		if e.Kind == kind && (peer == "" || e.Peer == peer) {
			c++
		}
	}
	return c
}

// Last returns the most recent event of kind concerning peer ("" for any).
func (n *Node) Last(kind Kind, peer string) (Event, bool) {
	n.t.mu.Lock()
	defer n.t.mu.Unlock()
	for i := len(n.t.events) - 1; i >= 0; i-- {
		if e := n.t.events[i]; e.Kind == kind && (peer == "" || e.Peer == peer) {
			return e, true
		}
	}
	return Event{}, false
}

// RTPCount returns how many RTP packets arrived from peer so far.
func (n *Node) RTPCount(peer string) int {
	n.t.mu.Lock()
	defer n.t.mu.Unlock()
	return n.t.rtp[peer]
}

// WaitCount blocks until at least count events of kind concern peer ("" for
// any peer), or ctx ends.
func (n *Node) WaitCount(ctx context.Context, kind Kind, peer string, count int) error {
	return n.t.wait(ctx, fmt.Sprintf("%s: %d × %s from %q", n.label(), count, kind, peer),
		func() bool { return n.Count(kind, peer) >= count })
}

// WaitEvent blocks until an event of kind concerning peer ("" for any) whose
// Detail is detail ("" for any) has been seen, and returns it.
func (n *Node) WaitEvent(ctx context.Context, kind Kind, peer, detail string) (Event, error) {
	var found Event
	err := n.t.wait(ctx, fmt.Sprintf("%s: %s %q from %q", n.label(), kind, detail, peer), func() bool {
		for _, e := range n.Events() {
			if e.Kind == kind && (peer == "" || e.Peer == peer) && (detail == "" || e.Detail == detail) {
				found = e
				return true
			}
		}
		return false
	})
	return found, err
}

// MaxGap is the longest time between two RTP packets from peer so far.
func (n *Node) MaxGap(peer string) time.Duration {
	n.t.mu.Lock()
	defer n.t.mu.Unlock()
	return n.t.gap[peer]
}

// ResetGaps forgets the gaps measured so far (from now on).
func (n *Node) ResetGaps() {
	n.t.mu.Lock()
	defer n.t.mu.Unlock()
	clear(n.t.gap)
}

// WaitRTP blocks until at least count RTP packets have arrived from peer.
func (n *Node) WaitRTP(ctx context.Context, peer string, count int) error {
	return n.t.wait(ctx, fmt.Sprintf("%s: %d RTP packets from %q", n.label(), count, peer),
		func() bool { return n.RTPCount(peer) >= count })
}

// WaitConnected blocks until the PeerConnection with each of peers is in
// state "connected".
func (n *Node) WaitConnected(ctx context.Context, peers ...string) error {
	return n.t.wait(ctx, fmt.Sprintf("%s: connected to %v", n.label(), peers), func() bool {
		for _, p := range peers {
			if l := n.link(p); l == nil || !l.connected() {
				return false
			}
		}
		return true
	})
}
