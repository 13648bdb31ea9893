package signaling

import (
	"context"
	"errors"
	"time"

	"crisisroom/livemap"
	"crisisroom/protocol"
	"crisisroom/rooms"
)

// LogFeed is the main courante's live stream (topic "log"): a socket gets
// the changes of its room's event and of the sub-events below it.
// mainlog.Hub implements it.
type LogFeed interface {
	Watch(ctx context.Context, room string, s livemap.Subscriber) error
	Unwatch(s livemap.Subscriber)
	Resync(s livemap.Subscriber)
}

// logTopic handles subscribe, unsubscribe and resync of the topic "log";
// handled is false for the other topics.
func logTopic(ss *session, ctx context.Context, env protocol.Envelope, p protocol.Validator) (handled bool, err error) {
	var topic, token string
	switch m := p.(type) {
	case *protocol.Subscribe:
		topic, token = m.Topic, m.Token
	case *protocol.Topic:
		topic = m.Topic
	}
	if topic != protocol.TopicLog {
		return false, nil
	}
	f := ss.s.cfg.Log
	if f == nil {
		return true, &protocol.ProtocolError{Code: protocol.ErrUnavailable, Ref: env.ID, Msg: "the main courante is off on this server"}
	}
	switch env.Type {
	case protocol.TypeSubscribe:
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		room, err := ss.roomOf(ctx, env, token)
		if err != nil {
			return true, err
		}
		ss.watchingLog = true
		return true, f.Watch(ctx, room, ss.c)
	case protocol.TypeUnsubscribe:
		ss.stopLog()
	case protocol.TypeResync:
		if !ss.watchingLog {
			return true, &protocol.ProtocolError{Code: protocol.ErrInvalid, Ref: env.ID, Msg: "subscribe first"}
		}
		f.Resync(ss.c)
	}
	return true, nil
}

// roomOf is the member's room, or the room of the token a socket that has
// not joined gives (a wall screen).
func (ss *session) roomOf(ctx context.Context, env protocol.Envelope, token string) (string, error) {
	if ss.member != nil {
		return ss.member.Room, nil
	}
	l, err := ss.s.rooms.CheckRoomToken(ctx, token)
	if err != nil {
		if errors.Is(err, rooms.ErrTokenInvalid) || errors.Is(err, rooms.ErrTokenExpired) || errors.Is(err, rooms.ErrWrongScope) {
			return "", &protocol.ProtocolError{Code: protocol.ErrBadToken, Ref: env.ID, Msg: "join a room or give a valid room token to watch its log"}
		}
		return "", err
	}
	return l.Scope, nil
}

// stopLog ends the socket's log watch, if any.
func (ss *session) stopLog() {
	if ss.watchingLog && ss.s.cfg.Log != nil {
		ss.s.cfg.Log.Unwatch(ss.c)
	}
	ss.watchingLog = false
}
