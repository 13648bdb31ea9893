package signaling

import (
	"context"
	"time"

	"crisisroom/access"
	"crisisroom/livemap"
	"crisisroom/protocol"
)

// LogFeed is the main courante's live stream (topic "log"): a socket gets
// the changes of its room's event and of the sub-events below it that its
// principal may read, each decided for that sub-event. mainlog.Hub
// implements it.
type LogFeed interface {
	Watch(ctx context.Context, room string, p *access.Principal, s livemap.Subscriber) error
	Unwatch(s livemap.Subscriber)
	Resync(s livemap.Subscriber)
}

// logTopic handles subscribe, unsubscribe and resync of the topic "log";
// handled is false for the other topics.
func logTopic(ss *session, ctx context.Context, env protocol.Envelope, p protocol.Validator, g *grant) (handled bool, err error) {
	if topicOf(p) != protocol.TopicLog {
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
		ss.watchingLog = true
		ss.watchAs(protocol.TopicLog, g)
		return true, f.Watch(ctx, g.room, g.p, ss.c)
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

// stopLog ends the socket's log watch, if any.
func (ss *session) stopLog() {
	if ss.watchingLog && ss.s.cfg.Log != nil {
		ss.s.cfg.Log.Unwatch(ss.c)
	}
	ss.watchingLog = false
	delete(ss.topics, protocol.TopicLog)
}
