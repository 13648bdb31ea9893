package app

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"crisisroom/access"
)

// Ended is what ending an account's access ended.
type Ended struct {
	Sessions int      `json:"sessions"`
	Tokens   []string `json:"tokens"` // the IDs of the API tokens revoked
}

// EndAccess logs a user out everywhere and revokes its live API tokens:
// what a password reset and a disabled account both mean, since either
// is what one does when an account may be in someone else's hands. The
// caller closes the account's sockets if it can (App.kickAccount) and
// audits. A failure half-way leaves what was done done.
func EndAccess(ctx context.Context, st access.Store, userID string, now time.Time) (Ended, error) {
	var out Ended
	ts, err := st.Tokens(ctx)
	if err != nil {
		return out, fmt.Errorf("list tokens: %w", err)
	}
	for _, t := range ts {
		if t.UserID != userID || !t.RevokedAt.IsZero() || !now.Before(t.ExpiresAt) {
			continue
		}
		if err := st.RevokeToken(ctx, t.ID, now); err != nil {
			return out, fmt.Errorf("revoke token %s: %w", t.ID, err)
		}
		out.Tokens = append(out.Tokens, t.ID)
	}
	if out.Sessions, err = st.DeleteUserSessions(ctx, userID); err != nil {
		return out, fmt.Errorf("end sessions: %w", err)
	}
	return out, nil
}

// DisableAccount disables an account (logins refused), then ends what it
// holds (EndAccess). Disabling comes first: from then on, its sessions and
// tokens are refused even before they are deleted or revoked.
func DisableAccount(ctx context.Context, st access.Store, userID string, now time.Time) (Ended, error) {
	if err := st.SetDisabled(ctx, userID, now); err != nil {
		return Ended{}, err
	}
	return EndAccess(ctx, st, userID, now)
}

// kickAccount closes, here and on the other instances, the sockets of a
// user's sessions (API tokens never hold a socket: they are refused at
// their next request). It returns how many seats this instance ended.
func (a *App) kickAccount(userID string) int {
	return a.Rooms.KickPrincipal(access.KindSession, userID)
}

// disableUser disables a staff account and ends at once everything it
// holds open: sessions, API tokens, sockets.
func (a *App) disableUser(w http.ResponseWriter, r *http.Request) {
	u, ok := a.userOfPath(w, r)
	if !ok {
		return
	}
	if p := access.FromContext(r.Context()); p != nil && p.UserID == u.ID {
		// An admin locked out of their own account needs the terminal.
		badRequest(w, "Vous ne pouvez pas désactiver votre propre compte.")
		return
	}
	ended, err := DisableAccount(r.Context(), a.be.Store.Access(), u.ID, time.Now().UTC())
	if err != nil {
		a.unavailable(w, "disable user", err)
		return
	}
	kicked := a.kickAccount(u.ID)
	a.auditReq(r, "user_disabled", u.Login, fmt.Sprintf("%d sessions ended, %d tokens revoked, %d seats ended",
		ended.Sessions, len(ended.Tokens), kicked))
	ended.Tokens = nonNil(ended.Tokens)
	writeJSON(w, http.StatusOK, ended)
}
