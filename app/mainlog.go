package app

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"crisisroom/access"
	"crisisroom/declarations"
	"crisisroom/livemap"
	"crisisroom/mainlog"
	"crisisroom/rooms"
	"crisisroom/signaling"
)

// subEventLinkTTL is the lifetime of the links minted for sub-events'
// rooms (as long as the standing room's first links).
const subEventLinkTTL = 30 * 24 * time.Hour

// setupMainlog starts the main courante: the standing room's event, the
// live feed on the room's socket (topic "log"), the alert levels logged
// by the system and, in cluster mode, the other instances' changes.
func (a *App) setupMainlog(ctx context.Context, sig *signaling.Config) error {
	var known func(string) bool
	if a.Territory != nil {
		known = func(code string) bool { _, ok := a.Territory.Lookup(code); return ok }
	}
	svc, err := mainlog.New(ctx, mainlog.Config{
		Store:            a.be.Store.Mainlog(),
		Rooms:            logRooms{a},
		KnownCommune:     known,
		AnnotationExists: annotationExists(sig.Annotations),
		Publisher:        timedPublisher{a.be.Bus, a.metrics}, // every bus publication is in crisisroom_bus_publish_seconds
		Log:              a.log.With("component", "mainlog"),
	})
	if err != nil {
		return err
	}
	if err := svc.EnsureRoot(ctx, MainRoom, "Salle de crise"); err != nil {
		return fmt.Errorf("main courante of room %s: %w", MainRoom, err)
	}
	bg, cancel := context.WithCancel(context.Background())
	if a.cfg.DatabaseURL != "" || a.cfg.RedisURL != "" { // other instances write too
		sub, err := a.be.Bus.Subscribe(bg, mainlog.TopicChanges)
		if err != nil {
			cancel()
			return err
		}
		go svc.Follow(bg, sub)
	}
	if a.Decl != nil {
		sub, err := a.be.Bus.Subscribe(bg, declarations.TopicAlert)
		if err != nil {
			cancel()
			return err
		}
		go svc.FollowAlerts(bg, sub, a.communeName)
	}
	a.Mainlog, a.stopMainlog = svc, cancel
	sig.Log = svc.Hub()
	return nil
}

func annotationExists(ann *livemap.Annotations) func(ctx context.Context, room, id string) (bool, error) {
	if ann == nil {
		return nil
	}
	return func(ctx context.Context, room, id string) (bool, error) {
		list, err := ann.List(ctx, room)
		for _, it := range list {
			if it.ID == id {
				return true, nil
			}
		}
		return false, err
	}
}

// mountMainlog registers the main courante's API (under /api/v1) and its
// printable page.
func (a *App) mountMainlog(r chi.Router) {
	loc, _ := time.LoadLocation(a.cfg.Timezone) // checked by Validate
	api := &mainlog.API{Svc: a.Mainlog, Auth: a.logActor, Loc: loc, Log: a.log.With("component", "mainlog")}
	api.Mount(r)
}

// logActor is the main courante's view of the request's principal
// (resolved and authorized by the gate).
func (a *App) logActor(r *http.Request) (mainlog.Actor, error) {
	p := access.FromContext(r.Context())
	if p == nil {
		return mainlog.Actor{}, mainlog.ErrUnauthenticated
	}
	return mainlog.Actor{ID: p.ID, Label: p.Name, P: p}, nil
}

// logRooms gives the main courante the rooms of its sub-events.
type logRooms struct{ a *App }

func (r logRooms) CreateRoom(ctx context.Context, name, title string) (bool, error) {
	return r.a.be.Store.CreateRoom(ctx, rooms.RoomInfo{Name: name, Title: title, CreatedAt: time.Now().UTC()})
}

func (r logRooms) RoomLink(ctx context.Context, room, role, label string) (string, error) {
	url, err := r.a.NewRoomLink(ctx, room, role, label, subEventLinkTTL)
	if err == nil {
		actor := "system"
		if p := access.FromContext(ctx); p != nil {
			actor = p.Name
		}
		r.a.audit(ctx, access.AuditEntry{Actor: actor, Action: "link_created", Target: room, Detail: role + ": " + label})
	}
	return url, err
}
