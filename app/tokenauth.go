package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"crisisroom/access"
)

// tokenPrincipal resolves an API token by its hash. Its rights are worked
// out again at each use from its user's current account: a demotion, a
// membership removed or the account disabled limit or refuse the token
// from the next request, without a cache to outlive them.
func (a *App) tokenPrincipal(ctx context.Context, hash []byte) (*access.Principal, error) {
	st := a.be.Store.Access()
	t, err := st.TokenByHash(ctx, hash)
	if errors.Is(err, access.ErrNotFound) {
		return nil, access.ErrUnauthenticated
	}
	if err != nil {
		return nil, fmt.Errorf("look up token: %w", err)
	}
	if !t.RevokedAt.IsZero() || !time.Now().Before(t.ExpiresAt) {
		return nil, access.ErrUnauthenticated
	}
	u, err := st.UserByID(ctx, t.UserID)
	if errors.Is(err, access.ErrNotFound) {
		return nil, access.ErrUnauthenticated
	}
	if err != nil {
		return nil, fmt.Errorf("look up token's user: %w", err)
	}
	ms, err := st.Memberships(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("look up token's user's memberships: %w", err)
	}
	p, ok := access.TokenPrincipal(t, u, ms, a.EventChain)
	if !ok {
		return nil, access.ErrUnauthenticated
	}
	return p, nil
}
