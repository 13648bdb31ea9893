package mainlog

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"crisisroom/bus"
	"crisisroom/declarations"
)

// levelNames are the alert levels as the log writes them.
var levelNames = map[declarations.Level]string{
	declarations.LevelNormal:    "normal (vert)",
	declarations.LevelVigilance: "vigilance (jaune)",
	declarations.LevelAlerte:    "alerte (orange)",
	declarations.LevelCrise:     "crise (rouge)",
}

// FollowAlerts logs every alert-level change the declarations service
// publishes (declarations.TopicAlert) in each root event, as a system
// entry, until sub ends. name names a commune. Each change is logged once
// even when every instance of a cluster receives it: its key is the change
// itself.
func (s *Service) FollowAlerts(ctx context.Context, sub bus.Subscription, name func(code string) string) {
	for {
		select {
		case msg, ok := <-sub.C():
			if !ok {
				return
			}
			var ev declarations.AlertEvent
			if err := json.Unmarshal(msg, &ev); err != nil {
				s.log.Warn("bad alert event on the bus", "err", err)
				continue
			}
			s.logAlert(ctx, ev, name)
		case <-sub.Lost():
			// At-most-once bus: a lost level change is in the server log
			// and the morning report, not here.
			s.log.Warn("alert events may have been lost on the bus: the main courante may miss a level change")
		case <-ctx.Done():
			return
		}
	}
}

func (s *Service) logAlert(ctx context.Context, ev declarations.AlertEvent, name func(string) string) {
	where := "du département"
	if ev.Commune != "" {
		n := ev.Commune
		if name != nil && name(ev.Commune) != "" {
			n = name(ev.Commune) + " (" + ev.Commune + ")"
		}
		where = "de " + n
	}
	text := fmt.Sprintf("Niveau d'alerte %s : %s → %s", where, levelName(ev.From), levelName(ev.To))
	key := fmt.Sprintf("alert:%s:%d:%d:%d", ev.Commune, ev.From, ev.To, ev.At.UnixMilli())
	for _, e := range s.hub.all() {
		if e.Parent != "" {
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if _, err := s.System(wctx, e.Slug, text, ev.Commune, key); err != nil {
			s.log.Error("log alert level change", "event", e.Slug, "err", err)
		}
		cancel()
	}
}

func levelName(l declarations.Level) string {
	if n, ok := levelNames[l]; ok {
		return n
	}
	return fmt.Sprint(int(l))
}
