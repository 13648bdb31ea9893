package mainlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"crisisroom/access"
)

// MaxBodyBytes bounds a JSON request: an entry of MaxTextRunes characters
// of up to 4 bytes each, and its other fields.
const MaxBodyBytes = 64 << 10

// MoreHeader is set on a page of the list that has a next one (ask for it
// with before= or after= the last entry's ID).
const MoreHeader = "X-More"

// maxMultipartBytes bounds a request with an attachment.
const maxMultipartBytes = MaxAttachmentBytes + MaxBodyBytes + 16<<10

// ErrUnauthenticated is the 401 of Auth.
var ErrUnauthenticated = errors.New("missing, unknown, expired or revoked token")

// API is the HTTP surface, mounted under /api/v1. Every route needs a room
// link (Bearer): members of an event's room, or of a room above it, read;
// hosts and participants write entries; hosts edit the board and the
// taxonomy and create sub-events.
type API struct {
	Svc  *Service
	Auth func(r *http.Request) (Actor, error)
	Loc  *time.Location // of the CSV export's times
	Log  *slog.Logger
}

// Mount registers the routes on r, each with its full pattern: the API
// gate decides on the pattern of the route that matched, so there is no
// sub-router whose mount point could be decided in its routes' stead.
// DELETE, PUT and PATCH on entries are answered 405: the log is
// append-only.
func (a *API) Mount(r chi.Router) {
	const ev = "/events/{slug}"
	r.Get("/events", a.authed(a.events))
	r.Get(ev, a.authed(a.event))
	r.Post(ev+"/events", a.authed(a.createSub))
	r.Post(ev+"/links", a.authed(a.link))
	r.Get(ev+"/log", a.authed(a.list))
	r.Post(ev+"/log", a.authed(a.write))
	r.Get(ev+"/log.csv", a.authed(a.export))
	r.Get(ev+"/log/{id}", a.authed(a.get))
	r.Get(ev+"/log/{id}/attachment", a.authed(a.attachment))
	r.Get(ev+"/board", a.authed(a.board))
	r.Put(ev+"/board", a.authed(a.putBoard))
	r.Get(ev+"/board/history", a.authed(a.boardHistory))
	r.Get(ev+"/tags", a.authed(a.tags))
	r.Put(ev+"/tags", a.authed(a.putTags))
	for _, m := range []string{http.MethodDelete, http.MethodPut, http.MethodPatch} {
		r.MethodFunc(m, ev+"/log", appendOnly("GET, POST"))
		r.MethodFunc(m, ev+"/log/{id}", appendOnly("GET"))
		r.MethodFunc(m, ev+"/log/{id}/attachment", appendOnly("GET"))
	}
	r.MethodFunc(http.MethodPost, ev+"/log/{id}", appendOnly("GET"))
	r.MethodFunc(http.MethodPost, ev+"/log/{id}/attachment", appendOnly("GET"))
}

// appendOnly answers any attempt to change or delete an entry.
func appendOnly(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Allow", allow)
		writeJSON(w, http.StatusMethodNotAllowed, apiError{Error: "append_only",
			Message: "La main courante ne s'efface ni ne se modifie : pour corriger une entrée, écrivez une nouvelle entrée qui la corrige (les deux restent visibles)."})
	}
}

func (a *API) authed(h func(w http.ResponseWriter, r *http.Request, actor Actor)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		actor, err := a.Auth(r)
		if err != nil {
			a.fail(w, err)
			return
		}
		h(w, r, actor)
	}
}

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

var errBadRequest = errors.New("bad request")

// tooLargeMsg says what the limits are, so that the writer knows what to cut.
var tooLargeMsg = fmt.Sprintf("Entrée trop volumineuse : le texte est limité à %d caractères et la pièce jointe à %d Mio. Rien n'a été enregistré ; raccourcissez le texte ou joignez-le en fichier.", MaxTextRunes, MaxAttachmentBytes>>20)

