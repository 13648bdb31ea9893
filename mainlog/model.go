// Package mainlog is the "main courante": each crisis event's running log,
// its sub-events (a tree, each with its own log and room) and the
// risk-situation board pinned on top of it.
//
// The log is append-only. Nothing here, in the store interface or in the
// HTTP API, deletes or rewrites an entry: a correction is a new entry that
// names the one it corrects, and both stay. Board changes are versioned and
// each one is logged too.
package mainlog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Entry kinds: who or what wrote the entry.
const (
	KindNote   = "note"   // typed by a member
	KindChat   = "chat"   // a room chat message promoted by a member
	KindBoard  = "board"  // a change of the risk-situation board
	KindSystem = "system" // written by the server (alert levels, sub-events, taxonomy)
)

// Event kinds (the level a sub-event works at). The root event is strategic.
var EventKinds = []string{"strategique", "tactique", "communication", "operationnel"}

// Severities of the board, lowest first: the French vigilance colours.
var Severities = []string{"vert", "jaune", "orange", "rouge"}

// Limits.
const (
	MaxTextRunes       = 10_000
	MaxTags            = 10
	MaxNameRunes       = 64
	MaxTitleRunes      = 120
	MaxBoardFieldRunes = 4000
	MaxNextPointRunes  = 200
	MaxTaxonomy        = 60
	MaxTagLabelRunes   = 40
	MaxAttachmentBytes = 5 << 20
	MaxAttachNameRunes = 200
	MaxKeyLen          = 64
	// MaxEventTimeSkew is how far in the future an "event time" may be
	// (clocks differ a little between a phone and the server).
	MaxEventTimeSkew = 5 * time.Minute
)

