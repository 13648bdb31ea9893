package signaling

import (
	"context"
	"errors"
	"time"

	"crisisroom/protocol"
	"crisisroom/rooms"
)

// handlers maps each client message type to its handler once joined. Join
// and resume are handled before; a type missing here is refused.
var handlers = map[string]func(ss *session, env protocol.Envelope, p protocol.Validator) error{
	protocol.TypeOffer:     relaySDP(protocol.TypeOffer),
	protocol.TypeAnswer:    relaySDP(protocol.TypeAnswer),
	protocol.TypeCandidate: relayCandidate,
	protocol.TypeChat:      chat,
	protocol.TypeState:     state,
	protocol.TypeLeave:     leave,
	protocol.TypePresenter: presenter,
	protocol.TypeMapView:   mapView,
	protocol.TypeAnnotate:  annotate,
}

func (ss *session) handle(ctx context.Context, env protocol.Envelope, p protocol.Validator) {
	switch env.Type {
	case protocol.TypeJoin, protocol.TypeResume:
		if ss.member != nil {
			ss.fail(&protocol.ProtocolError{Code: protocol.ErrAlreadyJoined, Ref: env.ID, Msg: "this socket is already in a room"})
			return
		}
		ss.enter(ctx, env, p)
		return
	}
	if th := topicHandlers[env.Type]; th != nil {
		ss.report(env, th(ss, ctx, env, p))
		return
	}
	if ss.member == nil {
		ss.fail(&protocol.ProtocolError{Code: protocol.ErrNotJoined, Ref: env.ID, Msg: "join a room first"})
		return
	}
	h := handlers[env.Type]
	if h == nil { // Decode knows the type but it is server→client only
		ss.fail(&protocol.ProtocolError{Code: protocol.ErrUnknownType, Ref: env.ID, Msg: env.Type + " is not accepted from clients"})
		return
	}
	ss.report(env, h(ss, env, p))
}

// report answers a handler's error, if any.
func (ss *session) report(env protocol.Envelope, err error) {
	if err == nil {
		return
	}
	var pe *protocol.ProtocolError
	if errors.As(err, &pe) {
		ss.fail(pe)
		return
	}
	ss.s.log.Error("handler failed", "type", env.Type, "err", err)
	ss.fail(&protocol.ProtocolError{Code: protocol.ErrInternal, Ref: env.ID, Msg: "internal error"})
}

// enter joins or resumes. A refused entry closes the socket with a final
// code: retrying the same token cannot succeed.
func (ss *session) enter(ctx context.Context, env protocol.Envelope, p protocol.Validator) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var (
		m   *rooms.Member
		err error
	)
	if env.Type == protocol.TypeJoin {
		j := p.(*protocol.Join)
		m, _, err = ss.s.rooms.Join(ctx, j.Token, j.Name, env.ID, ss.c)
	} else {
		m, _, err = ss.s.rooms.Resume(p.(*protocol.Resume).ResumeToken, env.ID, ss.c)
	}
	if err == nil {
		ss.member = m
		return
	}
	code, wire, msg := protocol.CloseBadToken, protocol.ErrBadToken, "this link is not valid (unknown or revoked)"
	switch {
	case errors.Is(err, rooms.ErrTokenExpired):
		code, wire, msg = protocol.CloseTokenExpired, protocol.ErrTokenExpired, "this link has expired"
	case errors.Is(err, rooms.ErrRoomFull):
		code, wire, msg = protocol.CloseRoomFull, protocol.ErrRoomFull, "the room is full"
	case errors.Is(err, rooms.ErrSessionGone):
		code, wire, msg = protocol.CloseSessionGone, protocol.ErrResumeFailed, "session expired; join again"
	case errors.Is(err, rooms.ErrTokenInvalid), errors.Is(err, rooms.ErrWrongScope):
	case errors.Is(err, rooms.ErrClusterDown):
		// Cluster mode with the bus down: the client retries, and gets
		// in once the instances hear each other again.
		ss.s.log.Warn("join refused: cluster link down", "remote", ss.remote)
		code, wire, msg = protocol.CloseShutdown, protocol.ErrInternal, "temporary server error; retrying"
	default:
		// The store failed: the client should retry, not give up.
		ss.s.log.Error("join failed", "err", err, "remote", ss.remote)
		code, wire, msg = protocol.CloseShutdown, protocol.ErrInternal, "temporary server error; retrying"
	}
	ss.c.Send(rooms.Frame{Data: protocol.Encode(protocol.TypeError, env.ID, protocol.Error{Code: wire, Message: msg, Ref: env.ID})})
	ss.c.Close(code, msg)
}

func relaySDP(typ string) func(ss *session, env protocol.Envelope, p protocol.Validator) error {
	return func(ss *session, env protocol.Envelope, p protocol.Validator) error {
		m := p.(*protocol.SDP)
		to := m.To
		m.To, m.From = "", ss.member.ID
		return ss.relay(env, to, protocol.Encode(typ, "", m))
	}
}

func relayCandidate(ss *session, env protocol.Envelope, p protocol.Validator) error {
	m := p.(*protocol.Candidate)
	to := m.To
	m.To, m.From = "", ss.member.ID
	return ss.relay(env, to, protocol.Encode(protocol.TypeCandidate, "", m))
}

func (ss *session) relay(env protocol.Envelope, to string, data []byte) error {
	err := ss.member.Relay(to, rooms.Frame{Data: data})
	if errors.Is(err, rooms.ErrUnknownPeer) {
		return &protocol.ProtocolError{Code: protocol.ErrUnknownPeer, Ref: env.ID, Msg: "no peer " + to + " in your room"}
	}
	return err
}

func chat(ss *session, env protocol.Envelope, p protocol.Validator) error {
	m := p.(*protocol.Chat)
	m.From, m.Name, m.At = ss.member.ID, ss.member.Name, time.Now().UnixMilli()
	data := protocol.Encode(protocol.TypeChat, "", m)
	// The sender gets its own message back with the server time, so every
	// member orders the chat the same way.
	ss.c.Send(rooms.Frame{Data: protocol.Encode(protocol.TypeChat, env.ID, m)})
	return ss.member.Broadcast(rooms.Frame{Data: data})
}

func state(ss *session, _ protocol.Envelope, p protocol.Validator) error {
	return ss.member.SetState(*p.(*protocol.PeerState))
}

func leave(ss *session, _ protocol.Envelope, _ protocol.Validator) error {
	ss.member.Leave()
	ss.c.Close(protocol.CloseLeft, "left")
	return nil
}