// fail maps errors to HTTP answers in one place.
func (a *API) fail(w http.ResponseWriter, err error) {
	var ve *ValidationError
	var mbe *http.MaxBytesError
	var fe *formError
	switch {
	case errors.As(err, &ve) && ve.TooLarge:
		writeJSON(w, http.StatusRequestEntityTooLarge, apiError{Error: "too_large", Message: "Entrée refusée : " + ve.Error(), Errors: ve.Errors})
	case errors.As(err, &ve):
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: "invalid", Message: "Entrée refusée : " + ve.Error(), Errors: ve.Errors})
	case errors.As(err, &mbe):
		writeJSON(w, http.StatusRequestEntityTooLarge, apiError{Error: "too_large", Message: tooLargeMsg})
	case errors.Is(err, ErrUnauthenticated):
		w.Header().Set("WWW-Authenticate", `Bearer realm="crisisroom"`)
		writeJSON(w, http.StatusUnauthorized, apiError{Error: "unauthenticated", Message: "Lien invalide, expiré ou révoqué."})
	case errors.Is(err, ErrForbidden):
		writeJSON(w, http.StatusForbidden, apiError{Error: "forbidden", Message: "Ce lien ne permet pas cette action."})
	case errors.Is(err, ErrNotFound):
		writeJSON(w, http.StatusNotFound, apiError{Error: "not_found", Message: "Introuvable (ou hors de portée de ce lien)."})
	case errors.Is(err, ErrConflict):
		writeJSON(w, http.StatusConflict, apiError{Error: "conflict", Message: "Le tableau a été modifié entre-temps : rechargez-le, puis refaites votre changement."})
	case errors.Is(err, ErrKeyReused):
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: "idempotency_key_reused",
			Message: "Cette clé d'envoi a déjà servi pour une entrée au contenu différent : rien n'a été enregistré, l'entrée d'origine reste telle quelle. Renvoyez avec une nouvelle clé."})
	case errors.Is(err, ErrUnavailable):
		w.Header().Set("Retry-After", "2")
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "unavailable", Message: "Service momentanément indisponible : rien n'a été enregistré, réessayez."})
	case errors.As(err, &fe):
		writeJSON(w, http.StatusBadRequest, apiError{Error: fe.code, Message: fe.msg})
	case errors.Is(err, errBadRequest):
		writeJSON(w, http.StatusBadRequest, apiError{Error: "bad_request", Message: err.Error()})
	default:
		a.Log.Error("main courante request failed", "err", err)
		writeJSON(w, http.StatusInternalServerError, apiError{Error: "internal", Message: "Erreur interne : rien n'a été enregistré, réessayez."})
	}
}

// decode reads one JSON object strictly.
func decode(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return fmt.Errorf("%w: JSON invalide : %v", errBadRequest, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return fmt.Errorf("%w: données après l'objet JSON", errBadRequest)
	}
	return nil
}

// body reads a JSON body within MaxBodyBytes; an announced larger one is
// refused before a byte of it is read.
func body(w http.ResponseWriter, r *http.Request, v any) error {
	if r.ContentLength > MaxBodyBytes {
		return &http.MaxBytesError{Limit: MaxBodyBytes}
	}
	return decode(http.MaxBytesReader(w, r.Body, MaxBodyBytes), v)
}

// homeRole is the actor's role in its home event and what it may do there,
// for the page to show the right controls (the server decides anyway).
func (a *API) homeRole(actor Actor, home string) (access.Role, []access.Action) {
	chain := a.Svc.Chain(home)
	r, _ := actor.P.RoleIn(chain)
	var can []access.Action
	for _, act := range []access.Action{access.LogRead, access.LogWrite, access.LogManage, access.LinksManage} {
		if access.Decide(actor.P, act, chain) == nil {
			can = append(can, act)
		}
	}
	return r, can
}

func (a *API) events(w http.ResponseWriter, _ *http.Request, actor Actor) {
	home, evs := a.Svc.Tree(actor)
	role, can := a.homeRole(actor, home)
	writeJSON(w, http.StatusOK, map[string]any{"home": home, "events": evs, "role": role, "can": can,
		"kinds": EventKinds, "severities": Severities})
}

func (a *API) event(w http.ResponseWriter, r *http.Request, actor Actor) {
	ev, err := a.Svc.Visible(r.Context(), actor, chi.URLParam(r, "slug"))
	if err != nil {
		a.fail(w, err)
		return
	}
	b, err := a.Svc.BoardOf(r.Context(), actor, ev.Slug)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"event": ev, "board": b})
}

func (a *API) createSub(w http.ResponseWriter, r *http.Request, actor Actor) {
	var in SubInput
	if err := body(w, r, &in); err != nil {
		a.fail(w, err)
		return
	}
	ev, links, err := a.Svc.CreateSub(r.Context(), actor, chi.URLParam(r, "slug"), in)
	if err != nil {
		a.fail(w, err)
		return
	}
	a.Log.Info("sub-event created", "event", ev.Slug, "parent", ev.Parent, "by", actor.ID)
	writeJSON(w, http.StatusCreated, map[string]any{"event": ev, "links": links})
}

