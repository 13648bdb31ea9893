package app

import (
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"crisisroom/declarations"
	"crisisroom/static"
)

func (a *App) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer, middleware.GetHead, securityHeaders)
	r.Get("/healthz", a.healthz)
	r.Get("/readyz", a.readyz)
	r.Get("/ws", a.sig.ServeHTTP)
	r.Route("/api/v1", func(r chi.Router) {
		if a.Decl == nil {
			r.HandleFunc("/*", func(w http.ResponseWriter, _ *http.Request) {
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "no_territory",
					"message": "declarations are off: start the server with --territory (and --communes)"})
			})
			return
		}
		api := &declarations.API{Svc: a.Decl, Auth: a.actor, Name: a.communeName}
		api.Mount(r)
	})

	files, _ := fs.Sub(static.Files, ".")
	fileServer := http.FileServerFS(files)
	// The room page is one document for every room; the room name and the
	// token are read by the page itself.
	r.Get("/r/{room}", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		http.ServeFileFS(w, req, static.Files, "index.html")
	})
	r.Get("/", func(w http.ResponseWriter, req *http.Request) {
		http.ServeFileFS(w, req, static.Files, "index.html")
	})
	r.Handle("/css/*", fileServer)
	r.Handle("/js/*", fileServer)
	return r
}

// securityHeaders: no inline script anywhere, so the CSP can forbid it; the
// page needs camera and microphone of its own origin only.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
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

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
