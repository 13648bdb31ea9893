package app

// Guest links of an event's room: an operator invites an outside partner
// for a while, for a few uses, maybe watch-only, maybe through the lobby;
// lists the room's links and revokes one, which disconnects its guests at
// once. The gate has decided who may (access.LinksManage in the event):
// the handlers check no role.

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"crisisroom/access"
	"crisisroom/rooms"
)

// Limits of a guest link.
const (
	maxGuestMinutes   = 30 * 24 * 60 // a month
	maxGuestUses      = 1000
	maxGuestLabel     = 100
	defaultGuestLabel = "Invité"
	// defaultGuestUses: one person, with room for a reload or a second
	// device (each join counts a use; a resume does not).
	defaultGuestUses = 3
)

// mountGuestLinks registers the guest links' routes under /api/v1.
func (a *App) mountGuestLinks(r chi.Router) {
	r.Get("/events/{slug}/guest-links", a.listGuestLinks)
	r.Post("/events/{slug}/guest-links", a.createGuestLink)
	r.Delete("/events/{slug}/guest-links/{id}", a.revokeGuestLink)
}

// linkView is a link as the API shows it: never its token, which only
// its creation's answer carries.
type linkView struct {
	ID        string     `json:"id"`
	Label     string     `json:"label"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at"` // null while not revoked
	// State is "active", "expired", "used_up" or "revoked", as of the
	// answer.
	State string `json:"state"`
}

func viewLink(l rooms.Link, now time.Time) linkView {
	v := linkView{ID: l.ID, Label: l.Label, CreatedAt: l.CreatedAt, ExpiresAt: l.ExpiresAt, State: l.State(now)}
	if !l.RevokedAt.IsZero() {
		at := l.RevokedAt
		v.RevokedAt = &at
	}
	return v
}

// guestLinkView adds what a guest link allows.
type guestLinkView struct {
	linkView
	MaxUses   int    `json:"max_uses"`
	Uses      int    `json:"uses"`
	WatchOnly bool   `json:"watch_only"`
	Lobby     bool   `json:"lobby"`
	CreatedBy string `json:"created_by"`
}

func viewGuestLink(l rooms.Link, now time.Time) guestLinkView {
	return guestLinkView{linkView: viewLink(l, now), MaxUses: l.MaxUses, Uses: l.Uses,
		WatchOnly: l.WatchOnly, Lobby: l.Lobby, CreatedBy: l.CreatedBy}
}

// linksOf returns the links of kind among those of scope (a room, a
// commune), newest first.
func (a *App) linksOf(r *http.Request, scope, kind string) ([]rooms.Link, error) {
	all, err := a.be.Store.Links(r.Context(), scope)
	var out []rooms.Link
	for _, l := range all {
		if l.Kind == kind {
			out = append(out, l)
		}
	}
	return out, err
}

// guestLinks returns the guest links of the event's room, newest first;
// found is false for a room that does not exist.
func (a *App) guestLinks(w http.ResponseWriter, r *http.Request) (slug string, links []rooms.Link, found bool) {
	slug = chi.URLParam(r, "slug")
	if _, err := a.be.Store.Room(r.Context(), slug); errors.Is(err, rooms.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "Salle inconnue.")
		return slug, nil, false
	} else if err != nil {
		a.unavailable(w, "guest links: room", err)
		return slug, nil, false
	}
	links, err := a.linksOf(r, slug, rooms.KindGuest)
	if err != nil {
		a.unavailable(w, "guest links: list", err)
		return slug, nil, false
	}
	return slug, links, true
}

