package rooms

// Revocation: a link revoked, an API token revoked, a user logged out
// everywhere. Whoever came through that credential loses its seat (or its
// place in the lobby) at once, on every instance, with a final close: its
// resume token dies with the seat.

import (
	"context"
	"slices"
	"time"

	"crisisroom/access"
)

// revokedMemory is how long a revoked credential is remembered here: longer
// than any entry takes between its check and its seat (JoinWait, a store
// call), so that one checked before the revocation is not seated after
// the kick.
const revokedMemory = time.Minute

// RevokeLink revokes a link in the store, then ends every seat and lobby
// place that came through it, here and (cluster mode) on every other
// instance. ErrNotFound for an unknown link.
func (m *Manager) RevokeLink(ctx context.Context, id string) error {
	if err := m.store.RevokeLink(ctx, id, m.cfg.Now()); err != nil {
		return err
	}
	m.KickPrincipal(access.KindLink, id)
	return nil
}

// KickPrincipal ends every seat and lobby place of the principal (kind and
// id as in access.Principal: a link's or token's id, a session's user),
// here and on the other instances, with close code 4508 after an error
// "revoked". kind may also be access.KindLogin: one session of a user.
// It returns how many this instance ended. Links, tokens and logins are
// remembered for a while so that an entry in flight cannot slip
// through; a user's sessions are not (the user may log in again at once).
func (m *Manager) KickPrincipal(kind, id string) int {
	m.mu.Lock()
	kicked := m.kickLocked(kind, id)
	m.announceLocked(event{Kind: evKick, Key: kind, ID: id})
	m.mu.Unlock()
	m.afterKick(kind, id, kicked)
	return len(kicked)
}

// WatchKicks registers fn, called (outside the rooms' lock) with every
// principal kicked, here or announced by another instance: signaling
// closes the sockets that watch the map or the log with it.
func (m *Manager) WatchKicks(fn func(kind, id string)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kickHooks = append(m.kickHooks, fn)
}

type kickedOne struct{ room, name string }

// kickLocked ends this instance's seats and lobby places of a principal.
func (m *Manager) kickLocked(kind, id string) []kickedOne {
	now := m.cfg.Now()
	if kind != access.KindSession {
		for k, until := range m.revoked {
			if now.After(until) {
				delete(m.revoked, k)
			}
		}
		m.revoked[access.Key(kind, id)] = now.Add(revokedMemory)
	}
	// A principal answers to each of its keys: a session's user, or that
	// one login of the user.
	key := access.Key(kind, id)
	match := func(p *access.Principal) bool { return p != nil && slices.Contains(p.Keys(), key) }
	var out []kickedOne
	for _, r := range m.rooms {
		for _, o := range r.members { // removeLocked deletes from the map: fine while ranging
			if o.inst != "" || o.gone || !match(o.Principal) {
				continue
			}
			if o.peer != nil {
				Refuse(o.peer, "", ErrRevoked)
			}
			m.removeLocked(o)
			out = append(out, kickedOne{r.name, o.Name})
		}
		changed := false
		for wid, w := range r.lobby {
			if !match(w.e.Principal) {
				continue
			}
			delete(r.lobby, wid)
			w.state = waitGone
			Refuse(w.e.Peer, w.e.ReqID, ErrRevoked)
			changed = true
			out = append(out, kickedOne{r.name, w.Name})
		}
		if changed {
			m.lobbyChangedLocked(r)
		}
	}
	if len(out) > 0 {
		m.log.Info("kicked for a revoked credential", "kind", kind, "id", id, "count", len(out))
	}
	return out
}

// afterKick runs the hooks, outside the lock.
func (m *Manager) afterKick(kind, id string, kicked []kickedOne) {
	m.mu.Lock()
	hooks := m.kickHooks
	m.mu.Unlock()
	for _, h := range hooks {
		h(kind, id)
	}
	if m.cfg.OnKicked != nil {
		for _, k := range kicked {
			m.cfg.OnKicked(k.room, k.name, kind, id)
		}
	}
}

// revokedLocked tells whether p was revoked lately.
func (m *Manager) revokedLocked(p *access.Principal) bool {
	if p == nil || len(m.revoked) == 0 {
		return false
	}
	for _, k := range p.Keys() {
		if until, ok := m.revoked[k]; ok && m.cfg.Now().Before(until) {
			return true
		}
	}
	return false
}

// WatchRevocations ends, every interval until ctx ends, the seats (and
// lobby places) of this instance whose link the store says is revoked
// although nobody told this instance: a revocation made by a command-line
// tool on the same database, or announced by another instance on a bus
// that lost it (Redis pub/sub is at-most-once). The rooms' links are read
// once per room with such seats.
func (m *Manager) WatchRevocations(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, id := range m.revokedUnheard(ctx) {
			m.log.Info("link found revoked in the store: ending its seats", "link", id)
			m.KickPrincipal(access.KindLink, id)
		}
	}
}

// revokedUnheard returns the links seated here that the store has revoked.
func (m *Manager) revokedUnheard(ctx context.Context) []string {
	m.mu.Lock()
	seated := map[string]map[string]bool{} // room → link ids
	note := func(room string, p *access.Principal) {
		if p == nil || p.Kind != access.KindLink {
			return
		}
		if seated[room] == nil {
			seated[room] = map[string]bool{}
		}
		seated[room][p.ID] = true
	}
	for name, r := range m.rooms {
		for _, o := range r.members {
			if o.inst == "" && !o.gone {
				note(name, o.Principal)
			}
		}
		for _, w := range r.lobby {
			note(name, w.e.Principal)
		}
	}
	m.mu.Unlock()
	var out []string
	for room, ids := range seated {
		ls, err := m.store.Links(ctx, room)
		if err != nil {
			m.log.Warn("revocation check: links not read", "room", room, "err", err)
			continue
		}
		for _, l := range ls {
			if ids[l.ID] && !l.RevokedAt.IsZero() {
				out = append(out, l.ID)
			}
		}
	}
	return out
}
