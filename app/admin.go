package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"crisisroom/access"
	"crisisroom/mainlog"
	"crisisroom/rooms"
)

// Limits of the administration API.
const (
	maxTokenTTL = 365 * 24 * time.Hour
	auditPage   = 200
)

// mountAdmin registers accounts, API tokens and the audit log (admins;
// the gate decided).
func (a *App) mountAdmin(r chi.Router) {
	r.Get("/users", a.listUsers)
	r.Post("/users", a.createUser)
	r.Put("/users/{id}/events/{slug}", a.setMembership)
	r.Post("/users/{id}/disable", a.disableUser)
	r.Get("/tokens", a.listTokens)
	r.Post("/tokens", a.createToken)
	r.Delete("/tokens/{id}", a.revokeToken)
	r.Get("/audit", a.auditLog)
	r.Post("/events", a.createEvent)
}

// createEvent opens a new crisis event: its standing room and its log.
// Its members are then named one by one (setMembership).
func (a *App) createEvent(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Slug  string `json:"slug"`
		Title string `json:"title"`
	}
	if !decodeBody(w, r, &in) {
		return
	}
	title := strings.TrimSpace(in.Title)
	slug := in.Slug
	if slug == "" {
		slug = mainlog.Slugify(title, 40)
	}
	if title == "" || len(title) > 120 || slug != mainlog.Slugify(slug, 40) || len(slug) < 2 {
		badRequest(w, "Évènement : un intitulé (1 à 120 caractères) et un identifiant court en minuscules, chiffres et tirets.")
		return
	}
	created, err := a.be.Store.CreateRoom(r.Context(), rooms.RoomInfo{Name: slug, Title: title, CreatedAt: time.Now().UTC()})
	if err != nil {
		a.unavailable(w, "create room", err)
		return
	}
	if !created {
		writeError(w, http.StatusConflict, "exists", "Cet identifiant est déjà pris.")
		return
	}
	if err := a.Mainlog.EnsureRoot(r.Context(), slug, title); err != nil {
		a.unavailable(w, "create event", err)
		return
	}
	ev, _ := a.Mainlog.Event(r.Context(), slug)
	a.auditReq(r, "event_created", slug, "")
	writeJSON(w, http.StatusCreated, ev)
}

// userOfPath is the account the route's {id} names; it answers 404 or 503
// itself when there is none to act on.
func (a *App) userOfPath(w http.ResponseWriter, r *http.Request) (access.User, bool) {
	u, err := a.be.Store.Access().UserByID(r.Context(), chi.URLParam(r, "id"))
	if errors.Is(err, access.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "Utilisateur inconnu.")
		return u, false
	}
	if err != nil {
		a.unavailable(w, "look up user", err)
		return u, false
	}
	return u, true
}

func badRequest(w http.ResponseWriter, msg string) {
	writeError(w, http.StatusBadRequest, "invalid", msg)
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("Corps de requête trop grand (%d octets au plus).", tooBig.Limit))
			return false
		}
		badRequest(w, "Corps JSON invalide : "+err.Error())
		return false
	}
	return true
}

type userView struct {
	access.User
	Memberships []access.Membership `json:"memberships"`
}

func (a *App) listUsers(w http.ResponseWriter, r *http.Request) {
	st := a.be.Store.Access()
	us, err := st.Users(r.Context())
	if err != nil {
		a.unavailable(w, "list users", err)
		return
	}
	out := make([]userView, 0, len(us))
	for _, u := range us {
		ms, err := st.Memberships(r.Context(), u.ID)
		if err != nil {
			a.unavailable(w, "memberships", err)
			return
		}
		out = append(out, userView{u, nonNil(ms)})
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *App) createUser(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Login    string `json:"login"`
		Name     string `json:"name"`
		Password string `json:"password"`
		Admin    bool   `json:"admin"`
	}
	if !decodeBody(w, r, &in) {
		return
	}
	login, err := access.NormalizeLogin(in.Login)
	if err != nil {
		badRequest(w, "Identifiant : lettres, chiffres et . _ - @ seulement ("+err.Error()+").")
		return
	}
	if err := access.ValidatePassword(in.Password); err != nil {
		badRequest(w, err.Error())
		return
	}
	name := strings.TrimSpace(in.Name)
	if name == "" {
		name = login
	}
	hash, err := a.hasher.Hash(r.Context(), in.Password)
	if err != nil {
		a.unavailable(w, "hash password", err)
		return
	}
	u := access.User{ID: rooms.NewID(), Login: login, Name: truncate(name, 64), Admin: in.Admin, PasswordHash: hash, CreatedAt: time.Now().UTC()}
	switch err := a.be.Store.Access().CreateUser(r.Context(), u); {
	case errors.Is(err, access.ErrExists):
		writeError(w, http.StatusConflict, "exists", "Cet identifiant existe déjà.")
		return
	case err != nil:
		a.unavailable(w, "create user", err)
		return
	}
	a.auditReq(r, "user_created", login, "admin="+strconv.FormatBool(in.Admin))
	writeJSON(w, http.StatusCreated, userView{u, []access.Membership{}})
}

