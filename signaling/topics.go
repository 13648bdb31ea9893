package signaling

import (
	"context"
	"errors"
	"time"

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
// watch the map with a room token and no camera.
var topicHandlers = map[string]func(ss *session, ctx context.Context, env protocol.Envelope, p protocol.Validator) error{
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

func subscribe(ss *session, ctx context.Context, env protocol.Envelope, p protocol.Validator) error {
	if handled, err := logTopic(ss, ctx, env, p); handled {
		return err
	}
	sub := p.(*protocol.Subscribe)
	f, err := ss.feed(env, sub.Topic)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var room string // whose annotations the socket gets
	if ss.member != nil {
		room = ss.member.Room
	} else {
		l, err := ss.s.rooms.CheckRoomToken(ctx, sub.Token)
		if err != nil {
			if errors.Is(err, rooms.ErrTokenInvalid) || errors.Is(err, rooms.ErrTokenExpired) || errors.Is(err, rooms.ErrWrongScope) {
				return &protocol.ProtocolError{Code: protocol.ErrBadToken, Ref: env.ID, Msg: "join a room or give a valid room token to watch the map"}
			}
			return err
		}
		room = l.Scope
	}
	if !ss.watching {
		ss.watching = true
		f.Subscribe(ss.c)
		return ss.watchAnnotations(ctx, room)
	}
	return nil
}

func unsubscribe(ss *session, _ context.Context, env protocol.Envelope, p protocol.Validator) error {
	if handled, err := logTopic(ss, context.Background(), env, p); handled {
		return err
	}
	f, err := ss.feed(env, p.(*protocol.Topic).Topic)
	if err != nil {
		return err
	}
	if ss.watching {
		ss.watching = false
		f.Unsubscribe(ss.c)
		ss.unwatchAnnotations()
	}
	return nil
}

func resync(ss *session, _ context.Context, env protocol.Envelope, p protocol.Validator) error {
	if handled, err := logTopic(ss, context.Background(), env, p); handled {
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

func roomErr(env protocol.Envelope, err error) error {
	if errors.Is(err, rooms.ErrForbidden) {
		return &protocol.ProtocolError{Code: protocol.ErrForbidden, Ref: env.ID, Msg: env.Type + ": not allowed for your role"}
	}
	return err
}
