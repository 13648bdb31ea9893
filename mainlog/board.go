package mainlog

import (
	"context"
	"fmt"
	"strings"
)

// BoardInput is a new version of the board, based on Version (the one the
// writer saw): a change based on an older version is refused (409) rather
// than silently overwriting someone else's.
type BoardInput struct {
	Version   int64  `json:"version"`
	Severity  string `json:"severity"`
	Criteria  string `json:"criteria"`
	Situation string `json:"situation"`
	Stakes    string `json:"stakes"`
	Means     string `json:"means"`
	NextPoint string `json:"next_point"`
	Author    string `json:"author"`
}

// boardFields names the board's text fields for the log, in form order.
var boardFields = []struct {
	label string
	get   func(*Board) *string
	max   int
	field string
}{
	{"Critères", func(b *Board) *string { return &b.Criteria }, MaxBoardFieldRunes, "criteria"},
	{"Situation", func(b *Board) *string { return &b.Situation }, MaxBoardFieldRunes, "situation"},
	{"Enjeux", func(b *Board) *string { return &b.Stakes }, MaxBoardFieldRunes, "stakes"},
	{"Moyens engagés", func(b *Board) *string { return &b.Means }, MaxBoardFieldRunes, "means"},
	{"Prochain point", func(b *Board) *string { return &b.NextPoint }, MaxNextPointRunes, "next_point"},
}

// BoardOf returns the event's current board.
func (s *Service) BoardOf(ctx context.Context, a Actor, slug string) (Board, error) {
	if _, err := s.Visible(ctx, a, slug); err != nil {
		return Board{}, err
	}
	return s.st.Board(ctx, slug)
}

// BoardHistory returns every version of the event's board.
func (s *Service) BoardHistory(ctx context.Context, a Actor, slug string) ([]Board, error) {
	if _, err := s.Visible(ctx, a, slug); err != nil {
		return nil, err
	}
	return s.st.Boards(ctx, slug)
}

// PutBoard stores a new version of the board and logs what changed, in
// one transaction. Hosts only.
func (s *Service) PutBoard(ctx context.Context, a Actor, slug string, in BoardInput) (Board, Entry, error) {
	ev, err := s.Visible(ctx, a, slug)
	if err != nil {
		return Board{}, Entry{}, err
	}
	ve := &ValidationError{}
	b := Board{Event: slug, Version: in.Version + 1, Severity: in.Severity, Criteria: in.Criteria, Situation: in.Situation,
		Stakes: in.Stakes, Means: in.Means, NextPoint: in.NextPoint, AuthorID: a.ID, AuthorName: s.authorName(ve, a, in.Author)}
	if !validSeverity(b.Severity) {
		ve.add("severity", "gravité : vert, jaune, orange ou rouge")
	}
	for _, f := range boardFields {
		v, n, ok := cleanText(strings.TrimSpace(*f.get(&b)))
		if !ok || n > f.max {
			ve.add(f.field, "%s : au plus %d caractères, sans caractère de contrôle", f.label, f.max)
		}
		*f.get(&b) = v
	}
	if in.Version < 0 {
		ve.add("version", "version invalide")
	}
	if err := ve.err(); err != nil {
		return Board{}, Entry{}, err
	}
	stamp, unlock := s.lock(slug)
	defer unlock()
	old, err := s.st.Board(ctx, slug)
	if err != nil {
		return Board{}, Entry{}, err
	}
	if old.Version != in.Version {
		return Board{}, Entry{}, ErrConflict
	}
	text, changed := boardChange(old, b)
	if !changed {
		ve.add("board", "aucun changement par rapport à la version %d", old.Version)
		return Board{}, Entry{}, ve
	}
	e := Entry{Event: ev.Slug, Kind: KindBoard, Text: text, Tags: []string{}, AuthorID: a.ID, AuthorName: b.AuthorName, AuthorLabel: a.Label}
	stamp(&e)
	b.At = e.CreatedAt
	stored, err := s.st.PutBoard(ctx, b, e)
	if err != nil {
		return Board{}, Entry{}, err
	}
	s.publish(ctx, change{Board: &b})
	s.publish(ctx, change{Entry: &stored})
	return b, stored, nil
}

