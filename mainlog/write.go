package mainlog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// EntryInput is what a member sends to write an entry.
type EntryInput struct {
	Text string   `json:"text"`
	Tags []string `json:"tags"`
	// Author is the writer's display name (the name given on entering
	// the room); the link's label stands in when it is empty.
	Author     string      `json:"author"`
	EventTime  *time.Time  `json:"event_time"`
	Commune    string      `json:"commune"`
	Annotation string      `json:"annotation"`
	Corrects   string      `json:"corrects"`
	Chat       *ChatSource `json:"chat"`
	// Key makes a retried submission idempotent (per link).
	Key string `json:"key"`
}

// File is an uploaded attachment as received.
type File struct {
	Name string
	Data []byte
}

// Write validates and appends an entry to the event. created is false when
// the same link already wrote the same entry with the same key: that one
// is returned. The same key with other content is ErrKeyReused, and
// nothing is written.
func (s *Service) Write(ctx context.Context, a Actor, slug string, in EntryInput, f *File) (Entry, bool, error) {
	ev, err := s.Visible(ctx, a, slug)
	if err != nil {
		return Entry{}, false, err
	}
	now := s.now()
	e, err := s.entryFrom(ctx, ev, a, in, now)
	if err != nil {
		return Entry{}, false, err
	}
	var data []byte
	if f != nil {
		att, err := checkFile(f)
		if err != nil {
			return Entry{}, false, err
		}
		e.Attachment, data = &att, f.Data
	}
	stamp, unlock := s.lock(slug)
	defer unlock()
	stamp(&e)
	stored, dup, err := s.st.Append(ctx, e, data)
	if err != nil {
		return Entry{}, false, err
	}
	if dup && !sameContent(stored, e) {
		return Entry{}, false, ErrKeyReused
	}
	if !dup {
		s.publish(ctx, change{Entry: &stored})
	}
	return stored, !dup, nil
}

// sameContent reports whether a retry carries the entry that was stored
// under its key. Both sides went through entryFrom and checkFile, so the
// comparison is of normalised values (tag IDs, cleaned text and names,
// times to the millisecond), not of the bytes sent. Tags are a set.
// Who wrote it is not compared: the key is already scoped by link.
func sameContent(a, b Entry) bool {
	if a.Kind != b.Kind || a.Text != b.Text || a.AuthorName != b.AuthorName || a.Commune != b.Commune ||
		a.Annotation != b.Annotation || a.Corrects != b.Corrects || !sameTags(a.Tags, b.Tags) {
		return false
	}
	if (a.EventTime == nil) != (b.EventTime == nil) || a.EventTime != nil && !a.EventTime.Equal(*b.EventTime) {
		return false
	}
	if (a.Chat == nil) != (b.Chat == nil) || a.Chat != nil && (a.Chat.Name != b.Chat.Name || !a.Chat.At.Equal(b.Chat.At)) {
		return false
	}
	if (a.Attachment == nil) != (b.Attachment == nil) {
		return false
	}
	// The stored name through DownloadName: an entry stored before names
	// were cleaned is compared as its retry's name is cleaned now.
	return a.Attachment == nil || a.Attachment.SHA256 == b.Attachment.SHA256 && DownloadName(*a.Attachment) == b.Attachment.Name
}