// Event is a crisis event or one of its sub-events. Its room is where its
// members meet (same name as the slug).
type Event struct {
	Slug      string    `json:"slug"`
	Parent    string    `json:"parent"` // "" for a root event
	Title     string    `json:"title"`
	Kind      string    `json:"kind"`
	Room      string    `json:"room"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	// LastSeq is the number of the event's latest entry (entries are
	// numbered 1, 2, 3… per event, without gaps).
	LastSeq int64 `json:"last_seq"`
	Tags    []Tag `json:"tags"`
}

// Tag is one word of an event's taxonomy. A tag is never deleted (old
// entries keep pointing at it); an operator retires it instead.
type Tag struct {
	ID      string `json:"id"`
	Label   string `json:"label"`
	Retired bool   `json:"retired,omitempty"`
}

// DefaultTags is the taxonomy of a new event.
func DefaultTags() []Tag {
	return []Tag{
		{ID: "decision", Label: "décision"},
		{ID: "coordination", Label: "coordination"},
		{ID: "veille-sanitaire", Label: "veille sanitaire"},
		{ID: "personnel", Label: "personnel"},
		{ID: "continuite", Label: "continuité"},
		{ID: "elections", Label: "élections"},
		{ID: "personnes-vulnerables", Label: "personnes vulnérables"},
		{ID: "hebergement-urgence", Label: "hébergement d'urgence"},
		{ID: "dechets", Label: "déchets"},
		{ID: "transport", Label: "transport"},
		{ID: "communication", Label: "communication"},
	}
}

// Entry is one line of a main courante.
type Entry struct {
	ID    string `json:"id"`
	Event string `json:"event"`
	Seq   int64  `json:"seq"`
	Kind  string `json:"kind"`
	Text  string `json:"text"`
	// Tags are tag IDs of the event's taxonomy.
	Tags []string `json:"tags"`
	// AuthorID is the link the entry was written with ("system" for the
	// server); AuthorName the name the member gave; AuthorLabel the
	// link's label (who the link was issued to).
	AuthorID    string `json:"author_id"`
	AuthorName  string `json:"author_name"`
	AuthorLabel string `json:"author_label"`
	// CreatedAt is the server's time of recording; EventTime, when set,
	// is when it happened (recorded late).
	CreatedAt time.Time  `json:"created_at"`
	EventTime *time.Time `json:"event_time,omitempty"`
	// Commune (INSEE code) and Annotation (map annotation ID) link the
	// entry to the map.
	Commune    string `json:"commune,omitempty"`
	Annotation string `json:"annotation,omitempty"`
	// Corrects is the ID of the entry this one corrects; CorrectedBy
	// lists the entries correcting this one (filled on reading).
	Corrects    string   `json:"corrects,omitempty"`
	CorrectedBy []string `json:"corrected_by,omitempty"`
	// Chat is the promoted message's author and time (Kind chat).
	Chat       *ChatSource `json:"chat,omitempty"`
	Attachment *Attachment `json:"attachment,omitempty"`
	// Key makes a write idempotent: a second Append with the same key
	// returns the first entry. Scoped by the caller (link ID, "alert:").
	Key string `json:"-"`
}

// Occurred is when the entry's fact happened: its event time if recorded
// late, else its recording time. Period filters use it.
func (e Entry) Occurred() time.Time {
	if e.EventTime != nil {
		return *e.EventTime
	}
	return e.CreatedAt
}

// ChatSource is the chat message an entry was promoted from.
type ChatSource struct {
	Name string    `json:"name"`
	At   time.Time `json:"at"`
}

// Attachment describes an entry's file; the bytes are read separately.
type Attachment struct {
	Name   string `json:"name"`
	Type   string `json:"type"` // sniffed from the content, never taken from the client
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Board is one version of an event's risk-situation board. Version 0 is
// the empty board of a new event.
type Board struct {
	Event      string    `json:"event"`
	Version    int64     `json:"version"`
	Severity   string    `json:"severity"` // one of Severities, "" before the first version
	Criteria   string    `json:"criteria"`
	Situation  string    `json:"situation"`
	Stakes     string    `json:"stakes"`
	Means      string    `json:"means"`
	NextPoint  string    `json:"next_point"`
	AuthorID   string    `json:"author_id"`
	AuthorName string    `json:"author_name"`
	At         time.Time `json:"at"`
}

// Query selects entries. Entries come oldest first (CreatedAt, then ID)
// unless Desc.
type Query struct {
	Events []string  // required: the events whose entries to read
	Tags   []string  // entries carrying any of these tags
	Author string    // exact author name
	From   time.Time // Occurred() >= From
	To     time.Time // Occurred() < To
	Text   string    // full-text search (words, all required)
	// AfterSeq reads the entries of Events[0] numbered above it.
	AfterSeq int64
	// After/Before are cursors: entries strictly after (or before) the
	// entry with this CreatedAt and ID in the order.
	After, Before *Cursor
	Desc          bool
	Limit         int // 0 = DefaultLimit
}

// Cursor is a position in the order of entries.
type Cursor struct {
	At time.Time
	ID string
}

// Limits of a query's page.
const (
	DefaultLimit = 200
	MaxLimit     = 5000
)

// Store keeps events, entries, boards and attachments. Implementations
// live in store/...; each must pass mainlogtest.Run. There is no way to
// delete or change an entry: that is the point.
type Store interface {
	// CreateEvent stores a new event with its taxonomy and LastSeq 0.
	// ErrExists if the slug is taken.
	CreateEvent(ctx context.Context, e Event) error
	// Events returns every event with its LastSeq and taxonomy, oldest
	// first.
	Events(ctx context.Context) ([]Event, error)
	// Append numbers e (the event's LastSeq+1) and stores it, with its
	// attachment's bytes if any, in one transaction. If e.Key is set and
	// an entry of the event already has it, nothing is written and that
	// entry is returned with dup=true. ErrNotFound for an unknown event.
	Append(ctx context.Context, e Entry, attachment []byte) (stored Entry, dup bool, err error)
	// Entry returns one entry of an event, with CorrectedBy.
	Entry(ctx context.Context, event, id string) (Entry, error)
	// Entries returns a page of entries, with CorrectedBy.
	Entries(ctx context.Context, q Query) ([]Entry, error)
	// AttachmentData returns the bytes of an entry's attachment.
	AttachmentData(ctx context.Context, event, id string) ([]byte, error)
	// PutBoard stores b (b.Version must be the current version + 1,
	// else ErrConflict) and appends e, which logs the change, in one
	// transaction.
	PutBoard(ctx context.Context, b Board, e Entry) (Entry, error)
	// Board returns the current board (version 0, empty, if none).
	Board(ctx context.Context, event string) (Board, error)
	// Boards returns every version of the board, oldest first.
	Boards(ctx context.Context, event string) ([]Board, error)
	// SetTags replaces the event's taxonomy and appends e, which logs
	// the change, in one transaction.
	SetTags(ctx context.Context, event string, tags []Tag, e Entry) (Entry, error)
}

// Errors.
var (
	ErrNotFound  = errors.New("not found")
	ErrExists    = errors.New("already exists")
	ErrConflict  = errors.New("the board changed meanwhile")
	ErrForbidden = errors.New("not allowed for this link")
	// ErrKeyReused: an idempotency key already names an entry with other
	// content (422; the original is unchanged).
	ErrKeyReused = errors.New("idempotency key already used for another entry")
	// ErrUnavailable: the store cannot answer now (503, retry).
	ErrUnavailable = errors.New("temporarily unavailable")
)

// ValidationError lists what is wrong with an input, field by field.
type ValidationError struct {
	Errors []FieldError
	// TooLarge tells a size limit (413) from a malformed field (422).
	TooLarge bool
}

// FieldError is one field's problem, in French (the UI shows it).
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, f := range e.Errors {
		parts[i] = f.Field + ": " + f.Message
	}
	return strings.Join(parts, "; ")
}

func (e *ValidationError) add(field, format string, args ...any) {
	e.Errors = append(e.Errors, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (e *ValidationError) err() error {
	if len(e.Errors) == 0 {
		return nil
	}
	return e
}

// cleanText normalises line ends and refuses control characters other
// than newline and tab. It returns the text and its length in runes.
func cleanText(s string) (string, int, bool) {
	if !utf8.ValidString(s) {
		return "", 0, false
	}
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
	n := 0
	for _, r := range s {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f {
			return "", 0, false
		}
		n++
	}
	return s, n, true
}

// cleanLine is cleanText for one-line fields (names, titles).
func cleanLine(s string) (string, int, bool) {
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, "\n\t") {
		return "", 0, false
	}
	return cleanText(s)
}

func validKind(k string) bool {
	for _, x := range EventKinds {
		if x == k {
			return true
		}
	}
	return false
}

func validSeverity(s string) bool {
	for _, x := range Severities {
		if x == s {
			return true
		}
	}
	return false
}

// severityIndex orders severities (-1 for none).
func severityIndex(s string) int {
	for i, x := range Severities {
		if x == s {
			return i
		}
	}
	return -1
}

// SearchWords splits a search into words (letters and digits): the
// stores build their full-text queries from these, so that whatever a
// person types is a search and never query syntax. At most 10 words.
func SearchWords(q string) []string {
	words := strings.FieldsFunc(q, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	if len(words) > 10 {
		words = words[:10]
	}
	return words
}
