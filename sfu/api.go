package sfu

import (
	"github.com/pion/webrtc/v4"
)

// The two peer connections of a member (see the package comment).
const (
	PCUp   = "up"   // member → server: the member offers, publishes
	PCDown = "down" // server → member: the server offers, forwards
)

// Signal is one negotiation message between a member and its router, in
// either direction: an SDP offer or answer, or a trickled candidate
// (nil Candidate: end of candidates), for one of the two connections.
type Signal struct {
	PC        string // PCUp or PCDown
	Kind      string // "offer", "answer" or "candidate"
	SDP       string
	Candidate *webrtc.ICECandidateInit
}

// JoinOptions say what a member may do in the SFU room.
type JoinOptions struct {
	// Publish: false for watch-only members (watch-only guests,
	// observers), who receive without sending. An up offer from them is
	// refused.
	Publish bool
}
