package signaling

import (
	"context"
	"errors"
	"time"

	"crisisroom/access"
	"crisisroom/protocol"
	"crisisroom/rooms"
)

// handlers maps each client message type to its handler once joined. Join
// and resume are handled before, the topics' messages by topicHandlers.
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
	protocol.TypeAdmit:     admit,
	protocol.TypeSFU:       sfu,
	protocol.TypeMode:      chooseMode,
}

// grant is whom a message is decided for, and in which event: a member's
// principal in its room, or a watcher's (a room link's, a staff
// session's) in the room it watches.
type grant struct {
	p     *access.Principal
	room  string
	chain []string // room, then its ancestors (Config.EventChain)
}

// handle is the one authorization point of the socket: every message type
// (with its topic for subscribe, unsubscribe and resync) is looked up in
// access.MessageAction and decided with access.Decide before its handler runs.
// A type without a rule is refused.
func (ss *session) handle(ctx context.Context, env protocol.Envelope, p protocol.Validator) {
	ss.settle()
	switch env.Type {
	case protocol.TypeJoin, protocol.TypeResume:
		if ss.member != nil || ss.waiter != nil {
			ss.fail(&protocol.ProtocolError{Code: protocol.ErrAlreadyJoined, Ref: env.ID, Msg: "this socket is already in a room (or its lobby)"})
			return
		}
		ss.enter(ctx, env, p)
		return
	case protocol.TypeLeave:
		if ss.member == nil && ss.waiter != nil { // a guest gives up waiting
			if m := ss.waiter.End(); m != nil { // admitted meanwhile
				m.Leave()
			}
			ss.waiter = nil
			ss.c.Close(protocol.CloseLeft, "left")
			return
		}
	}
	key, topic := env.Type, ""
	if th := topicHandlers[env.Type]; th != nil {
		topic = topicOf(p)
		key += ":" + topic
	}
	act, ok := access.MessageAction(key)
	if !ok {
		if topic != "" {
			ss.fail(&protocol.ProtocolError{Code: protocol.ErrUnknownTopic, Ref: env.ID, Msg: "unknown topic " + topic})
		} else {
			ss.fail(&protocol.ProtocolError{Code: protocol.ErrForbidden, Ref: env.ID, Msg: env.Type + ": no access rule for this message"})
		}
		return
	}
	g, err := ss.grantFor(ctx, env, p, topic)
	if err != nil {
		ss.report(env, err)
		return
	}
	if g != nil { // nil: unsubscribe or resync of a topic not subscribed, which its handler answers
		if err := access.Decide(g.p, act, g.chain); err != nil {
			ss.fail(&protocol.ProtocolError{Code: protocol.ErrForbidden, Ref: env.ID, Msg: key + ": not allowed for your role"})
			return
		}
	}
	if th := topicHandlers[env.Type]; th != nil {
		ss.report(env, th(ss, ctx, env, p, g))
		return
	}
	h := handlers[env.Type]
	if h == nil { // a rule without a handler: a server bug, not the client's
		ss.fail(&protocol.ProtocolError{Code: protocol.ErrUnknownType, Ref: env.ID, Msg: env.Type + " is not accepted from clients"})
		return
	}
	ss.report(env, h(ss, env, p))
}

// actionOf is a message type's action; a type without one has none,
// which Decide refuses.
func actionOf(typ string) access.Action {
	act, _ := access.MessageAction(typ)
	return act
}

// topicOf is the topic a subscribe, unsubscribe or resync names.
func topicOf(p protocol.Validator) string {
	switch m := p.(type) {
	case *protocol.Subscribe:
		return m.Topic
	case *protocol.Topic:
		return m.Topic
	}
	return ""
}

