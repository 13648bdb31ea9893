package app

import (
	"context"
	"fmt"
	"time"

	"crisisroom/access"
	"crisisroom/rooms"
)

// TokenGrant asks for an API token: for whom, which role, in which event
// (Chain: the event and its ancestors; nil for every event), for how long.
// The front ends (the API, `crisisroom tokens`) check their own input.
type TokenGrant struct {
	User  access.User
	Role  access.Role
	Event string
	Chain []string
	Label string
	TTL   time.Duration
}

// MintToken stores a new API token after checking that it carries no more
// than its user holds (access.CheckTokenGrant: an error wrapping
// access.ErrForbidden), and writes the audit entry under actor. A token
// whose audit entry could not be written is withdrawn: nobody may hold a
// token nobody can trace. The secret is returned this once.
func MintToken(ctx context.Context, st access.Store, g TokenGrant, actor, ip string, now time.Time) (string, access.Token, error) {
	ms, err := st.Memberships(ctx, g.User.ID)
	if err != nil {
		return "", access.Token{}, fmt.Errorf("memberships: %w", err)
	}
	if err := access.CheckTokenGrant(g.User, ms, g.Role, g.Chain); err != nil {
		return "", access.Token{}, err
	}
	plain, hash := rooms.NewSecret()
	now = now.UTC()
	t := access.Token{ID: rooms.NewID(), Hash: hash, UserID: g.User.ID, Role: g.Role, Event: g.Event, Label: g.Label,
		CreatedAt: now, ExpiresAt: now.Add(g.TTL)}
	if err := st.CreateToken(ctx, t); err != nil {
		return "", access.Token{}, err
	}
	event := t.Event
	if event == "" {
		event = "every event"
	}
	if err := st.Audit(ctx, access.AuditEntry{At: now, Actor: actor, Action: "token_created", Target: t.ID, IP: ip,
		Detail: fmt.Sprintf("user=%s role=%s event=%s expires=%s label=%q", g.User.Login, t.Role, event, t.ExpiresAt.Format(time.RFC3339), t.Label)}); err != nil {
		_ = st.RevokeToken(ctx, t.ID, now)
		return "", access.Token{}, fmt.Errorf("the audit log failed, token withdrawn: %w", err)
	}
	return plain, t, nil
}
