package main

import (
	"crisisroom/sfu"
)

// crisisroomSFU is the sfu package as the bench drives it: one room on a
// loopback SFU, each client a member (publishers may publish). The
// server trickles its candidates; the clients put theirs in their SDP.
type crisisroomSFU struct {
	s *sfu.SFU
	r *sfu.Router
}

func newCrisisroomSFU() (sfuUnderTest, error) {
	s, err := sfu.New(sfu.Config{UDPAddr: "127.0.0.1:0", Loopback: true})
	if err != nil {
		return nil, err
	}
	return &crisisroomSFU{s: s, r: s.Room("bench")}, nil
}

func (c *crisisroomSFU) join(id string, publish bool, send func(sfu.Signal)) (func(sfu.Signal) error, error) {
	m, err := c.r.Join(id, send, sfu.JoinOptions{Publish: publish})
	if err != nil {
		return nil, err
	}
	return m.Signal, nil
}

func (c *crisisroomSFU) close() error { return c.s.Close() }

// stats are the SFU's own counters, printed beside the clients' figures
// as a cross-check (and for its drops, which the clients cannot see).
func (c *crisisroomSFU) stats() sfu.RoomStats { return c.r.Stats() }
