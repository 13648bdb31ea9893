package app

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/httprate"

	"crisisroom/access"
	"crisisroom/rooms"
)

// SessionCookie is the staff session's cookie. The page never reads it
// (HttpOnly); state-changing requests prove they come from our page with
// the session's CSRF token in CSRFHeader.
const (
	SessionCookie = "crisisroom_session"
	CSRFHeader    = "X-CSRF-Token"
)

// errCSRF is a cookie-authenticated change without the page's token.
var errCSRF = errors.New("csrf token missing or wrong")

// gate is the one door of /api/v1, in two halves. identify runs before
// routing: rate limits, then the caller's credential. authorize runs as
// part of the route that matched (route-level middleware, see apiRoutes):
// it reads that route's rule from access.RouteRule with the method and
// pattern the router actually used, and asks access.Decide. Handlers read
// the principal with access.FromContext, which only authorize sets: a
// handler reached without a decision sees nobody.
type gate struct {
	a       *App
	perIP   *httprate.RateLimiter
	perCred *httprate.RateLimiter
}

func (a *App) newGate() *gate {
	g := &gate{a: a}
	limited := httprate.WithLimitHandler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "60")
		writeError(w, http.StatusTooManyRequests, "rate_limited", "Trop de requêtes : réessayez dans une minute.")
	})
	if a.cfg.RateIP > 0 {
		g.perIP = httprate.NewRateLimiter(a.cfg.RateIP, time.Minute, limited)
	}
	if a.cfg.RateToken > 0 {
		g.perCred = httprate.NewRateLimiter(a.cfg.RateToken, time.Minute, limited)
	}
	return g
}

// caller is what identify resolved, waiting for authorize's decision.
type caller struct {
	p     *access.Principal
	login *staffLogin
}

type callerKey struct{}

// identify resolves the credential of every /api/v1 request, before the
// router picks a route: it decides nothing about the route.
func (g *gate) identify(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := clientIP(r, g.a.proxies)
		if g.perIP != nil && g.perIP.RespondOnLimit(w, r, "ip:"+ip) {
			return
		}
		p, login, err := g.a.principal(r)
		switch {
		case errors.Is(err, errCSRF):
			writeError(w, http.StatusForbidden, "csrf", "Requête refusée (jeton anti-falsification absent) : rechargez la page.")
			return
		case err != nil && !errors.Is(err, access.ErrUnauthenticated):
			g.a.unavailable(w, "resolve credential", err)
			return
		}
		if p != nil && g.perCred != nil && g.perCred.RespondOnLimit(w, r, "cred:"+p.Key()) {
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, caller{p: p, login: login})))
	})
}

