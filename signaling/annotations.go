package signaling

import (
	"context"
	"errors"
	"time"

	"crisisroom/livemap"
	"crisisroom/protocol"
)

// annotate creates, updates or deletes one of the member's room's map
// annotations; livemap stores it and shows it to the room's map watchers.
func annotate(ss *session, env protocol.Envelope, p protocol.Validator) error {
	svc := ss.s.cfg.Annotations
	if svc == nil {
		return &protocol.ProtocolError{Code: protocol.ErrUnavailable, Ref: env.ID, Msg: "annotations are off on this server"}
	}
	m := p.(*protocol.Annotate)
	in := m.Annotation
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := svc.Apply(ctx, livemap.Change{
		Room: ss.member.Room,
		By:   livemap.Author{ID: ss.member.ID, Name: ss.member.Name, Role: ss.member.Role},
		Op:   m.Op,
		Item: livemap.Annotation{ID: in.ID, Kind: in.Kind, Coords: in.Coords, Label: in.Label, Color: in.Color},
	}, ss.c, env.ID)
	return annotationErr(env, err)
}

// annotationErr gives livemap's refusals their wire codes; anything else
// (the store failing) is reported as internal.
func annotationErr(env protocol.Envelope, err error) error {
	var ve *livemap.ValidationError
	code := ""
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ve) && ve.TooLarge:
		code = protocol.ErrTooLarge
	case errors.As(err, &ve):
		code = protocol.ErrInvalid
	case errors.Is(err, livemap.ErrNotFound):
		code = protocol.ErrNotFound
	case errors.Is(err, livemap.ErrTooMany):
		code = protocol.ErrTooMany
	default:
		return err
	}
	return &protocol.ProtocolError{Code: code, Ref: env.ID, Msg: "annotate: " + err.Error()}
}

// watchAnnotations follows a map subscription with the room's annotations.
// If they cannot be loaded the subscription is undone, so that the client's
// retry starts clean.
func (ss *session) watchAnnotations(ctx context.Context, room string) error {
	if ss.s.cfg.Annotations == nil {
		return nil
	}
	if err := ss.s.cfg.Annotations.Watch(ctx, room, ss.c); err != nil {
		ss.stopWatching()
		return err
	}
	return nil
}

func (ss *session) unwatchAnnotations() {
	if ss.s.cfg.Annotations != nil {
		ss.s.cfg.Annotations.Unwatch(ss.c)
	}
}