// boardChange writes the log text of a board change: the severity, then
// each changed field with its new text (the log alone tells the story).
func boardChange(old, b Board) (string, bool) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "Tableau de situation, version %d — gravité : ", b.Version)
	switch {
	case old.Severity == "":
		sb.WriteString(b.Severity)
	case old.Severity != b.Severity:
		fmt.Fprintf(&sb, "%s → %s", old.Severity, b.Severity)
	default:
		fmt.Fprintf(&sb, "%s (inchangée)", b.Severity)
	}
	changed := old.Severity != b.Severity
	for _, f := range boardFields {
		o, n := *f.get(&old), *f.get(&b)
		if o == n {
			continue
		}
		changed = true
		if n == "" {
			fmt.Fprintf(&sb, "\n%s : (effacé)", f.label)
		} else {
			fmt.Fprintf(&sb, "\n%s : %s", f.label, n)
		}
	}
	return sb.String(), changed
}

// SetTags replaces the event's taxonomy. A tag left out is retired, never
// deleted: older entries keep their label. Hosts only.
func (s *Service) SetTags(ctx context.Context, a Actor, slug string, in []Tag, author string) (Event, error) {
	ev, err := s.Visible(ctx, a, slug)
	if err != nil {
		return Event{}, err
	}
	ve := &ValidationError{}
	name := s.authorName(ve, a, author)
	tags, text := mergeTags(ve, ev.Tags, in)
	if err := ve.err(); err != nil {
		return Event{}, err
	}
	if text == "" {
		return ev, nil
	}
	e := Entry{Event: slug, Kind: KindSystem, Text: "Étiquettes modifiées par " + name + " : " + text,
		Tags: []string{}, AuthorID: a.ID, AuthorName: name, AuthorLabel: a.Label}
	stamp, unlock := s.lock(slug)
	defer unlock()
	stamp(&e)
	stored, err := s.st.SetTags(ctx, slug, tags, e)
	if err != nil {
		return Event{}, err
	}
	ev.Tags, ev.LastSeq = tags, stored.Seq
	s.publish(ctx, change{Event: &ev})
	s.publish(ctx, change{Entry: &stored})
	return ev, nil
}

// mergeTags applies the wanted list to the current taxonomy and describes
// the change ("" when nothing changed).
func mergeTags(ve *ValidationError, cur, in []Tag) ([]Tag, string) {
	byID := map[string]int{}
	out := append([]Tag(nil), cur...)
	for i, t := range out {
		byID[t.ID] = i
	}
	kept := map[string]bool{}
	labels := map[string]bool{}
	var added, renamed, retired []string
	for _, t := range in {
		label, n, ok := cleanLine(t.Label)
		if !ok || n == 0 || n > MaxTagLabelRunes {
			ve.add("tags", "libellé d'étiquette : 1 à %d caractères sur une ligne", MaxTagLabelRunes)
			continue
		}
		if labels[strings.ToLower(label)] {
			ve.add("tags", "étiquette en double : %q", label)
			continue
		}
		labels[strings.ToLower(label)] = true
		i, known := byID[t.ID]
		if !known {
			id := uniqueSlug(Slugify(label, 40), func(s string) bool { _, taken := byID[s]; return taken })
			byID[id] = len(out)
			out = append(out, Tag{ID: id, Label: label})
			kept[id] = true
			added = append(added, label)
			continue
		}
		kept[t.ID] = true
		if out[i].Label != label {
			renamed = append(renamed, out[i].Label+" → "+label)
			out[i].Label = label
		}
		if out[i].Retired {
			out[i].Retired = false
			added = append(added, label)
		}
	}
	for i, t := range out {
		if !kept[t.ID] && !t.Retired {
			out[i].Retired = true
			retired = append(retired, t.Label)
		}
	}
	if len(out) > MaxTaxonomy {
		ve.add("tags", "au plus %d étiquettes par événement (retirées comprises)", MaxTaxonomy)
	}
	var parts []string
	for _, p := range []struct {
		what string
		list []string
	}{{"ajoutées", added}, {"renommées", renamed}, {"retirées", retired}} {
		if len(p.list) > 0 {
			parts = append(parts, p.what+" "+strings.Join(p.list, ", "))
		}
	}
	return out, strings.Join(parts, " ; ")
}
