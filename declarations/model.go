// Package declarations is the declaration domain: communes declare deaths
// as non-nominative counts qualified by place; every declaration is taken
// exactly once and durably, corrected only by amendments that keep an audit
// trail, and summed into aggregates and alert levels.
package declarations

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Place is where the deaths occurred.
type Place string

// The places a declaration can name.
const (
	Domicile Place = "domicile"
	EHPAD    Place = "ehpad"
	Hopital  Place = "hopital"
	Autre    Place = "autre"
)

// Places lists the places in display order.
var Places = []Place{Domicile, EHPAD, Hopital, Autre}

func validPlace(p string) bool {
	for _, q := range Places {
		if string(q) == p {
			return true
		}
	}
	return false
}

// DateLayout is the wire and storage form of a day.
const DateLayout = "2006-01-02"

// Input is what a declarant sends (the public JSON contract).
type Input struct {
	Commune        string `json:"commune"`
	Date           string `json:"date"`
	Place          string `json:"place"`
	Count          int    `json:"count"`
	Note           string `json:"note"`
	IdempotencyKey string `json:"idempotency_key"`
}

// Actor is who acts, as established by the caller's token.
type Actor struct {
	ID    string // link or account id; the audit trail names it
	Label string
	// Commune restricts a declarant to one commune; empty for operators.
	Commune string
	// Operator may act for any commune and amend anyone's declaration.
	Operator bool
	// Viewer may read every commune's figures (a room member looking at
	// the map) but declares nothing.
	Viewer bool
}

// Declaration is a stored declaration with its current (amended) values.
type Declaration struct {
	ID             string    `json:"id"`
	Commune        string    `json:"commune"`
	Date           string    `json:"date"`
	Place          string    `json:"place"`
	Count          int       `json:"count"`
	Note           string    `json:"note"`
	IdempotencyKey string    `json:"idempotency_key"`
	Declarant      string    `json:"declarant"`
	DeclarantLabel string    `json:"declarant_label,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	Revision       int       `json:"revision"` // 1 = as declared; +1 per amendment
}

// Amendment corrects a declaration. Nil fields are unchanged. Count may
// become 0: a declaration made in error is cancelled, not deleted.
type Amendment struct {
	Date   *string `json:"date,omitempty"`
	Place  *string `json:"place,omitempty"`
	Count  *int    `json:"count,omitempty"`
	Note   *string `json:"note,omitempty"`
	Reason string  `json:"reason"`
}

// Revision is one entry of a declaration's audit trail: the values it had
// from At on, who set them and why.
type Revision struct {
	DeclarationID string    `json:"declaration_id"`
	Revision      int       `json:"revision"`
	Date          string    `json:"date"`
	Place         string    `json:"place"`
	Count         int       `json:"count"`
	Note          string    `json:"note"`
	Reason        string    `json:"reason"`
	Actor         string    `json:"actor"`
	ActorLabel    string    `json:"actor_label,omitempty"`
	At            time.Time `json:"at"`
}

// FieldError is one validation failure, in both languages of the UI.
type FieldError struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`    // French: what the mayor sees
	English string `json:"message_en"` // for partners and logs
}

// ValidationError lists every failure of one input.
type ValidationError struct {
	Errors []FieldError `json:"errors"`
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, f := range e.Errors {
		parts[i] = f.Field + ": " + f.English
	}
	return "invalid declaration: " + strings.Join(parts, "; ")
}

func (e *ValidationError) add(field, code, fr, en string) {
	e.Errors = append(e.Errors, FieldError{Field: field, Code: code, Message: fr, English: en})
}

// Rules are the validation settings of one deployment.
type Rules struct {
	// KnownCommune reports whether a code is a commune of the territory.
	KnownCommune func(code string) bool
	EventStart   string // first day declarations may name (YYYY-MM-DD); empty = no bound
	MaxCount     int    // per declaration; larger numbers are typing errors or mass events handled otherwise
	Location     *time.Location
	Now          func() time.Time
}

// MaxNoteRunes bounds the free-text note.
const MaxNoteRunes = 500

