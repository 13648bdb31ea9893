package app

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"time"

	"crisisroom/access"
)

// checkAccounts closes the sockets of staff logins whose rights shrank
// behind this instance's back: the terminal's `admin disable`, `admin
// passwd` and `admin member` write the store only, and a kick announced
// on the cluster bus may be lost (Redis pub/sub is at-most-once). New
// runs it every revocationCheck: it reads again the account of each login
// an open socket acts with. The API's own changes close sockets at once;
// this is the net under them.
func (a *App) checkAccounts(ctx context.Context) {
	byUser := map[string][]*access.Principal{}
	for _, p := range a.sig.StaffPrincipals() {
		byUser[p.UserID] = append(byUser[p.UserID], p)
	}
	for userID, logins := range byUser {
		for _, k := range a.accountShrank(ctx, userID, logins) {
			a.log.Info("account changed in the store: ending its sockets", "user", userID, "why", k.why)
			n := a.Rooms.KickPrincipal(k.kind, k.id)
			a.audit(ctx, access.AuditEntry{Actor: "system", Action: "member_kicked", Target: logins[0].Name,
				Detail: k.why + " (" + k.kind + "): " + strconv.Itoa(n) + " seats ended"})
			if k.kind == access.KindSession {
				break // every socket of the account is closed
			}
		}
	}
}

// kick names the sockets to close and why.
type kick struct{ kind, id, why string }

// accountShrank says which sockets of one account's open logins to close:
// a login whose session is gone (KindLogin), or every socket of the
// account (KindSession) when it is disabled or gone, or lost a role one of
// its logins held. The account is read once for all its logins; a store
// that does not answer closes nothing (asked again next time).
func (a *App) accountShrank(ctx context.Context, userID string, logins []*access.Principal) []kick {
	st := a.be.Store.Access()
	u, err := st.UserByID(ctx, userID)
	if errors.Is(err, access.ErrNotFound) || err == nil && !u.DisabledAt.IsZero() {
		return []kick{{access.KindSession, userID, "account disabled"}}
	}
	if err != nil {
		return nil
	}
	ms, err := st.Memberships(ctx, userID)
	if err != nil {
		return nil
	}
	now := access.UserPrincipal(u, ms)
	var out []kick
	for _, p := range logins {
		if rolesShrank(p, now, a.EventChain) {
			return []kick{{access.KindSession, userID, "role lowered"}}
		}
		s, err := st.SessionByHash(ctx, p.SessionHash)
		if errors.Is(err, access.ErrNotFound) || err == nil && !time.Now().Before(s.ExpiresAt) {
			out = append(out, kick{access.KindLogin, p.Session, "session ended"})
		}
	}
	return out
}

// rolesShrank says whether now holds less than was held somewhere: a role
// gone or lesser in an event either names (inherited roles included).
func rolesShrank(was, now *access.Principal, chainOf func(string) []string) bool {
	if was.Global == access.Admin && now.Global != access.Admin {
		return true
	}
	events := maps.Clone(was.Roles)
	maps.Copy(events, now.Roles)
	for ev := range events {
		chain := chainOf(ev)
		before, had := was.RoleIn(chain)
		if !had {
			continue
		}
		after, has := now.RoleIn(chain)
		if !has || after != before && access.Lesser(before, after) != before {
			return true
		}
	}
	return false
}