func (a *API) link(w http.ResponseWriter, r *http.Request, actor Actor) {
	var in struct {
		Role   string `json:"role"`
		Author string `json:"author"`
	}
	if err := body(w, r, &in); err != nil {
		a.fail(w, err)
		return
	}
	url, err := a.Svc.NewLink(r.Context(), actor, chi.URLParam(r, "slug"), in.Role, in.Author)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"url": url})
}

// write takes a JSON entry, or a multipart form with the entry as JSON in
// the part "entry" and the attachment in the part "file".
func (a *API) write(w http.ResponseWriter, r *http.Request, actor Actor) {
	var in EntryInput
	var file *File
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var err error
	if mt == "multipart/form-data" {
		file, err = a.readMultipart(w, r, &in)
	} else {
		err = body(w, r, &in)
	}
	if err != nil {
		a.fail(w, err)
		return
	}
	e, created, err := a.Svc.Write(r.Context(), actor, chi.URLParam(r, "slug"), in, file)
	if err != nil {
		a.fail(w, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, e)
}

// formError refuses a multipart form that is not one "entry" part and at
// most one "file" part. An entry has one attachment, so an extra part is
// refused rather than dropped: the writer must know it was not kept.
type formError struct{ code, msg string }

func (e *formError) Error() string { return e.msg }

// readMultipart streams the parts: an oversize attachment is refused after
// reading at most MaxAttachmentBytes+1 of it.
func (a *API) readMultipart(w http.ResponseWriter, r *http.Request, in *EntryInput) (*File, error) {
	if r.ContentLength > maxMultipartBytes {
		return nil, &ValidationError{TooLarge: true, Errors: []FieldError{{Field: "file",
			Message: fmt.Sprintf("pièce jointe trop volumineuse : %s, au plus %d Mio", sizeText(r.ContentLength), MaxAttachmentBytes>>20)}}}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxMultipartBytes)
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, fmt.Errorf("%w: formulaire invalide : %v", errBadRequest, err)
	}
	var file *File
	sawEntry := false
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: formulaire invalide : %v", errBadRequest, err)
		}
		switch name := p.FormName(); {
		case name == "entry" && sawEntry:
			return nil, &formError{"duplicate_part", "Le formulaire contient deux fois la partie « entry » : une seule entrée par envoi. Rien n'a été enregistré."}
		case name == "file" && file != nil:
			return nil, &formError{"too_many_files", "Une seule pièce jointe par entrée : ce formulaire en contient plusieurs. Rien n'a été enregistré ; envoyez une entrée par fichier."}
		case name == "entry":
			b, err := io.ReadAll(io.LimitReader(p, MaxBodyBytes+1))
			if err != nil {
				return nil, err
			}
			if len(b) > MaxBodyBytes {
				return nil, &http.MaxBytesError{Limit: MaxBodyBytes}
			}
			if err := decode(bytes.NewReader(b), in); err != nil {
				return nil, err
			}
			sawEntry = true
		case name == "file":
			data, err := io.ReadAll(io.LimitReader(p, MaxAttachmentBytes+1))
			if err != nil {
				return nil, err
			}
			file = &File{Name: p.FileName(), Data: data}
		default:
			return nil, &formError{"unknown_part", fmt.Sprintf("Partie de formulaire inconnue %q : seules « entry » et « file » sont acceptées. Rien n'a été enregistré.", truncate(name, 40))}
		}
	}
	if !sawEntry {
		return nil, fmt.Errorf("%w: la partie \"entry\" (JSON de l'entrée) manque", errBadRequest)
	}
	return file, nil
}

func (a *API) get(w http.ResponseWriter, r *http.Request, actor Actor) {
	e, err := a.Svc.Get(r.Context(), actor, chi.URLParam(r, "slug"), chi.URLParam(r, "id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, e)
}

// attachment serves the file as a download only, in a sandbox: whatever it
// holds never runs as part of the site.
func (a *API) attachment(w http.ResponseWriter, r *http.Request, actor Actor) {
	att, data, err := a.Svc.AttachmentOf(r.Context(), actor, chi.URLParam(r, "slug"), chi.URLParam(r, "id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", att.Type)
	// FormatMediaType quotes the name, or encodes it (RFC 2231) when it is
	// not ASCII.
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": DownloadName(att)}))
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	h.Set("Cache-Control", "private, no-store")
	h.Set("Content-Length", strconv.Itoa(len(data)))
	_, _ = w.Write(data)
}

func (a *API) board(w http.ResponseWriter, r *http.Request, actor Actor) {
	b, err := a.Svc.BoardOf(r.Context(), actor, chi.URLParam(r, "slug"))
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (a *API) putBoard(w http.ResponseWriter, r *http.Request, actor Actor) {
	var in BoardInput
	if err := body(w, r, &in); err != nil {
		a.fail(w, err)
		return
	}
	b, e, err := a.Svc.PutBoard(r.Context(), actor, chi.URLParam(r, "slug"), in)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"board": b, "entry": e})
}

func (a *API) boardHistory(w http.ResponseWriter, r *http.Request, actor Actor) {
	list, err := a.Svc.BoardHistory(r.Context(), actor, chi.URLParam(r, "slug"))
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"versions": nonNil(list)})
}