// validKey reports whether an idempotency key is 8 to 100 characters of
// A-Z a-z 0-9 _ - (a loop: it runs on every declaration).
func validKey(k string) bool {
	if len(k) < 8 || len(k) > 100 {
		return false
	}
	for i := 0; i < len(k); i++ {
		switch c := k[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// Today is the current day in the deployment's time zone.
func (r Rules) Today() string { return r.Now().In(r.Location).Format(DateLayout) }

// Validate checks an input against the rules; the error lists every
// problem at once so a phone user fixes them in one go.
func (r Rules) Validate(in Input) error {
	ve := &ValidationError{}
	if !r.KnownCommune(in.Commune) {
		ve.add("commune", "unknown_commune", fmt.Sprintf("Commune inconnue : %q.", in.Commune), fmt.Sprintf("unknown commune %q", in.Commune))
	}
	r.checkDate(ve, in.Date)
	if !validPlace(in.Place) {
		ve.add("place", "unknown_place", "Lieu inconnu : choisissez domicile, EHPAD, hôpital ou autre.", fmt.Sprintf("unknown place %q (domicile, ehpad, hopital, autre)", in.Place))
	}
	if in.Count < 1 || in.Count > r.MaxCount {
		ve.add("count", "count_out_of_range", fmt.Sprintf("Le nombre doit être compris entre 1 et %d.", r.MaxCount), fmt.Sprintf("count must be between 1 and %d", r.MaxCount))
	}
	checkNote(ve, in.Note)
	if !validKey(in.IdempotencyKey) {
		ve.add("idempotency_key", "bad_idempotency_key", "Clé d'envoi invalide (rechargez la page).", "idempotency_key: 8 to 100 characters of A-Z a-z 0-9 _ -")
	}
	if len(ve.Errors) > 0 {
		return ve
	}
	return nil
}

func (r Rules) checkDate(ve *ValidationError, s string) {
	d, err := time.Parse(DateLayout, s)
	switch {
	case err != nil:
		ve.add("date", "bad_date", "Date invalide (format AAAA-MM-JJ).", "date: use YYYY-MM-DD")
	case d.Format(DateLayout) > r.Today():
		ve.add("date", "date_in_future", "La date ne peut pas être dans le futur.", "date is in the future")
	case r.EventStart != "" && s < r.EventStart:
		ve.add("date", "date_before_event", fmt.Sprintf("La date est antérieure au début de l'événement (%s).", r.EventStart), "date is before the event's start "+r.EventStart)
	}
}

func checkNote(ve *ValidationError, note string) {
	if !utf8.ValidString(note) || utf8.RuneCountInString(note) > MaxNoteRunes {
		ve.add("note", "note_too_long", fmt.Sprintf("La note est limitée à %d caractères.", MaxNoteRunes), fmt.Sprintf("note: at most %d characters of valid UTF-8", MaxNoteRunes))
	}
}

// ValidateAmendment checks an amendment's new values.
func (r Rules) ValidateAmendment(a Amendment) error {
	ve := &ValidationError{}
	if a.Date != nil {
		r.checkDate(ve, *a.Date)
	}
	if a.Place != nil && !validPlace(*a.Place) {
		ve.add("place", "unknown_place", "Lieu inconnu.", fmt.Sprintf("unknown place %q", *a.Place))
	}
	if a.Count != nil && (*a.Count < 0 || *a.Count > r.MaxCount) {
		ve.add("count", "count_out_of_range", fmt.Sprintf("Le nombre corrigé doit être compris entre 0 et %d.", r.MaxCount), fmt.Sprintf("amended count must be between 0 and %d", r.MaxCount))
	}
	if a.Note != nil {
		checkNote(ve, *a.Note)
	}
	if n := utf8.RuneCountInString(strings.TrimSpace(a.Reason)); n == 0 || n > MaxNoteRunes {
		ve.add("reason", "reason_required", "Indiquez le motif de la correction.", "reason: required, at most 500 characters")
	}
	if a.Date == nil && a.Place == nil && a.Count == nil && a.Note == nil {
		ve.add("amendment", "nothing_to_change", "La correction ne change rien.", "the amendment changes nothing")
	}
	if len(ve.Errors) > 0 {
		return ve
	}
	return nil
}
