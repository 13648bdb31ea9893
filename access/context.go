package access

import "context"

type ctxKey struct{}

// WithPrincipal returns ctx carrying p: the HTTP middleware resolves the
// credential once, handlers read it back with FromContext.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the request's principal, nil if none was resolved.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(ctxKey{}).(*Principal)
	return p
}

// LinkPrincipal is the principal of a link: its role holds in the link's
// room, whose name is the event's slug.
func LinkPrincipal(id, label, room string, role Role, commune string, watchOnly bool) *Principal {
	p := &Principal{Kind: KindLink, ID: id, Name: label, Commune: commune, WatchOnly: watchOnly, Roles: map[string]Role{}}
	if room != "" {
		p.Roles[room] = role
	} else if role == Declarant {
		// A commune link is not tied to a room: it declares in the
		// territory's event.
		p.Roles[MainEvent] = role
	}
	return p
}