func sameTags(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// entryFrom checks every field of in and builds the entry (not numbered
// yet). All problems are reported at once.
func (s *Service) entryFrom(ctx context.Context, ev Event, a Actor, in EntryInput, now time.Time) (Entry, error) {
	ve := &ValidationError{}
	text, n, ok := cleanText(in.Text)
	switch {
	case !ok:
		ve.add("text", "texte invalide : caractères de contrôle ou encodage autre qu'UTF-8")
	case n > MaxTextRunes:
		ve.TooLarge = true
		ve.add("text", "texte trop long : %d caractères, au plus %d", n, MaxTextRunes)
	case strings.TrimSpace(text) == "":
		ve.add("text", "texte obligatoire")
	}
	e := Entry{Event: ev.Slug, Kind: KindNote, Text: text, AuthorID: a.ID, AuthorLabel: a.Label,
		AuthorName: s.authorName(ve, a, in.Author), Commune: in.Commune, Annotation: in.Annotation}
	e.Tags = resolveTags(ve, ev.Tags, in.Tags)
	if in.EventTime != nil {
		t := in.EventTime.UTC().Truncate(time.Millisecond)
		switch {
		case t.After(now.Add(MaxEventTimeSkew)):
			ve.add("event_time", "l'heure de l'événement est dans le futur")
		case t.Before(now.AddDate(-1, 0, 0)):
			ve.add("event_time", "l'heure de l'événement a plus d'un an")
		default:
			e.EventTime = &t
		}
	}
	if in.Chat != nil {
		e.Kind = KindChat
		e.Chat = s.chatSource(ve, in.Chat, now)
	}
	if len(in.Key) > MaxKeyLen {
		ve.add("key", "clé d'idempotence trop longue (au plus %d caractères)", MaxKeyLen)
	} else if in.Key != "" {
		e.Key = a.ID + ":" + in.Key
	}
	s.checkLinks(ctx, ve, ev, &e, in.Corrects)
	if err := ve.err(); err != nil {
		return Entry{}, err
	}
	return e, nil
}

func (s *Service) authorName(ve *ValidationError, a Actor, name string) string {
	name, n, ok := cleanLine(name)
	switch {
	case !ok || n > MaxNameRunes:
		ve.add("author", "nom : 1 à %d caractères, sans caractère de contrôle", MaxNameRunes)
	case n == 0:
		return a.Label
	}
	return name
}

func (s *Service) chatSource(ve *ValidationError, c *ChatSource, now time.Time) *ChatSource {
	name, n, ok := cleanLine(c.Name)
	if !ok || n == 0 || n > MaxNameRunes {
		ve.add("chat.name", "auteur du message : 1 à %d caractères", MaxNameRunes)
	}
	at := c.At.UTC().Truncate(time.Millisecond)
	if at.IsZero() || at.After(now.Add(MaxEventTimeSkew)) || at.Before(now.AddDate(-1, 0, 0)) {
		ve.add("chat.at", "heure du message invalide")
	}
	return &ChatSource{Name: name, At: at}
}

// checkLinks checks the commune, the annotation and the corrected entry.
func (s *Service) checkLinks(ctx context.Context, ve *ValidationError, ev Event, e *Entry, corrects string) {
	if e.Commune != "" && (s.cfg.KnownCommune == nil || !s.cfg.KnownCommune(e.Commune)) {
		ve.add("commune", "commune inconnue : %q (code INSEE attendu)", truncate(e.Commune, 20))
	}
	if e.Annotation != "" {
		ok := false
		if s.cfg.AnnotationExists != nil && len(e.Annotation) <= 64 {
			var err error
			if ok, err = s.cfg.AnnotationExists(ctx, ev.Room, e.Annotation); err != nil {
				s.log.Warn("check annotation", "err", err)
			}
		}
		if !ok {
			ve.add("annotation", "annotation introuvable sur la carte de cette salle")
		}
	}
	if corrects == "" {
		return
	}
	if len(corrects) > 64 {
		ve.add("corrects", "entrée corrigée introuvable")
		return
	}
	if _, err := s.st.Entry(ctx, ev.Slug, corrects); err != nil {
		if !errors.Is(err, ErrNotFound) {
			s.log.Warn("check corrected entry", "err", err)
		}
		ve.add("corrects", "entrée corrigée introuvable dans cette main courante")
		return
	}
	e.Corrects = corrects
}

// resolveTags maps the given tags (IDs or labels, any case) to the IDs of
// the event's live taxonomy.
func resolveTags(ve *ValidationError, taxonomy []Tag, given []string) []string {
	out := []string{}
	if len(given) > MaxTags {
		ve.add("tags", "au plus %d étiquettes par entrée", MaxTags)
		return out
	}
	seen := map[string]bool{}
	for _, g := range given {
		id := ""
		for _, t := range taxonomy {
			if !t.Retired && (strings.EqualFold(t.ID, g) || strings.EqualFold(t.Label, strings.TrimSpace(g))) {
				id = t.ID
				break
			}
		}
		if id == "" {
			ve.add("tags", "étiquette inconnue : %q (étiquettes de cet événement : %s)", truncate(g, 40), tagList(taxonomy))
			continue
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func tagList(tags []Tag) string {
	var names []string
	for _, t := range tags {
		if !t.Retired {
			names = append(names, t.Label)
		}
	}
	return strings.Join(names, ", ")
}

// System appends an entry written by the server. A non-empty key makes it
// happen once, whichever instance of a cluster writes it first.
func (s *Service) System(ctx context.Context, slug, text, commune, key string) (Entry, error) {
	if _, err := s.event(ctx, slug); err != nil {
		return Entry{}, err
	}
	e := Entry{Event: slug, Kind: KindSystem, Text: text, Tags: []string{}, AuthorID: "system",
		AuthorName: "système", AuthorLabel: "système", Commune: commune, Key: key}
	stamp, unlock := s.lock(slug)
	defer unlock()
	stamp(&e)
	stored, dup, err := s.st.Append(ctx, e, nil)
	if err == nil && !dup {
		s.publish(ctx, change{Entry: &stored})
	}
	return stored, err
}

// List reads the event's entries (and with tree, those of the sub-events
// whose log the actor reads).
func (s *Service) List(ctx context.Context, a Actor, slug string, q Query, tree bool) ([]Entry, error) {
	if _, err := s.Visible(ctx, a, slug); err != nil {
		return nil, err
	}
	q.Events = []string{slug}
	if tree {
		q.Events = s.subtree(a, slug)
	}
	return s.st.Entries(ctx, q)
}

// Get reads one entry.
func (s *Service) Get(ctx context.Context, a Actor, slug, id string) (Entry, error) {
	if _, err := s.Visible(ctx, a, slug); err != nil {
		return Entry{}, err
	}
	return s.st.Entry(ctx, slug, id)
}

// AttachmentOf returns an entry's attachment and its bytes.
func (s *Service) AttachmentOf(ctx context.Context, a Actor, slug, id string) (Attachment, []byte, error) {
	e, err := s.Get(ctx, a, slug, id)
	if err != nil {
		return Attachment{}, nil, err
	}
	if e.Attachment == nil {
		return Attachment{}, nil, ErrNotFound
	}
	b, err := s.st.AttachmentData(ctx, slug, id)
	return *e.Attachment, b, err
}

// newEntryID is sortable by time (milliseconds, then 8 random bytes), so
// that IDs made by several instances interleave in time order.
func newEntryID(t time.Time) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%012x%s", t.UnixMilli(), hex.EncodeToString(b))
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