func (a *App) listGuestLinks(w http.ResponseWriter, r *http.Request) {
	_, links, ok := a.guestLinks(w, r)
	if !ok {
		return
	}
	now := time.Now()
	out := make([]guestLinkView, 0, len(links))
	for _, l := range links {
		out = append(out, viewGuestLink(l, now))
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}

// guestLinkInput is the creation's body.
type guestLinkInput struct {
	Label            string `json:"label"`
	ExpiresInMinutes *int   `json:"expires_in_minutes"`
	MaxUses          *int   `json:"max_uses"`
	WatchOnly        bool   `json:"watch_only"`
	Lobby            bool   `json:"lobby"`
}

// check validates the input in place and says what is wrong, in French.
func (in *guestLinkInput) check() string {
	in.Label = strings.TrimSpace(in.Label)
	if in.Label == "" {
		in.Label = defaultGuestLabel
	}
	switch n := utf8.RuneCountInString(in.Label); {
	case !utf8.ValidString(in.Label) || n > maxGuestLabel:
		return fmt.Sprintf("Libellé : %d caractères au plus.", maxGuestLabel)
	case strings.ContainsFunc(in.Label, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "Libellé : caractères de contrôle interdits."
	}
	if in.ExpiresInMinutes == nil {
		return "Durée de validité obligatoire (expires_in_minutes) : un lien invité expire toujours."
	}
	if m := *in.ExpiresInMinutes; m < 1 || m > maxGuestMinutes {
		return fmt.Sprintf("Durée de validité : de 1 à %d minutes (30 jours).", maxGuestMinutes)
	}
	if in.MaxUses == nil {
		n := defaultGuestUses
		in.MaxUses = &n
	}
	if n := *in.MaxUses; n < 1 || n > maxGuestUses {
		return fmt.Sprintf("Nombre d'utilisations : de 1 à %d.", maxGuestUses)
	}
	return ""
}

func (a *App) createGuestLink(w http.ResponseWriter, r *http.Request) {
	slug := chi.URLParam(r, "slug")
	var in guestLinkInput
	if !decodeBody(w, r, &in) {
		return
	}
	if msg := in.check(); msg != "" {
		badRequest(w, msg)
		return
	}
	by := ""
	if p := access.FromContext(r.Context()); p != nil {
		by = p.Name
	}
	now := time.Now()
	plain, l, err := rooms.CreateGuestLink(r.Context(), a.be.Store, rooms.GuestLink{Room: slug, Label: in.Label, CreatedBy: by,
		TTL: time.Duration(*in.ExpiresInMinutes) * time.Minute, MaxUses: *in.MaxUses, WatchOnly: in.WatchOnly, Lobby: in.Lobby}, now)
	switch {
	case errors.Is(err, rooms.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "Salle inconnue.")
		return
	case err != nil:
		a.unavailable(w, "create guest link", err)
		return
	}
	a.auditReq(r, "link_created", slug, fmt.Sprintf("invité %q (%s) : %d min, %d utilisations, lecture seule=%v, salle d'attente=%v",
		l.Label, l.ID, *in.ExpiresInMinutes, l.MaxUses, l.WatchOnly, l.Lobby))
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, struct {
		guestLinkView
		URL   string `json:"url"`
		Token string `json:"token"` // shown once: only its hash is stored
	}{viewGuestLink(l, now), RoomURL(a.cfg.PublicBase(), slug, plain), plain})
}

// revokeGuestLink revokes one of the room's guest links; its guests, seated
// or waiting, are disconnected at once (here and on the other instances).
func (a *App) revokeGuestLink(w http.ResponseWriter, r *http.Request) {
	slug, links, ok := a.guestLinks(w, r)
	if ok {
		a.revokeListed(w, r, slug, links, "Aucun lien invité de cette salle ne porte cet identifiant.")
	}
}

// revokeListed revokes the link {id} if it is one of links (a room's guest
// links, a commune's links: the route's scope), through the rooms manager
// so that every instance drops it and its seats at once, and audits it
// under target.
func (a *App) revokeListed(w http.ResponseWriter, r *http.Request, target string, links []rooms.Link, notFound string) {
	id := chi.URLParam(r, "id")
	if !slices.ContainsFunc(links, func(l rooms.Link) bool { return l.ID == id }) {
		writeError(w, http.StatusNotFound, "not_found", notFound)
		return
	}
	if err := a.Rooms.RevokeLink(r.Context(), id); err != nil {
		a.unavailable(w, "revoke link", err)
		return
	}
	a.auditReq(r, "link_revoked", target, id)
	w.WriteHeader(http.StatusNoContent)
}