// grantFor says whom a message is decided for. A member acts as itself.
// A socket that has not joined may only watch topics: with a room link's
// token (the link's principal in its room) or with the staff session it
// was opened with (in the room it names, "main" by default); unsubscribe
// and resync act with the grant of the subscription.
func (ss *session) grantFor(ctx context.Context, env protocol.Envelope, p protocol.Validator, topic string) (*grant, error) {
	if ss.member != nil {
		return ss.mg, nil
	}
	if topic == "" {
		return nil, &protocol.ProtocolError{Code: protocol.ErrNotJoined, Ref: env.ID, Msg: "join a room first"}
	}
	sub, ok := p.(*protocol.Subscribe)
	if !ok {
		return ss.topics[topic], nil
	}
	if sub.Token != "" {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		l, err := ss.s.rooms.CheckRoomToken(ctx, sub.Token)
		if err != nil {
			if errors.Is(err, rooms.ErrTokenInvalid) || errors.Is(err, rooms.ErrTokenExpired) || errors.Is(err, rooms.ErrWrongScope) || errors.Is(err, rooms.ErrLinkUsedUp) {
				return nil, &protocol.ProtocolError{Code: protocol.ErrBadToken, Ref: env.ID, Msg: "join a room or give a valid room token to watch " + topic}
			}
			return nil, err
		}
		role, ok := access.ParseRole(l.Role)
		if !ok {
			return nil, &protocol.ProtocolError{Code: protocol.ErrBadToken, Ref: env.ID, Msg: "this link does not give access to " + topic}
		}
		pr := access.LinkPrincipal(l.ID, l.Label, l.Scope, role, "", l.WatchOnly)
		return &grant{p: pr, room: l.Scope, chain: ss.s.cfg.EventChain(l.Scope)}, nil
	}
	if ss.principal == nil {
		return nil, &protocol.ProtocolError{Code: protocol.ErrBadToken, Ref: env.ID, Msg: "join a room or give a valid room token to watch " + topic}
	}
	room := sub.Room
	if room == "" {
		room = access.MainEvent
	}
	return &grant{p: ss.principal, room: room, chain: ss.s.cfg.EventChain(room)}, nil
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

// settle picks up the seat of a lobby guest admitted meanwhile (the
// admission ran on the admitter's goroutine).
func (ss *session) settle() {
	if ss.member == nil && ss.waiter != nil {
		if m := ss.waiter.Member(); m != nil {
			ss.waiter = nil
			ss.seated(m)
		}
	}
}

// seated makes m the socket's member.
func (ss *session) seated(m *rooms.Member) {
	ss.member = m
	ss.mg = &grant{p: m.Principal, room: m.Room, chain: ss.s.cfg.EventChain(m.Room)}
	ss.c.addKeys(ss.mg.p)
}

// errJoinForbidden: the credential is valid but gives no seat in that room.
var errJoinForbidden = errors.New("not allowed to join this room")

// enter joins or resumes. A refused entry closes the socket with a final
// code: retrying the same token cannot succeed. A join the credential does
// not allow (access.RoomJoin) is answered forbidden and the socket stays
// open: what else it watches goes on.
func (ss *session) enter(ctx context.Context, env protocol.Envelope, p protocol.Validator) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if env.Type == protocol.TypeResume {
		// access.MessageAction: resume is public (its token proves an earlier
		// join; a revocation ends the seat itself), decided like the rest.
		if access.Decide(ss.principal, actionOf(env.Type), nil) != nil {
			ss.fail(&protocol.ProtocolError{Code: protocol.ErrForbidden, Ref: env.ID, Msg: "resume: not allowed"})
			return
		}
		m, _, err := ss.s.rooms.Resume(p.(*protocol.Resume).ResumeToken, env.ID, ss.c)
		if err != nil {
			ss.refuse(env, err)
			return
		}
		ss.seated(m)
		return
	}
	e, err := ss.entry(ctx, env, p.(*protocol.Join))
	if errors.Is(err, errJoinForbidden) {
		ss.fail(&protocol.ProtocolError{Code: protocol.ErrForbidden, Ref: env.ID, Msg: "join: your role does not give a seat in this room"})
		return
	}
	if err != nil {
		ss.refuse(env, err)
		return
	}
	m, w, err := ss.s.rooms.Enter(ctx, e)
	switch {
	case err != nil:
		ss.refuse(env, err)
	case w != nil:
		ss.waiter = w
		ss.c.addKeys(e.Principal)
	default:
		ss.seated(m)
	}
}

