// Package sfu is the selective forwarding unit of a room that outgrew the
// peer-to-peer mesh: every member publishes its tracks once to the server,
// which forwards each to every other member. It knows rooms only by name
// and members only by ID: rooms/ owns membership, signaling/ carries the
// session descriptions and candidates, and this package knows no
// WebSocket.
//
// Each member has two peer connections with the server, so that
// negotiation never collides: "up", which the member offers and on which
// it publishes (audio, camera, optional screen), and "down", which the
// server offers and on which it sends the other members' tracks. A
// forwarded track's stream ID is its publisher's member ID and its track
// ID says what it is ("audio", "video" or "screen"), so that a page puts
// it in the right tile.
package sfu
