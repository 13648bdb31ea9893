package mainlog

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"crisisroom/rooms"
)

// SubInput creates a sub-event.
type SubInput struct {
	Title  string `json:"title"`
	Kind   string `json:"kind"`
	Author string `json:"author"`
}

// Links are a room's new links, shown once.
type Links struct {
	Host        string `json:"host"`
	Participant string `json:"participant"`
}

// CreateSub creates a sub-event below parent, with its own room, log,
// board and a copy of the parent's taxonomy, logs it in both logs, and
// returns links to its room. Hosts only.
func (s *Service) CreateSub(ctx context.Context, a Actor, parent string, in SubInput) (Event, Links, error) {
	pe, err := s.Visible(ctx, a, parent)
	if err != nil {
		return Event{}, Links{}, err
	}
	if s.cfg.Rooms == nil {
		return Event{}, Links{}, ErrForbidden
	}
	ve := &ValidationError{}
	title, n, ok := cleanLine(in.Title)
	if !ok || n == 0 || n > MaxTitleRunes {
		ve.add("title", "intitulé : 1 à %d caractères sur une ligne", MaxTitleRunes)
	}
	if !validKind(in.Kind) {
		ve.add("kind", "type : stratégique, tactique, communication ou opérationnel (%s)", strings.Join(EventKinds, ", "))
	}
	name := s.authorName(ve, a, in.Author)
	if err := ve.err(); err != nil {
		return Event{}, Links{}, err
	}
	slug, err := s.newRoom(ctx, title)
	if err != nil {
		return Event{}, Links{}, err
	}
	var tags []Tag
	for _, t := range pe.Tags {
		if !t.Retired {
			tags = append(tags, t)
		}
	}
	ev := Event{Slug: slug, Parent: parent, Title: title, Kind: in.Kind, Room: slug, CreatedAt: s.now(), CreatedBy: name, Tags: tags}
	if err := s.st.CreateEvent(ctx, ev); err != nil {
		return Event{}, Links{}, err
	}
	s.publish(ctx, change{Event: &ev})
	what := fmt.Sprintf("« %s » (%s)", title, in.Kind)
	if _, err := s.logAction(ctx, a, name, parent, "Sous-événement créé par "+name+" : "+what); err != nil {
		return Event{}, Links{}, err
	}
	if _, err := s.logAction(ctx, a, name, slug, "Événement "+what+" créé par "+name+", sous « "+pe.Title+" »"); err != nil {
		return Event{}, Links{}, err
	}
	var links Links
	if links.Host, err = s.cfg.Rooms.RoomLink(ctx, slug, rooms.RoleHost, "main courante : animateur, par "+name); err != nil {
		return Event{}, Links{}, err
	}
	if links.Participant, err = s.cfg.Rooms.RoomLink(ctx, slug, rooms.RoleParticipant, "main courante : invitation, par "+name); err != nil {
		return Event{}, Links{}, err
	}
	ev, _ = s.hub.event(slug)
	return ev, links, nil
}

// newRoom creates a room named after the title, numbered when the name is
// taken (by a room or an event).
func (s *Service) newRoom(ctx context.Context, title string) (string, error) {
	base := Slugify(title, 40)
	for i := 1; i <= 100; i++ {
		slug := base
		if i > 1 {
			slug = fmt.Sprintf("%s-%d", base, i)
		}
		if _, err := s.event(ctx, slug); err == nil {
			continue
		} else if !errors.Is(err, ErrNotFound) {
			return "", err
		}
		created, err := s.cfg.Rooms.CreateRoom(ctx, slug, title)
		if err != nil {
			return "", err
		}
		if created {
			return slug, nil
		}
	}
	return "", fmt.Errorf("no free room name for %q", base)
}

// logAction appends an entry the server writes on a member's action.
func (s *Service) logAction(ctx context.Context, a Actor, name, slug, text string) (Entry, error) {
	e := Entry{Event: slug, Kind: KindSystem, Text: text, Tags: []string{}, AuthorID: a.ID, AuthorName: name, AuthorLabel: a.Label}
	stamp, unlock := s.lock(slug)
	defer unlock()
	stamp(&e)
	stored, _, err := s.st.Append(ctx, e, nil)
	if err == nil {
		s.publish(ctx, change{Entry: &stored})
	}
	return stored, err
}

// NewLink mints a link to an event's room. Hosts of the event or of an
// event above it only.
func (s *Service) NewLink(ctx context.Context, a Actor, slug, role, author string) (string, error) {
	if _, err := s.Visible(ctx, a, slug); err != nil {
		return "", err
	}
	if s.cfg.Rooms == nil {
		return "", ErrForbidden
	}
	ve := &ValidationError{}
	name := s.authorName(ve, a, author)
	if role != rooms.RoleHost && role != rooms.RoleParticipant {
		ve.add("role", "rôle : host ou participant")
	}
	if err := ve.err(); err != nil {
		return "", err
	}
	return s.cfg.Rooms.RoomLink(ctx, slug, role, "main courante : lien créé par "+name)
}

var accents = strings.NewReplacer(
	"à", "a", "â", "a", "ä", "a", "á", "a", "ã", "a", "å", "a",
	"ç", "c", "é", "e", "è", "e", "ê", "e", "ë", "e",
	"î", "i", "ï", "i", "í", "i", "ì", "i",
	"ô", "o", "ö", "o", "ó", "o", "ò", "o", "õ", "o",
	"ù", "u", "û", "u", "ü", "u", "ú", "u", "ÿ", "y", "ñ", "n",
	"œ", "oe", "æ", "ae", "'", "", "’", "",
)

// Slugify makes an ASCII name of s: lower case, accents dropped, words
// joined by dashes, at most max bytes.
func Slugify(s string, max int) string {
	s = accents.Replace(strings.ToLower(s))
	var b strings.Builder
	dash := false
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
		switch {
		case ok:
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		default:
			dash = true
		}
		if b.Len() >= max {
			break
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > max {
		out = strings.Trim(out[:max], "-")
	}
	if out == "" {
		return "evenement"
	}
	return out
}

// uniqueSlug numbers base until taken says no.
func uniqueSlug(base string, taken func(string) bool) string {
	s := base
	for i := 2; taken(s); i++ {
		s = fmt.Sprintf("%s-%d", base, i)
	}
	return s
}