// entry resolves a join's credential, decides it (its rule in
// access.MessageAction, in the room's event chain) and says what the seat may
// do.
func (ss *session) entry(ctx context.Context, env protocol.Envelope, j *protocol.Join) (rooms.Entry, error) {
	var (
		pr   *access.Principal
		link *rooms.Link
		room = j.Room
	)
	if j.Token != "" {
		l, p, err := ss.s.rooms.LinkCredential(ctx, j.Token)
		if err != nil {
			return rooms.Entry{}, err
		}
		if room != "" && room != l.Scope {
			return rooms.Entry{}, rooms.ErrWrongScope
		}
		pr, link, room = p, &l, l.Scope
	} else if pr = ss.principal; pr == nil {
		return rooms.Entry{}, rooms.ErrTokenInvalid // no link, no session: nobody
	}
	chain := ss.s.cfg.EventChain(room)
	if access.Decide(pr, actionOf(env.Type), chain) != nil {
		return rooms.Entry{}, errJoinForbidden
	}
	role := ""
	if link != nil {
		role = link.Role // the links' word ("host") that pages know
	} else if r, ok := pr.RoleIn(chain); ok {
		role = string(r)
	}
	return rooms.Entry{Room: room, Name: j.Name, ReqID: env.ID, Peer: ss.c, Principal: pr, Link: link, Role: role,
		Admitter:  access.Decide(pr, access.RoomAdmit, chain) == nil,
		Can:       rooms.Can(pr, chain),
		WatchOnly: access.Decide(pr, access.RoomSend, chain) != nil}, nil
}

// refuse answers a refused entry and closes with its final code.
func (ss *session) refuse(env protocol.Envelope, err error) {
	if !rooms.Refuse(ss.c, env.ID, err) {
		// The store or the cluster link failed: the client retries.
		ss.s.log.Warn("entry failed", "err", err, "remote", ss.remote)
	}
}

func relaySDP(typ string) func(ss *session, env protocol.Envelope, p protocol.Validator) error {
	return func(ss *session, env protocol.Envelope, p protocol.Validator) error {
		m := p.(*protocol.SDP)
		if access.Decide(ss.mg.p, access.RoomSend, ss.mg.chain) != nil {
			kind, err := sendsMedia(m.SDP)
			if err != nil {
				return &protocol.ProtocolError{Code: protocol.ErrInvalid, Ref: env.ID,
					Msg: typ + ": watch-only: " + err.Error() + "; send a well-formed SDP whose audio and video m-lines are recvonly or inactive"}
			}
			if kind != "" {
				return &protocol.ProtocolError{Code: protocol.ErrForbidden, Ref: env.ID,
					Msg: typ + ": watch-only: you may not send " + kind + "; offer or answer its m-line as recvonly or inactive"}
			}
		}
		to := m.To
		m.To, m.From = "", ss.member.ID
		return ss.relay(env, to, protocol.Encode(typ, "", m))
	}
}

// sfu hands a member's negotiation with the server's SFU to its room. A
// watch-only member's attachment receives only: its router refuses an up
// offer.
func sfu(ss *session, env protocol.Envelope, p protocol.Validator) error {
	err := ss.member.SFU(*p.(*protocol.SFU))
	switch {
	case errors.Is(err, rooms.ErrWrongMode):
		return &protocol.ProtocolError{Code: protocol.ErrWrongMode, Ref: env.ID, Msg: "sfu: the room is in mesh mode; negotiate with the other members (offer, answer)"}
	case err != nil && !errors.Is(err, rooms.ErrLeft):
		return &protocol.ProtocolError{Code: protocol.ErrInvalid, Ref: env.ID, Msg: "sfu: " + err.Error()}
	}
	return err
}

// chooseMode is a host's choice of the room's media mode.
func chooseMode(ss *session, env protocol.Envelope, p protocol.Validator) error {
	err := ss.member.ChooseMode(p.(*protocol.Mode).Mode)
	if errors.Is(err, rooms.ErrNoSFU) {
		return &protocol.ProtocolError{Code: protocol.ErrUnavailable, Ref: env.ID, Msg: "mode: this server has no SFU for its rooms (or runs as a cluster): the room stays a mesh"}
	}
	return err
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

// admit lets a lobby guest in or refuses it.
func admit(ss *session, env protocol.Envelope, p protocol.Validator) error {
	a := p.(*protocol.Admit)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := ss.member.Admit(ctx, a.ID, a.Allow)
	if err == nil {
		return nil
	}
	if errors.Is(err, rooms.ErrNoWaiter) {
		return &protocol.ProtocolError{Code: protocol.ErrNotFound, Ref: env.ID, Msg: "admit: no guest " + a.ID + " waits in the lobby"}
	}
	if code, _, msg, refusal := rooms.Refusal(err); refusal {
		return &protocol.ProtocolError{Code: code, Ref: env.ID, Msg: "admit: " + msg}
	}
	return err
}
