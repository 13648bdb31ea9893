package declarations

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
)

// MaxBodyBytes bounds a request body: a declaration is a few hundred bytes.
const MaxBodyBytes = 16 << 10

// Authenticate turns a request into an Actor. It returns ErrUnauthenticated
// (→ 401) for a missing, unknown, expired or revoked token.
type Authenticate func(r *http.Request) (Actor, error)

// ErrUnauthenticated is the 401 of Authenticate.
var ErrUnauthenticated = errors.New("missing, unknown, expired or revoked token")

// CommuneNamer names a commune for exports and reports.
type CommuneNamer func(code string) string

// API is the HTTP surface of the service, mounted under /api/v1.
type API struct {
	Svc  *Service
	Auth Authenticate
	Name CommuneNamer
}

// Mount registers the routes on r.
func (a *API) Mount(r chi.Router) {
	r.Post("/declarations", a.authed(a.declare))
	r.Get("/declarations", a.authed(a.list))
	r.Get("/declarations/{id}", a.authed(a.get))
	r.Post("/declarations/{id}/amendments", a.authed(a.amend))
	r.Get("/aggregates", a.authed(a.aggregates))
	r.Get("/export.csv", a.authed(a.export))
	r.Get("/report", a.authed(a.report))
	r.Get("/me", a.authed(a.me))
}

// authed resolves the caller once for every route: no route runs without
// an actor, and the 401 answer is the same everywhere.
func (a *API) authed(h func(w http.ResponseWriter, r *http.Request, actor Actor)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		actor, err := a.Auth(r)
		if err != nil {
			fail(w, err)
			return
		}
		h(w, r, actor)
	}
}