func (a *API) tags(w http.ResponseWriter, r *http.Request, actor Actor) {
	ev, err := a.Svc.Visible(r.Context(), actor, chi.URLParam(r, "slug"))
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tags": nonNil(ev.Tags)})
}

func (a *API) putTags(w http.ResponseWriter, r *http.Request, actor Actor) {
	var in struct {
		Tags   []Tag  `json:"tags"`
		Author string `json:"author"`
	}
	if err := body(w, r, &in); err != nil {
		a.fail(w, err)
		return
	}
	ev, err := a.Svc.SetTags(r.Context(), actor, chi.URLParam(r, "slug"), in.Tags, in.Author)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tags": nonNil(ev.Tags)})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// list answers GET …/log with a JSON array of entries: filters tag (repeatable), author, from, to, q,
// tree=1 (with the sub-events), after_seq, before / after (an entry ID),
// order=desc, limit.
func (a *API) list(w http.ResponseWriter, r *http.Request, actor Actor) {
	q, tree, err := a.query(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	want := q.Limit
	q.Limit++ // one more tells whether there is a next page
	list, err := a.Svc.List(r.Context(), actor, chi.URLParam(r, "slug"), q, tree)
	if err != nil {
		a.fail(w, err)
		return
	}
	// The body is the list itself; a next page is announced in a header.
	if len(list) > want {
		list = list[:want]
		w.Header().Set(MoreHeader, "true")
	}
	writeJSON(w, http.StatusOK, nonNil(list))
}

// query reads the list's filters.
func (a *API) query(r *http.Request) (Query, bool, error) {
	v := r.URL.Query()
	q := Query{Tags: v["tag"], Author: v.Get("author"), Text: v.Get("q"), Desc: v.Get("order") == "desc", Limit: DefaultLimit}
	var errs []string
	var err error
	if q.From, err = a.parseTime(v.Get("from")); err != nil {
		errs = append(errs, "from : "+err.Error())
	}
	if q.To, err = a.parseTime(v.Get("to")); err != nil {
		errs = append(errs, "to : "+err.Error())
	}
	if s := v.Get("limit"); s != "" {
		if n, err := strconv.Atoi(s); err != nil || n < 1 || n > MaxLimit {
			errs = append(errs, fmt.Sprintf("limit : 1 à %d", MaxLimit))
		} else {
			q.Limit = n
		}
	}
	if s := v.Get("after_seq"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err != nil || n < 0 {
			errs = append(errs, "after_seq : un entier positif")
		} else {
			q.AfterSeq = n
		}
	}
	for name, c := range map[string]**Cursor{"before": &q.Before, "after": &q.After} {
		if s := v.Get(name); s != "" {
			if *c = CursorOf(s); *c == nil {
				errs = append(errs, name+" : identifiant d'entrée invalide")
			}
		}
	}
	if len(q.Text) > 200 || len(q.Author) > 4*MaxNameRunes || len(q.Tags) > 20 {
		errs = append(errs, "filtres trop longs")
	}
	if len(errs) > 0 {
		return q, false, fmt.Errorf("%w: %s", errBadRequest, strings.Join(errs, " ; "))
	}
	return q, v.Get("tree") == "1", nil
}

// parseTime reads RFC 3339, or a local date-time (2006-01-02T15:04) or
// date in the deployment's time zone.
func (a *API) parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, a.Loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("date attendue (2026-11-26, 2026-11-26T14:30 ou RFC 3339)")
}

// CursorOf reads the position of an entry from its ID (whose first 12 hex
// digits are its creation time in milliseconds).
func CursorOf(id string) *Cursor {
	if len(id) < 13 || len(id) > 64 {
		return nil
	}
	ms, err := strconv.ParseInt(id[:12], 16, 64)
	if err != nil {
		return nil
	}
	return &Cursor{At: time.UnixMilli(ms).UTC(), ID: id}
}
