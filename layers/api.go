package layers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"crisisroom/declarations"
	"crisisroom/livemap"
	"crisisroom/protocol"
	"crisisroom/rooms"
)

// Broadcaster sends one frame to every map watcher (livemap.Hub).
type Broadcaster interface {
	Broadcast(f rooms.Frame)
}

// API is the HTTP surface, mounted under /api/v1. Operators (room host
// links) upload and delete; any room link lists and reads.
type API struct {
	Store Store
	Auth  declarations.Authenticate
	Map   Broadcaster
	Log   *slog.Logger
	Now   func() time.Time

	// announce serialises list-and-broadcast, so the last list sent is the
	// latest even when two changes race.
	announce sync.Mutex
}

// Mount registers the routes on r.
func (a *API) Mount(r chi.Router) {
	r.Post("/layers", a.upload)
	r.Get("/layers", a.list)
	// A layer is up to 5 MiB of highly repetitive JSON: gzip shrinks it
	// several times over for the phones on the crisis-room Wi-Fi.
	r.With(middleware.Compress(5, "application/geo+json")).Get("/layers/{id}", a.get)
	r.Delete("/layers/{id}", a.remove)
}

type apiError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	Feature *int   `json:"feature,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

var errForbidden = errors.New("forbidden")

// fail maps errors to HTTP answers in one place.
func (a *API) fail(w http.ResponseWriter, err error) {
	var ge *GeoJSONError
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, declarations.ErrUnauthenticated):
		w.Header().Set("WWW-Authenticate", `Bearer realm="crisisroom"`)
		writeJSON(w, http.StatusUnauthorized, apiError{Error: "unauthenticated", Message: "Lien invalide, expiré ou révoqué."})
	case errors.Is(err, errForbidden):
		writeJSON(w, http.StatusForbidden, apiError{Error: "forbidden", Message: "Ce lien ne permet pas cette action (réservée aux opérateurs)."})
	case errors.Is(err, ErrNotFound):
		writeJSON(w, http.StatusNotFound, apiError{Error: "not_found", Message: "Couche introuvable."})
	case errors.As(err, &mbe):
		writeJSON(w, http.StatusRequestEntityTooLarge, tooLarge())
	case errors.As(err, &ge):
		e := apiError{Error: "invalid_geojson", Message: ge.Error()}
		if ge.Feature >= 0 {
			e.Feature = &ge.Feature
		}
		writeJSON(w, http.StatusUnprocessableEntity, e)
	case errors.Is(err, errBadName):
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: "invalid", Message: err.Error()})
	case errors.Is(err, declarations.ErrUnavailable):
		w.Header().Set("Retry-After", "2")
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "unavailable", Message: "Service momentanément indisponible."})
	default:
		a.Log.Error("layers request failed", "err", err)
		writeJSON(w, http.StatusInternalServerError, apiError{Error: "internal", Message: "Erreur interne."})
	}
}

func tooLarge() apiError {
	return apiError{Error: "too_large", Message: fmt.Sprintf("Couche trop volumineuse : au plus %d Mio de GeoJSON.", MaxBytes>>20)}
}

var errBadName = errors.New("invalid name")

// authorize resolves the token; operator says whether the action needs one.
func (a *API) authorize(r *http.Request, operator bool) (declarations.Actor, error) {
	actor, err := a.Auth(r)
	switch {
	case err != nil:
		return actor, err
	case actor.Operator, !operator && actor.Viewer:
		return actor, nil
	}
	return actor, errForbidden
}

// upload refuses an announced oversize body before reading a byte of it,
// and reads any other through MaxBytesReader: a 50 MB upload costs the
// server at most MaxBytes+1 bytes of reading.
func (a *API) upload(w http.ResponseWriter, r *http.Request) {
	actor, err := a.authorize(r, true)
	if err != nil {
		a.fail(w, err)
		return
	}
	name := r.URL.Query().Get("name")
	if err := CheckName(name); err != nil {
		a.fail(w, fmt.Errorf("%w: %v", errBadName, err))
		return
	}
	if r.ContentLength > MaxBytes {
		writeJSON(w, http.StatusRequestEntityTooLarge, tooLarge())
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBytes))
	if err != nil {
		a.fail(w, err)
		return
	}
	n, err := Parse(body)
	if err != nil {
		a.fail(w, err)
		return
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, body); err != nil { // Parse accepted it: cannot fail
		a.fail(w, err)
		return
	}
	l := Layer{ID: rooms.NewID(), Name: name, Features: n, Bytes: int64(buf.Len()), Author: actor.Label,
		AuthorID: actor.ID, Created: a.Now().UTC().Truncate(time.Millisecond)}
	if err := a.Store.Create(r.Context(), l, buf.Bytes()); err != nil {
		a.fail(w, err)
		return
	}
	a.Log.Info("layer uploaded", "layer", l.ID, "name", l.Name, "features", n, "bytes", l.Bytes, "by", actor.ID)
	a.broadcast(r.Context())
	writeJSON(w, http.StatusCreated, l)
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	if _, err := a.authorize(r, false); err != nil {
		a.fail(w, err)
		return
	}
	items, err := a.Store.List(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, List{Items: nonNil(items)})
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	if _, err := a.authorize(r, false); err != nil {
		a.fail(w, err)
		return
	}
	b, err := a.Store.GeoJSON(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/geo+json")
	// A layer never changes under its id; the token in the header keeps
	// the answer out of shared caches.
	w.Header().Set("Cache-Control", "private, max-age=3600")
	_, _ = w.Write(b)
}

func (a *API) remove(w http.ResponseWriter, r *http.Request) {
	actor, err := a.authorize(r, true)
	if err != nil {
		a.fail(w, err)
		return
	}
	id := chi.URLParam(r, "id")
	if err := a.Store.Delete(r.Context(), id); err != nil {
		a.fail(w, err)
		return
	}
	a.Log.Info("layer deleted", "layer", id, "by", actor.ID)
	a.broadcast(r.Context())
	w.WriteHeader(http.StatusNoContent)
}

// broadcast pushes the current list to every map watcher. The change is
// already stored: a failure here is logged, and watchers still get the list
// by GET /api/v1/layers.
func (a *API) broadcast(ctx context.Context) {
	if a.Map == nil {
		return
	}
	a.announce.Lock()
	defer a.announce.Unlock()
	items, err := a.Store.List(context.WithoutCancel(ctx))
	if err != nil {
		a.Log.Error("layers list for broadcast", "err", err)
		return
	}
	a.Map.Broadcast(rooms.Frame{Data: protocol.Encode(livemap.TypeLayers, "", List{Items: nonNil(items)}), Coalesce: livemap.TypeLayers})
}

func nonNil(items []Layer) []Layer {
	if items == nil {
		return []Layer{}
	}
	return items
}