// apiError is the body of every error answer.
type apiError struct {
	Error   string       `json:"error"`
	Message string       `json:"message"`
	Errors  []FieldError `json:"errors,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeDeclaration is writeJSON of one declaration (the same bytes), on
// the path every declaration takes, without reflection.
func writeDeclaration(w http.ResponseWriter, status int, d *Declaration) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(d.appendJSON(make([]byte, 0, 512)), '\n'))
}

// fail maps domain errors to HTTP answers in one place.
func fail(w http.ResponseWriter, err error) {
	var ve *ValidationError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ve):
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: "invalid", Message: "Déclaration invalide.", Errors: ve.Errors})
	case errors.Is(err, ErrKeyReused):
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: "idempotency_key_reused",
			Message: "Cette clé d'envoi a déjà servi pour une déclaration aux valeurs différentes : rien n'a été enregistré ni compté, la déclaration d'origine reste telle quelle. Pour la modifier, utilisez « corriger » dans l'historique."})
	case errors.Is(err, ErrUnauthenticated):
		w.Header().Set("WWW-Authenticate", `Bearer realm="crisisroom"`)
		writeJSON(w, http.StatusUnauthorized, apiError{Error: "unauthenticated", Message: "Lien invalide, expiré ou révoqué."})
	case errors.Is(err, ErrForbidden):
		writeJSON(w, http.StatusForbidden, apiError{Error: "forbidden", Message: "Ce lien ne permet pas cette action."})
	case errors.Is(err, ErrNotFound):
		writeJSON(w, http.StatusNotFound, apiError{Error: "not_found", Message: "Déclaration introuvable."})
	case errors.As(err, &mbe):
		writeJSON(w, http.StatusRequestEntityTooLarge, apiError{Error: "too_large", Message: fmt.Sprintf("Requête trop volumineuse (max %d octets).", mbe.Limit)})
	case errors.Is(err, errBadJSON):
		writeJSON(w, http.StatusBadRequest, apiError{Error: "bad_json", Message: err.Error()})
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrClosed):
		// Nothing was stored: the client keeps the declaration and retries
		// with the same key.
		w.Header().Set("Retry-After", "2")
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "unavailable", Message: "Service momentanément indisponible, nouvel essai automatique."})
	default:
		writeJSON(w, http.StatusInternalServerError, apiError{Error: "internal", Message: "Erreur interne."})
	}
}

var errBadJSON = errors.New("malformed JSON")

// DecodeInput reads one declaration body strictly: one JSON object, known
// fields only, within MaxBodyBytes. A declaration of the usual shape is
// read by parseInput, anything else by the standard decoder.
func DecodeInput(r io.Reader, v any) error {
	if in, ok := v.(*Input); ok {
		body, err := io.ReadAll(r)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return err
			}
			return fmt.Errorf("%w: %v", errBadJSON, err)
		}
		parsed := *in
		if parseInput(body, &parsed) {
			*in = parsed
			return nil
		}
		r = bytes.NewReader(body)
	}
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return fmt.Errorf("%w: %v", errBadJSON, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data after the object", errBadJSON)
	}
	if _, err := dec.Token(); err != io.EOF {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return fmt.Errorf("%w: trailing data after the object", errBadJSON)
	}
	return nil
}

func (a *API) declare(w http.ResponseWriter, r *http.Request, actor Actor) {
	if actor.Viewer && !actor.Operator {
		fail(w, ErrForbidden)
		return
	}
	var in Input
	if err := DecodeInput(http.MaxBytesReader(w, r.Body, MaxBodyBytes), &in); err != nil {
		fail(w, err)
		return
	}
	d, created, err := a.Svc.Declare(r.Context(), actor, in)
	if err != nil {
		fail(w, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeDeclaration(w, status, &d)
}

func (a *API) amend(w http.ResponseWriter, r *http.Request, actor Actor) {
	if actor.Viewer && !actor.Operator {
		fail(w, ErrForbidden)
		return
	}
	var am Amendment
	if err := DecodeInput(http.MaxBytesReader(w, r.Body, MaxBodyBytes), &am); err != nil {
		fail(w, err)
		return
	}
	d, err := a.Svc.Amend(r.Context(), actor, chi.URLParam(r, "id"), am)
	if err != nil {
		fail(w, err)
		return
	}
	writeDeclaration(w, http.StatusOK, &d)
}

// scope returns the commune an actor may read: a declarant only its own.
func scope(actor Actor, asked string) (string, error) {
	if actor.Operator || actor.Viewer {
		return asked, nil
	}
	if asked != "" && asked != actor.Commune {
		return "", ErrForbidden
	}
	return actor.Commune, nil
}

func (a *API) list(w http.ResponseWriter, r *http.Request, actor Actor) {
	commune, err := scope(actor, r.URL.Query().Get("commune"))
	if err != nil {
		fail(w, err)
		return
	}
	list, err := a.Svc.History(r.Context(), commune)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"commune": commune, "declarations": list})
}

func (a *API) get(w http.ResponseWriter, r *http.Request, actor Actor) {
	d, revs, err := a.Svc.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		fail(w, err)
		return
	}
	if _, err := scope(actor, d.Commune); err != nil {
		fail(w, ErrNotFound) // do not confirm another commune's ids exist
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"declaration": d, "revisions": revs})
}

func (a *API) aggregates(w http.ResponseWriter, r *http.Request, actor Actor) {
	commune, err := scope(actor, r.URL.Query().Get("commune"))
	if err != nil {
		fail(w, err)
		return
	}
	if commune != "" {
		if !a.Svc.cfg.Rules.KnownCommune(commune) {
			writeJSON(w, http.StatusNotFound, apiError{Error: "unknown_commune", Message: "Commune inconnue : " + commune})
			return
		}
		st := a.Svc.State(commune)
		writeJSON(w, http.StatusOK, struct {
			CommuneState
			Name string `json:"name"`
		}{st, a.Name(commune)})
		return
	}
	dep := a.Svc.State("")
	writeJSON(w, http.StatusOK, struct {
		CommuneState
		Communes []CommuneState `json:"communes"`
	}{dep, a.Svc.Snapshot()})
}

func (a *API) me(w http.ResponseWriter, r *http.Request, actor Actor) {
	rules := a.Svc.Rules()
	writeJSON(w, http.StatusOK, map[string]any{
		"label": actor.Label, "operator": actor.Operator, "commune": actor.Commune, "commune_name": a.Name(actor.Commune),
		"today": rules.Today(), "event_start": rules.EventStart, "max_count": rules.MaxCount, "places": Places,
	})
}

// csvField quotes a field for a ';'-separated file when needed.
func csvField(s string) string {
	if strings.ContainsAny(s, ";\"\r\n") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}
