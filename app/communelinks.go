package app

// The communes' declaration links, for the prefecture's staff (operators
// and administrators of the standing event): a commune's links and their
// state, a new link (shown once, to send to the mayor), and revoking a
// link that leaked — which the running server obeys at once (and, in
// cluster mode, every instance). `crisisroom links` does the same from a
// terminal.

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"crisisroom/rooms"
)

// communeLinkTTL is a new commune link's lifetime, as for `links communes`.
const communeLinkTTL = 90 * 24 * time.Hour

func (a *App) mountCommuneLinks(r chi.Router) {
	r.Get("/communes/{code}/links", a.listCommuneLinks)
	r.Post("/communes/{code}/links", a.createCommuneLink)
	r.Delete("/communes/{code}/links/{id}", a.revokeCommuneLink)
}

// communeCode returns the route's commune; ok is false (and the answer
// written) for a commune outside the territory.
func (a *App) communeCode(w http.ResponseWriter, r *http.Request) (code string, ok bool) {
	code = chi.URLParam(r, "code")
	if _, known := a.Territory.Lookup(code); !known {
		writeError(w, http.StatusNotFound, "not_found", "Commune inconnue du territoire.")
		return code, false
	}
	return code, true
}

// communeLinks returns the commune's declaration links, newest first; ok
// is false (and the answer written) for a commune outside the territory.
func (a *App) communeLinks(w http.ResponseWriter, r *http.Request) (code string, links []rooms.Link, ok bool) {
	if code, ok = a.communeCode(w, r); !ok {
		return code, nil, false
	}
	links, err := a.linksOf(r, code, KindCommune)
	if err != nil {
		a.unavailable(w, "commune links: list", err)
		return code, nil, false
	}
	return code, links, true
}

func (a *App) listCommuneLinks(w http.ResponseWriter, r *http.Request) {
	_, links, ok := a.communeLinks(w, r)
	if !ok {
		return
	}
	now := time.Now()
	out := make([]linkView, 0, len(links))
	for _, l := range links {
		out = append(out, viewLink(l, now))
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}

func (a *App) createCommuneLink(w http.ResponseWriter, r *http.Request) {
	code, ok := a.communeCode(w, r)
	if !ok {
		return
	}
	ls, err := a.NewCommuneLinks(r.Context(), []string{code}, communeLinkTTL)
	if err != nil {
		a.unavailable(w, "create commune link", err)
		return
	}
	l := ls[0]
	a.auditReq(r, "link_created", code, "lien de déclaration de "+l.Name)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, l) // the token is shown this once: only its hash is stored
}

// revokeCommuneLink revokes one of the commune's links through the rooms
// manager, so that every instance forgets it at once (linkcache.go).
func (a *App) revokeCommuneLink(w http.ResponseWriter, r *http.Request) {
	code, links, ok := a.communeLinks(w, r)
	if ok {
		a.revokeListed(w, r, code, links, "Aucun lien de cette commune ne porte cet identifiant.")
	}
}
