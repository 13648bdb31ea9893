package signaling

import (
	"context"
	"errors"

	"crisisroom/livemap"
	"crisisroom/protocol"
	"crisisroom/rooms"
)

// Feed is a stream a socket may subscribe to on its one connection (the
// live map). livemap.Hub implements it.
type Feed interface {
	Subscribe(s livemap.Subscriber)
	Unsubscribe(s livemap.Subscriber)
	Resync(s livemap.Subscriber)
}

// topicHandlers run with or without a joined member: a wall screen may
// watch the map with a room token and no camera. handle has decided the
// message with g (nil for unsubscribe and resync of a topic the socket
// does not watch).
var topicHandlers = map[string]func(ss *session, ctx context.Context, env protocol.Envelope, p protocol.Validator, g *grant) error{
	protocol.TypeSubscribe:   subscribe,
	protocol.TypeUnsubscribe: unsubscribe,
	protocol.TypeResync:      resync,
}

func (ss *session) feed(env protocol.Envelope, topic string) (Feed, error) {
	if topic != protocol.TopicMap {
		return nil, &protocol.ProtocolError{Code: protocol.ErrUnknownTopic, Ref: env.ID, Msg: "unknown topic " + topic}
	}
	if ss.s.cfg.Map == nil {
		return nil, &protocol.ProtocolError{Code: protocol.ErrUnavailable, Ref: env.ID, Msg: "the map is off: the server has no territory"}
	}
	return ss.s.cfg.Map, nil
}

func subscribe(ss *session, ctx context.Context, env protocol.Envelope, p protocol.Validator, g *grant) error {
	if handled, err := logTopic(ss, ctx, env, p, g); handled {
		return err
	}
	sub := p.(*protocol.Subscribe)
	f, err := ss.feed(env, sub.Topic)
	if err != nil {
		return err
	}
	if ss.watching {
		return nil
	}
	ss.watching = true
	ss.watchAs(protocol.TopicMap, g)
	f.Subscribe(ss.c)
	// The annotations are the room's the socket watches as.
	return ss.watchAnnotations(ctx, g.room)
}

func unsubscribe(ss *session, _ context.Context, env protocol.Envelope, p protocol.Validator, g *grant) error {
	if handled, err := logTopic(ss, context.Background(), env, p, g); handled {
		return err
	}
	f, err := ss.feed(env, p.(*protocol.Topic).Topic)
	if err != nil {
		return err
	}
	if ss.watching {
		ss.watching = false
		delete(ss.topics, protocol.TopicMap)
		f.Unsubscribe(ss.c)
		ss.unwatchAnnotations()
	}
	return nil
}

func resync(ss *session, _ context.Context, env protocol.Envelope, p protocol.Validator, g *grant) error {
	if handled, err := logTopic(ss, context.Background(), env, p, g); handled {
		return err
	}
	f, err := ss.feed(env, p.(*protocol.Topic).Topic)
	if err != nil {
		return err
	}
	if !ss.watching {
		return &protocol.ProtocolError{Code: protocol.ErrInvalid, Ref: env.ID, Msg: "subscribe first"}
	}
	f.Resync(ss.c)
	return nil
}

// watchAs records the grant a topic is watched with: unsubscribe and
// resync act with it, and revoking its principal closes the socket.
func (ss *session) watchAs(topic string, g *grant) {
	if ss.topics == nil {
		ss.topics = map[string]*grant{}
	}
	ss.topics[topic] = g
	ss.c.addKeys(g.p)
}

// stopWatching is called when the socket ends.
func (ss *session) stopWatching() {
	if ss.watching && ss.s.cfg.Map != nil {
		ss.s.cfg.Map.Unsubscribe(ss.c)
		ss.unwatchAnnotations()
		ss.watching = false
	}
}

func presenter(ss *session, env protocol.Envelope, p protocol.Validator) error {
	return roomErr(env, ss.member.SetPresenter(p.(*protocol.Presenter).Take))
}

func mapView(ss *session, env protocol.Envelope, p protocol.Validator) error {
	return roomErr(env, ss.member.SetView(*p.(*protocol.MapView)))
}

// roomErr answers the rooms' invariants that are not rights: only the
// current presenter sends its view.
func roomErr(env protocol.Envelope, err error) error {
	if errors.Is(err, rooms.ErrNotPresenter) {
		return &protocol.ProtocolError{Code: protocol.ErrForbidden, Ref: env.ID, Msg: env.Type + ": only the current presenter leads the map"}
	}
	return err
}
