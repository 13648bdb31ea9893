package rooms

import "time"

// A link's expiry ends the stay, not only the entry: a partner invited
// "until 18:00" leaves the room at 18:00, with the same final screen as a
// late arrival (error token_expired, close 4501: do not reconnect). The
// member's socket may be away (resume window) or its seat remote: only
// the instance holding the seat ends it, and tells the others as for any
// leave.

// armExpiryLocked ends mem's seat when its link expires.
func (m *Manager) armExpiryLocked(mem *Member) {
	if mem.expires.IsZero() { // a staff session's seat; remote seats have none either
		return
	}
	// The link's clock: the one that let it in (Config.Now).
	mem.expiry = time.AfterFunc(mem.expires.Sub(m.cfg.Now()), func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if mem.gone {
			return
		}
		m.log.Info("link expired: seat ended", "room", mem.Room, "member", mem.ID, "link", mem.LinkID)
		if mem.peer != nil {
			Refuse(mem.peer, "", ErrTokenExpired)
		}
		m.removeLocked(mem)
	})
}

// disarmExpiryLocked stops mem's expiry timer (the seat ends otherwise).
func disarmExpiryLocked(mem *Member) {
	if mem.expiry != nil {
		mem.expiry.Stop()
		mem.expiry = nil
	}
}
