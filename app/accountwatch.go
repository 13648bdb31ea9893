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
	for _, p := range a.sig.StaffPrincipals() {
		kind, id, why := a.accountShrank(ctx, p)
		if kind == "" {
			continue
		}
		a.log.Info("account changed in the store: ending its sockets", "user", p.UserID, "why", why)
		n := a.Rooms.KickPrincipal(kind, id)
		a.audit(ctx, access.AuditEntry{Actor: "system", Action: "member_kicked", Target: p.Name,
			Detail: why + " (" + kind + "): " + strconv.Itoa(n) + " seats ended"})
	}
}

// accountShrank says which sockets to close for a staff principal, if
// any: one login's (KindLogin) when its session is gone, every socket of
// the account (KindSession) when the account is disabled or gone, or when
// it lost a role it held.
func (a *App) accountShrank(ctx context.Context, p *access.Principal) (kind, id, why string) {
	st := a.be.Store.Access()
	if p.Kind == access.KindSession && len(p.SessionHash) > 0 {
		s, err := st.SessionByHash(ctx, p.SessionHash)
		if errors.Is(err, access.ErrNotFound) || err == nil && !time.Now().Before(s.ExpiresAt) {
			return access.KindLogin, p.Session, "session ended"
		}
		if err != nil {
			return "", "", "" // the store is down: ask again next time
		}
	}
	u, err := st.UserByID(ctx, p.UserID)
	if errors.Is(err, access.ErrNotFound) || err == nil && !u.DisabledAt.IsZero() {
		return access.KindSession, p.UserID, "account disabled"
	}
	if err != nil || p.Kind != access.KindSession {
		return "", "", ""
	}
	ms, err := st.Memberships(ctx, u.ID)
	if err != nil {
		return "", "", ""
	}
	if rolesShrank(p, access.UserPrincipal(u, ms), a.EventChain) {
		return access.KindSession, p.UserID, "role lowered"
	}
	return "", "", ""
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
