package app

import (
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"crisisroom/declarations"
	"crisisroom/layers"
	"crisisroom/static"
)

func (a *App) routes() (http.Handler, error) {
	api, err := a.apiRoutes()
	if err != nil {
		return nil, err
	}
	r := chi.NewRouter()
	r.Use(middleware.Recoverer, middleware.GetHead, a.securityHeaders)
	r.Get("/healthz", a.healthz)
	r.Get("/readyz", a.readyz)
	r.Get("/ws", a.sig.ServeHTTP)
	r.Mount("/api/v1", api)

	files, _ := fs.Sub(static.Files, ".")
	fileServer := http.FileServerFS(files)
	// The room page is one document for every room; the room name and the
	// token are read by the page itself.
	r.Get("/r/{room}", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		http.ServeFileFS(w, req, static.Files, "index.html")
	})
	// The staff home: the login form, then the user's events (and, for
	// admins, accounts, API tokens and the audit log).
	r.Get("/", noStoreFile("home.html"))
	// The commune's declaration page (/d#t=TOKEN) and the morning report
	// (/report#t=TOKEN): like the room page, the token stays in the fragment.
	r.Get("/d", noStoreFile("declare.html"))
	r.Get("/report", noStoreFile("report.html"))
	r.Get("/log/{slug}", noStoreFile("log.html")) // the main courante's printable view
	// The declaration page's service worker sits at the root so that its
	// scope may cover /d; no-cache makes browsers check it on every visit.
	r.Get("/declare-sw.js", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, req, static.Files, "js/declare/sw.js")
	})
	r.Handle("/css/*", fileServer)
	r.Handle("/js/*", fileServer)
	r.Handle("/vendor/*", fileServer) // Leaflet, at the lock file's version, committed (npm run build refreshes it)
	r.Get("/config.json", a.pageConfig)
	r.With(middleware.Compress(5, "application/geo+json")).Get("/territory.geojson", a.territoryGeoJSON())
	return r, nil
}

// apiRoutes is /api/v1. Its routes are registered on one router whose
// every route runs the gate's authorize first; the mount functions get
// only that router, so a route cannot be added without the decision.
// Unknown paths and methods are answered before any handler (404, 405).
func (a *App) apiRoutes() (http.Handler, error) {
	g := a.newGate()
	api := chi.NewRouter()
	// One size limit, the declarations' outcome counter (refusals
	// included), the caller's credential; then routing.
	api.Use(limitBody, a.metrics.countDeclarations, g.identify)
	api.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "Adresse inconnue.")
	})
	api.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", strings.Join(allowedMethods(api, r), ", "))
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Méthode non permise à cette adresse.")
	})
	r := api.With(g.authorize)
	a.mountSession(r)
	a.mountAdmin(r)
	a.mountGuestLinks(r)
	a.mountMainlog(r) // the main courante works without a territory too
	if a.Decl == nil {
		api.NotFound(func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, http.StatusServiceUnavailable, "no_territory",
				"declarations are off: start the server with --territory (and --communes)")
		})
	} else {
		decl := &declarations.API{Svc: a.Decl, Auth: a.actor, Name: a.communeName}
		decl.Mount(r)
		a.mountCommuneLinks(r)
		lay := &layers.API{Store: a.be.Store.Layers(), Auth: a.actor, Map: a.Map, Log: a.log.With("component", "layers"), Now: time.Now}
		lay.Mount(r)
	}
	if err := checkRules(api, "/api/v1"); err != nil {
		return nil, err
	}
	return api, nil
}

// allowedMethods are the methods the router serves at r's path, for the
// Allow header of a 405.
func allowedMethods(api chi.Routes, r *http.Request) []string {
	path := chi.RouteContext(r.Context()).RoutePath
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if api.Match(chi.NewRouteContext(), m, path) {
			out = append(out, m)
			if m == http.MethodGet {
				out = append(out, http.MethodHead) // served by the GET (middleware.GetHead)
			}
		}
	}
	return out
}

// maxAPIBody bounds any request body under /api/v1: the largest legitimate
// one is a log entry with its attachment (mainlog caps it more tightly).
const maxAPIBody = 8 << 20

// limitBody caps any request body: a client can make the server read at
// most maxAPIBody bytes. Each API refuses an announced oversize body
// itself, with a message that says its own limit.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
		next.ServeHTTP(w, r)
	})
}

// noStoreFile serves one page of static/ that must not be cached: it is the
// entry of a link that carries a secret.
func noStoreFile(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		http.ServeFileFS(w, req, static.Files, name)
	}
}

// securityHeaders: no inline script anywhere, so the CSP can forbid it; the
// page needs camera and microphone of its own origin only. Images may also
// come from the map tile server when one is configured (--map-tiles).
func (a *App) securityHeaders(next http.Handler) http.Handler {
	img := "img-src 'self' data: blob:"
	if origin, _ := a.cfg.mapTilesOrigin(); origin != "" { // checked by Validate
		img += " " + origin
	}
	csp := "default-src 'self'; script-src 'self'; style-src 'self'; " + img + "; media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Permissions-Policy", "camera=(self), microphone=(self), display-capture=(self)")
		next.ServeHTTP(w, r)
	})
}

func (a *App) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "uptime_s": int(time.Since(a.start).Seconds())})
}

func (a *App) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	checks := a.Ready(ctx)
	status := http.StatusOK
	for _, v := range checks {
		if v != "ok" {
			status = http.StatusServiceUnavailable
		}
	}
	writeJSON(w, status, map[string]any{"ready": status == http.StatusOK, "checks": checks})
}

// writeError is the API's error answer: a stable code for programs and a
// message for people.
func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]string{"error": code, "message": message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