// authorize decides for the route that matched. The method is the one the
// router routed on (HEAD served by a GET route is decided as that GET);
// the pattern and its {slug} are the router's own. A route without a rule
// is refused.
func (g *gate) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rctx := chi.RouteContext(r.Context())
		method, pattern := routedMethod(rctx, r), rctx.RoutePattern()
		rule, ok := access.RouteRule(method, pattern)
		if !ok {
			g.a.log.Error("route without an authorization rule", "method", method, "pattern", pattern)
			writeError(w, http.StatusInternalServerError, "internal", "route without an authorization rule")
			return
		}
		c, _ := r.Context().Value(callerKey{}).(caller)
		if err := access.Decide(c.p, rule.Action, g.a.chain(rctx, rule.Scope)); err != nil {
			if errors.Is(err, access.ErrUnauthenticated) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="crisisroom"`)
				writeError(w, http.StatusUnauthorized, "unauthenticated", "Lien ou session absent, inconnu, expiré ou révoqué.")
				return
			}
			writeError(w, http.StatusForbidden, "forbidden", "Votre rôle ne permet pas cette action.")
			return
		}
		ctx := access.WithPrincipal(r.Context(), c.p)
		if c.login != nil {
			ctx = context.WithValue(ctx, staffLoginKey{}, c.login)
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// routedMethod is the method the router matched the route with.
func routedMethod(rctx *chi.Context, r *http.Request) string {
	if rctx.RouteMethod != "" {
		return rctx.RouteMethod
	}
	return r.Method
}

// checkRules walks the API's routes: every one needs a rule, so a route
// added without one stops the server at start instead of being refused at
// its first call.
func checkRules(api chi.Routes, prefix string) error {
	var missing []string
	err := chi.Walk(api, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if _, ok := access.RouteRule(method, prefix+route); !ok {
			missing = append(missing, method+" "+prefix+route)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("API routes without an authorization rule in access: %s", strings.Join(missing, ", "))
	}
	return nil
}

// chain is the event a request acts in and its ancestors.
func (a *App) chain(rctx *chi.Context, s access.Scope) []string {
	switch s {
	case access.ScopeTerritory:
		return []string{access.MainEvent}
	case access.ScopeEvent:
		return a.EventChain(rctx.URLParam("slug"))
	}
	return nil
}

// EventChain is an event's slug followed by its ancestors' (a room's name
// is its event's slug). An unknown slug is its own chain: only a global
// role or a direct membership can reach it.
func (a *App) EventChain(slug string) []string {
	if a.Mainlog == nil || slug == "" {
		return []string{slug}
	}
	return a.Mainlog.Chain(slug)
}

// principal resolves the request's credential: a bearer token (a link or
// an API token) or the session cookie, with what the session's lookup
// read (whoami answers with it). No credential is (nil, nil, nil).
func (a *App) principal(r *http.Request) (*access.Principal, *staffLogin, error) {
	if tok := bearer(r); tok != "" {
		p, err := a.bearerPrincipal(r.Context(), tok)
		return p, nil, err
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return nil, nil, nil
	}
	p, login, err := a.sessionPrincipal(r.Context(), c.Value)
	if err != nil {
		return nil, nil, err
	}
	if unsafeMethod(r.Method) {
		got := r.Header.Get(CSRFHeader)
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(login.session.CSRF)) != 1 {
			return nil, nil, errCSRF
		}
	}
	return p, &login, nil
}

// staffLogin is what resolving a session cookie read: the session and its
// user.
type staffLogin struct {
	session access.Session
	user    access.User
}

type staffLoginKey struct{}

func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// bearerPrincipal: a link first (the common case: mayors, room members),
// then an API token.
func (a *App) bearerPrincipal(ctx context.Context, tok string) (*access.Principal, error) {
	if len(tok) > 256 {
		return nil, access.ErrUnauthenticated
	}
	hash := rooms.HashSecret(tok)
	l, err := a.links.lookup(ctx, hash, a.be.Store.LinkByHash)
	switch {
	case err == nil:
		return linkPrincipal(l, time.Now())
	case !errors.Is(err, rooms.ErrNotFound):
		return nil, fmt.Errorf("look up link: %w", err)
	}
	return a.tokenPrincipal(ctx, hash)
}

// linkPrincipal turns a live link into its principal.
func linkPrincipal(l rooms.Link, now time.Time) (*access.Principal, error) {
	if !l.RevokedAt.IsZero() || !now.Before(l.ExpiresAt) {
		return nil, access.ErrUnauthenticated
	}
	switch l.Kind {
	case KindCommune:
		return access.LinkPrincipal(l.ID, l.Label, "", access.Declarant, l.Scope, false), nil
	case rooms.KindRoom, rooms.KindGuest:
		role, ok := access.ParseRole(l.Role)
		if !ok || role == access.Admin || role == access.Declarant {
			return nil, access.ErrUnauthenticated // a link never makes an admin
		}
		if l.Kind == rooms.KindGuest {
			role = access.Guest
		}
		return access.LinkPrincipal(l.ID, l.Label, l.Scope, role, "", l.WatchOnly), nil
	}
	return nil, access.ErrUnauthenticated
}

// sessionPrincipal resolves a session cookie's value.
func (a *App) sessionPrincipal(ctx context.Context, cookie string) (*access.Principal, staffLogin, error) {
	var none staffLogin
	if len(cookie) > 256 {
		return nil, none, access.ErrUnauthenticated
	}
	st := a.be.Store.Access()
	s, err := st.SessionByHash(ctx, rooms.HashSecret(cookie))
	if errors.Is(err, access.ErrNotFound) {
		return nil, none, access.ErrUnauthenticated
	}
	if err != nil {
		return nil, none, fmt.Errorf("look up session: %w", err)
	}
	if !time.Now().Before(s.ExpiresAt) {
		return nil, none, access.ErrUnauthenticated
	}
	u, err := st.UserByID(ctx, s.UserID)
	if errors.Is(err, access.ErrNotFound) || (err == nil && !u.DisabledAt.IsZero()) {
		return nil, none, access.ErrUnauthenticated
	}
	if err != nil {
		return nil, none, fmt.Errorf("look up user: %w", err)
	}
	ms, err := st.Memberships(ctx, u.ID)
	if err != nil {
		return nil, none, fmt.Errorf("memberships: %w", err)
	}
	p := access.UserPrincipal(u, ms)
	p.Session = access.SessionID(s.Hash) // logging out closes this login's sockets only
	p.SessionHash = s.Hash
	return p, staffLogin{session: s, user: u}, nil
}

// clientIP is the request's peer, or the client a trusted proxy names in
// X-Forwarded-For (the rightmost address not itself a trusted proxy).
func clientIP(r *http.Request, proxies []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || !trusted(addr, proxies) {
		return host
	}
	hops := strings.Split(r.Header.Get("X-Forwarded-For"), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if !trusted(a, proxies) {
			return a.String()
		}
	}
	return host
}

func trusted(a netip.Addr, proxies []netip.Prefix) bool {
	for _, p := range proxies {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// wsPrincipal is the staff session a WebSocket is opened with, if any: a
// logged-in user joins a room of their events without a link. (The
// Origin check stands in for the CSRF token here: a socket cannot be
// opened from another site's page.)
func (a *App) wsPrincipal(r *http.Request) *access.Principal {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	p, _, err := a.sessionPrincipal(r.Context(), c.Value)
	if err != nil {
		if !errors.Is(err, access.ErrUnauthenticated) {
			a.log.Warn("websocket session lookup failed", "err", err)
		}
		return nil
	}
	return p
}

// onAdmission records a lobby decision in the access audit log and in the
// event's main courante (a system entry: the legal trace says who let whom
// into the briefing).
func (a *App) onAdmission(room, guest, linkID, by string, admitted bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	action, verb := "guest_refused", "refusé(e)"
	if admitted {
		action, verb = "guest_admitted", "admis(e)"
	}
	a.audit(ctx, access.AuditEntry{Actor: by, Action: action, Target: room, Detail: guest + " (lien " + linkID + ")"})
	if a.Mainlog == nil {
		return
	}
	if _, err := a.Mainlog.Event(ctx, room); err != nil {
		return // a room without an event of its own
	}
	text := fmt.Sprintf("Invité « %s » %s dans la salle par %s.", guest, verb, by)
	key := fmt.Sprintf("lobby:%s:%d", linkID, time.Now().UnixNano())
	if _, err := a.Mainlog.System(ctx, room, text, "", key); err != nil {
		a.log.Error("main courante: admission not logged", "room", room, "err", err)
	}
}

// onKicked records a credential's revocation taking effect on a member.
func (a *App) onKicked(room, name, kind, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.audit(ctx, access.AuditEntry{Actor: "system", Action: "member_kicked", Target: room, Detail: name + " (" + kind + " " + id + ")"})
}