// setMembership gives a user a role in an event ("" removes it).
func (a *App) setMembership(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Role string `json:"role"`
	}
	if !decodeBody(w, r, &in) {
		return
	}
	role, ok := access.ParseRole(in.Role)
	switch {
	case in.Role == "" || in.Role == "inherit":
		role = "" // the event's own role goes: its parent's holds again
	case in.Role == string(access.None):
		role = access.None // out of the event, whatever is held above
	case !ok || role == access.Declarant || role == access.Guest:
		badRequest(w, "Rôle : admin, operator, participant, observer, none (retirer l'accès) ou vide (hériter de l'évènement parent).")
		return
	}
	st := a.be.Store.Access()
	u, ok := a.userOfPath(w, r)
	if !ok {
		return
	}
	slug := chi.URLParam(r, "slug")
	if a.Mainlog != nil {
		if _, err := a.Mainlog.Event(r.Context(), slug); err != nil {
			writeError(w, http.StatusNotFound, "not_found", "Évènement inconnu.")
			return
		}
	}
	chain := a.EventChain(slug)
	if role == access.None && len(chain) == 1 {
		role = "" // nothing above a root event to block
	}
	ms, err := st.Memberships(r.Context(), u.ID)
	if err != nil {
		a.unavailable(w, "memberships", err)
		return
	}
	if err := st.SetMembership(r.Context(), access.Membership{UserID: u.ID, Event: slug, Role: role}); err != nil {
		a.unavailable(w, "set membership", err)
		return
	}
	detail := "role=" + string(role)
	if lowered(u, ms, slug, role, a.EventChain) {
		// Sockets keep the rights they were opened with (their log
		// feeds too): the account's are closed, and reopen with the
		// new role. (Its tokens follow at their next use.)
		detail += fmt.Sprintf(", %d seats ended", a.Rooms.KickPrincipal(access.KindSession, u.ID))
	}
	a.auditReq(r, "membership_set", u.Login+"@"+slug, detail)
	w.WriteHeader(http.StatusNoContent)
}

// lowered says whether setting role in event takes something from a user
// whose memberships were ms: a role it held there or below, directly or
// inherited, goes or becomes a lesser one.
func lowered(u access.User, ms []access.Membership, event string, role access.Role, chainOf func(string) []string) bool {
	after := []access.Membership{}
	if role != "" {
		after = append(after, access.Membership{UserID: u.ID, Event: event, Role: role})
	}
	for _, m := range ms {
		if m.Event != event {
			after = append(after, m)
		}
	}
	return rolesShrank(access.UserPrincipal(u, ms), access.UserPrincipal(u, after), chainOf)
}

func (a *App) listTokens(w http.ResponseWriter, r *http.Request) {
	ts, err := a.be.Store.Access().Tokens(r.Context())
	if err != nil {
		a.unavailable(w, "list tokens", err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(ts))
}

// createToken mints an API token for a user; it is shown once.
func (a *App) createToken(w http.ResponseWriter, r *http.Request) {
	var in struct {
		User    string `json:"user"`
		Role    string `json:"role"`
		Event   string `json:"event"`
		Expires string `json:"expires"`
		Label   string `json:"label"`
	}
	if !decodeBody(w, r, &in) {
		return
	}
	role, ok := access.ParseRole(in.Role)
	if !ok || role == access.Guest || role == access.Declarant {
		badRequest(w, "Rôle : admin, operator, participant ou observer.")
		return
	}
	ttl, err := time.ParseDuration(in.Expires)
	if in.Expires == "" {
		ttl, err = 24*time.Hour, nil
	}
	if err != nil || ttl < time.Minute || ttl > maxTokenTTL {
		badRequest(w, "Expiration : une durée entre 1m et 8760h (par exemple 24h).")
		return
	}
	st := a.be.Store.Access()
	login, _ := access.NormalizeLogin(in.User)
	u, err := st.UserByLogin(r.Context(), login)
	if errors.Is(err, access.ErrNotFound) {
		badRequest(w, "Utilisateur inconnu : "+in.User)
		return
	}
	if err != nil {
		a.unavailable(w, "look up user", err)
		return
	}
	var chain []string
	if in.Event != "" {
		chain = a.EventChain(in.Event)
	}
	actor := ""
	if p := access.FromContext(r.Context()); p != nil {
		actor = p.Name
	}
	plain, t, err := MintToken(r.Context(), st, TokenGrant{User: u, Role: role, Event: in.Event, Chain: chain,
		Label: truncate(strings.TrimSpace(in.Label), 80), TTL: ttl}, actor, clientIP(r, a.proxies), time.Now())
	switch {
	case errors.Is(err, access.ErrForbidden):
		// A token never carries more than its user holds.
		badRequest(w, "Jeton refusé : "+err.Error())
		return
	case err != nil:
		a.unavailable(w, "create token", err)
		return
	}
	writeJSON(w, http.StatusCreated, struct {
		access.Token
		Secret string `json:"token"`
	}{t, plain})
}

func (a *App) revokeToken(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	switch err := a.be.Store.Access().RevokeToken(r.Context(), id, time.Now().UTC()); {
	case errors.Is(err, access.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "Jeton inconnu.")
		return
	case err != nil:
		a.unavailable(w, "revoke token", err)
		return
	}
	a.Rooms.KickPrincipal(access.KindToken, id) // and whatever it holds open, at once
	a.auditReq(r, "token_revoked", id, "")
	w.WriteHeader(http.StatusNoContent)
}

func (a *App) auditLog(w http.ResponseWriter, r *http.Request) {
	es, err := a.be.Store.Access().AuditLog(r.Context(), auditPage)
	if err != nil {
		a.unavailable(w, "audit log", err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(es))
}
