package app

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"crisisroom/access"
	"crisisroom/rooms"
)

// sessionBody is what login and GET /session answer: who the caller is,
// the CSRF token its page must send back, and where it belongs.
type sessionBody struct {
	User        access.User         `json:"user"`
	CSRF        string              `json:"csrf,omitempty"`
	Memberships []access.Membership `json:"memberships"`
	Kind        string              `json:"kind"`
}

// mountSession registers login, logout and "who am I".
func (a *App) mountSession(r chi.Router) {
	r.Post("/session", a.login)
	r.Get("/session", a.whoami)
	r.Delete("/session", a.logout)
	r.Post("/session/logout-all", a.logoutAll)
}

func (a *App) login(w http.ResponseWriter, r *http.Request) {
	// A page on another site may post a form here (text/plain, no
	// preflight) to log the victim into the attacker's account: the login
	// takes JSON only, from our own pages.
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "La connexion attend du JSON (application/json).")
		return
	}
	if !a.origins.SameSite(r) {
		a.log.Warn("cross-site login refused", "origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
		writeError(w, http.StatusForbidden, "cross_origin", "Connexion refusée : elle doit venir de la page de connexion de ce serveur.")
		return
	}
	var in struct {
		Login    string `json:"login"`
		Password string `json:"password"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	if err := dec.Decode(&in); err != nil || in.Login == "" || in.Password == "" || len(in.Login) > access.MaxLoginLen || len(in.Password) > access.MaxPasswordLen {
		writeError(w, http.StatusBadRequest, "invalid", "Identifiant et mot de passe requis.")
		return
	}
	ip, now := clientIP(r, a.proxies), time.Now()
	login, lerr := access.NormalizeLogin(in.Login)
	if lerr != nil {
		login = "?" // no account has it: checked (and limited) like an unknown login
	}
	if ok, wait := a.limiter.Allow(login, ip, now); !ok {
		secs := max(1, int(wait/time.Second)) // the limiters answer whole seconds, rounded up
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		a.audit(r.Context(), access.AuditEntry{Actor: login, Action: "login_throttled", IP: ip})
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"error": "rate_limited", "retry_after_s": secs,
			"message": "Trop de tentatives : réessayez dans " + strconv.Itoa(secs) + " s."})
		return
	}
	st := a.be.Store.Access()
	u, err := access.User{}, access.ErrNotFound
	if lerr == nil {
		u, err = st.UserByLogin(r.Context(), login)
	}
	if err != nil && !errors.Is(err, access.ErrNotFound) {
		a.unavailable(w, "look up user", err)
		return
	}
	good := false
	if err == nil {
		good, err = a.hasher.Check(r.Context(), u.PasswordHash, in.Password)
		if err != nil {
			a.log.Error("password check failed", "user", u.ID, "err", err)
		}
	} else {
		_ = a.hasher.DummyCheck(r.Context(), in.Password) // same time for an unknown login
	}
	if good && !u.DisabledAt.IsZero() {
		good = false
	}
	a.limiter.Record(login, ip, good, now)
	if !good {
		a.audit(r.Context(), access.AuditEntry{Actor: login, Action: "login_failed", IP: ip})
		writeError(w, http.StatusUnauthorized, "bad_credentials", "Identifiant ou mot de passe incorrect.")
		return
	}
	plain, hash := rooms.NewSecret()
	csrf, _ := rooms.NewSecret()
	s := access.Session{Hash: hash, UserID: u.ID, CSRF: csrf, CreatedAt: now.UTC(), ExpiresAt: now.Add(a.cfg.SessionTTL).UTC(),
		IP: ip, UserAgent: truncate(r.UserAgent(), 200)}
	if err := st.CreateSession(r.Context(), s); err != nil {
		a.unavailable(w, "create session", err)
		return
	}
	http.SetCookie(w, a.sessionCookie(r, plain, a.cfg.SessionTTL))
	a.audit(r.Context(), access.AuditEntry{Actor: u.Login, Action: "login", IP: ip})
	a.rehash(r.Context(), u, in.Password)
	ms, _ := st.Memberships(r.Context(), u.ID)
	writeJSON(w, http.StatusOK, sessionBody{User: u, CSRF: csrf, Memberships: nonNil(ms), Kind: access.KindSession})
}

// rehash stores a fresh hash of a password just checked when its hash was
// made with other parameters than the server's: raising the cost reaches
// every account at its next login. A failure only delays it.
func (a *App) rehash(ctx context.Context, u access.User, pw string) {
	if !a.hasher.NeedsRehash(u.PasswordHash) {
		return
	}
	h, err := a.hasher.Hash(ctx, pw)
	if err == nil {
		err = a.be.Store.Access().SetPassword(ctx, u.ID, h)
	}
	if err != nil {
		a.log.Warn("password hash not upgraded", "user", u.ID, "err", err)
	}
}

// sessionCookie: HttpOnly (no script reads it), SameSite=Lax (not sent on
// cross-site subrequests; a link followed from a mail still finds the
// user logged in), Secure whenever the page is served over TLS.
func (a *App) sessionCookie(r *http.Request, value string, ttl time.Duration) *http.Cookie {
	secure := r.TLS != nil || strings.HasPrefix(a.cfg.PublicURL, "https://")
	c := &http.Cookie{Name: SessionCookie, Value: value, Path: "/", HttpOnly: true, Secure: secure,
		SameSite: http.SameSiteLaxMode, MaxAge: int(ttl.Seconds())}
	if ttl <= 0 {
		c.MaxAge = -1
	}
	return c
}

func (a *App) whoami(w http.ResponseWriter, r *http.Request) {
	p := access.FromContext(r.Context())
	if p.Kind != access.KindSession {
		// A link or token: say what it is, without account details.
		writeJSON(w, http.StatusOK, sessionBody{User: access.User{ID: p.ID, Name: p.Name, Admin: p.Global == access.Admin},
			Memberships: rolesOf(p), Kind: p.Kind})
		return
	}
	// The gate has just read the session and its user.
	login := r.Context().Value(staffLoginKey{}).(*staffLogin)
	writeJSON(w, http.StatusOK, sessionBody{User: login.user, CSRF: login.session.CSRF, Memberships: rolesOf(p), Kind: p.Kind})
}

func rolesOf(p *access.Principal) []access.Membership {
	out := []access.Membership{}
	for ev, r := range p.Roles {
		out = append(out, access.Membership{UserID: p.UserID, Event: ev, Role: r})
	}
	return out
}

func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	p := access.FromContext(r.Context())
	if c, err := r.Cookie(SessionCookie); err == nil && p.Kind == access.KindSession {
		if err := a.be.Store.Access().DeleteSession(r.Context(), rooms.HashSecret(c.Value)); err != nil {
			a.unavailable(w, "delete session", err)
			return
		}
		// The sockets this login opened end with it; the account's other
		// logins keep theirs.
		kicked := a.Rooms.KickPrincipal(access.KindLogin, p.Session)
		a.audit(r.Context(), access.AuditEntry{Actor: p.Name, Action: "logout", IP: clientIP(r, a.proxies),
			Detail: strconv.Itoa(kicked) + " connections"})
	}
	http.SetCookie(w, a.sessionCookie(r, "", 0))
	w.WriteHeader(http.StatusNoContent)
}

// logoutAll ends every session of the caller's account, on every device.
func (a *App) logoutAll(w http.ResponseWriter, r *http.Request) {
	p := access.FromContext(r.Context())
	if p.UserID == "" {
		writeError(w, http.StatusBadRequest, "invalid", "Réservé aux comptes du personnel.")
		return
	}
	n, err := a.be.Store.Access().DeleteUserSessions(r.Context(), p.UserID)
	if err != nil {
		a.unavailable(w, "delete sessions", err)
		return
	}
	// The rooms and feeds the account's sockets hold end too: logging out
	// everywhere is for a lost phone.
	kicked := a.Rooms.KickPrincipal(access.KindSession, p.UserID)
	a.audit(r.Context(), access.AuditEntry{Actor: p.Name, Action: "logout_all", IP: clientIP(r, a.proxies),
		Detail: strconv.Itoa(n) + " sessions, " + strconv.Itoa(kicked) + " connections"})
	http.SetCookie(w, a.sessionCookie(r, "", 0))
	writeJSON(w, http.StatusOK, map[string]int{"ended": n})
}

// audit records an access event; a failure to record is logged, never
// shown to the user (the action itself has happened).
// auditReq writes an API request's action to the audit log, under its
// caller's name and address.
func (a *App) auditReq(r *http.Request, action, target, detail string) {
	e := access.AuditEntry{Action: action, Target: target, Detail: detail, IP: clientIP(r, a.proxies)}
	if p := access.FromContext(r.Context()); p != nil {
		e.Actor = p.Name
	}
	a.audit(r.Context(), e)
}

func (a *App) audit(ctx context.Context, e access.AuditEntry) {
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	if err := a.be.Store.Access().Audit(context.WithoutCancel(ctx), e); err != nil {
		a.log.Error("audit log write failed", "action", e.Action, "actor", e.Actor, "err", err)
	}
}

func (a *App) unavailable(w http.ResponseWriter, what string, err error) {
	a.log.Error(what, "err", err)
	w.Header().Set("Retry-After", "2")
	writeError(w, http.StatusServiceUnavailable, "unavailable", "Service momentanément indisponible : réessayez.")
}

// sweepSessions deletes expired sessions now and then (a lookup already
// refuses them; this keeps the table small).
func (a *App) sweepSessions(ctx context.Context) {
	if n, err := a.be.Store.Access().DeleteExpiredSessions(ctx, time.Now()); err != nil {
		a.log.Warn("expired sessions not swept", "err", err)
	} else if n > 0 {
		a.log.Info("expired sessions swept", "count", n)
	}
}

// repeat runs fn every period until ctx ends.
func repeat(ctx context.Context, every time.Duration, fn func(context.Context)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fn(ctx)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
