package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"crisisroom/mainlog"
)

// Mainlog returns the mainlog.Store view of s.
func (s *Store) Mainlog() mainlog.Store { return logStore{s} }

type logStore struct{ s *Store }

// mainlogMigration is the schema of the main courante (appended to
// migrations). Entries, attachments and board versions refuse UPDATE and
// DELETE in the database itself: append-only does not rest on the code
// alone. Full-text search is FTS5 (accents and case folded), fed by a
// trigger on insert; there is no update or delete to follow.
const mainlogMigration = `CREATE TABLE mainlog_events (
		slug TEXT PRIMARY KEY,
		parent TEXT NOT NULL,
		title TEXT NOT NULL,
		kind TEXT NOT NULL,
		room TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		created_by TEXT NOT NULL,
		last_seq INTEGER NOT NULL DEFAULT 0,
		tags TEXT NOT NULL
	);
	CREATE TABLE mainlog_entries (
		id TEXT PRIMARY KEY,
		event TEXT NOT NULL REFERENCES mainlog_events(slug),
		seq INTEGER NOT NULL,
		kind TEXT NOT NULL,
		text TEXT NOT NULL,
		tags TEXT NOT NULL,
		author_id TEXT NOT NULL,
		author_name TEXT NOT NULL,
		author_label TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		event_time INTEGER NOT NULL,
		occurred_at INTEGER NOT NULL,
		commune TEXT NOT NULL,
		annotation TEXT NOT NULL,
		corrects TEXT NOT NULL,
		chat_name TEXT NOT NULL,
		chat_at INTEGER NOT NULL,
		att_name TEXT NOT NULL,
		att_type TEXT NOT NULL,
		att_size INTEGER NOT NULL,
		att_sha256 TEXT NOT NULL,
		idem_key TEXT NOT NULL,
		UNIQUE (event, seq)
	);
	CREATE INDEX mainlog_entries_order ON mainlog_entries(event, created_at, id);
	CREATE INDEX mainlog_entries_occurred ON mainlog_entries(event, occurred_at);
	CREATE INDEX mainlog_entries_corrects ON mainlog_entries(corrects) WHERE corrects <> '';
	CREATE UNIQUE INDEX mainlog_entries_key ON mainlog_entries(event, idem_key) WHERE idem_key <> '';
	CREATE TABLE mainlog_attachments (
		entry TEXT PRIMARY KEY REFERENCES mainlog_entries(id),
		data BLOB NOT NULL
	);
	CREATE TABLE mainlog_boards (
		event TEXT NOT NULL REFERENCES mainlog_events(slug),
		version INTEGER NOT NULL,
		severity TEXT NOT NULL,
		criteria TEXT NOT NULL,
		situation TEXT NOT NULL,
		stakes TEXT NOT NULL,
		means TEXT NOT NULL,
		next_point TEXT NOT NULL,
		author_id TEXT NOT NULL,
		author_name TEXT NOT NULL,
		at INTEGER NOT NULL,
		PRIMARY KEY (event, version)
	);
	CREATE VIRTUAL TABLE mainlog_fts USING fts5(text, content='mainlog_entries', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2');
	CREATE TRIGGER mainlog_entries_fts AFTER INSERT ON mainlog_entries BEGIN
		INSERT INTO mainlog_fts(rowid, text) VALUES (new.rowid, new.text);
	END;
	CREATE TRIGGER mainlog_entries_no_update BEFORE UPDATE ON mainlog_entries BEGIN SELECT RAISE(ABORT, 'main courante entries are append-only'); END;
	CREATE TRIGGER mainlog_entries_no_delete BEFORE DELETE ON mainlog_entries BEGIN SELECT RAISE(ABORT, 'main courante entries are append-only'); END;
	CREATE TRIGGER mainlog_attachments_no_update BEFORE UPDATE ON mainlog_attachments BEGIN SELECT RAISE(ABORT, 'main courante attachments are append-only'); END;
	CREATE TRIGGER mainlog_attachments_no_delete BEFORE DELETE ON mainlog_attachments BEGIN SELECT RAISE(ABORT, 'main courante attachments are append-only'); END;
	CREATE TRIGGER mainlog_boards_no_update BEFORE UPDATE ON mainlog_boards BEGIN SELECT RAISE(ABORT, 'board versions are append-only'); END;
	CREATE TRIGGER mainlog_boards_no_delete BEFORE DELETE ON mainlog_boards BEGIN SELECT RAISE(ABORT, 'board versions are append-only'); END;`

// CreateEvent implements mainlog.Store.
func (st logStore) CreateEvent(ctx context.Context, e mainlog.Event) error {
	tags, err := json.Marshal(nonNilTags(e.Tags))
	if err != nil {
		return err
	}
	res, err := st.s.db.ExecContext(ctx, `INSERT INTO mainlog_events(slug, parent, title, kind, room, created_at, created_by, tags)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(slug) DO NOTHING`, e.Slug, e.Parent, e.Title, e.Kind, e.Room, ms(e.CreatedAt), e.CreatedBy, string(tags))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return mainlog.ErrExists
	}
	return nil
}

func nonNilTags(t []mainlog.Tag) []mainlog.Tag {
	if t == nil {
		return []mainlog.Tag{}
	}
	return t
}

// Events implements mainlog.Store.
func (st logStore) Events(ctx context.Context) ([]mainlog.Event, error) {
	rows, err := st.s.db.QueryContext(ctx, `SELECT slug, parent, title, kind, room, created_at, created_by, last_seq, tags
		FROM mainlog_events ORDER BY created_at, slug`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []mainlog.Event
	for rows.Next() {
		var e mainlog.Event
		var created int64
		var tags string
		if err := rows.Scan(&e.Slug, &e.Parent, &e.Title, &e.Kind, &e.Room, &created, &e.CreatedBy, &e.LastSeq, &tags); err != nil {
			return nil, err
		}
		e.CreatedAt = fromMS(created)
		if err := json.Unmarshal([]byte(tags), &e.Tags); err != nil {
			return nil, fmt.Errorf("event %s: tags: %w", e.Slug, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Append implements mainlog.Store: the number comes from the event's row,
// updated in the same (immediate, so serialised) transaction.
func (st logStore) Append(ctx context.Context, e mainlog.Entry, data []byte) (mainlog.Entry, bool, error) {
	tx, err := st.s.db.BeginTx(ctx, nil)
	if err != nil {
		return e, false, err
	}
	defer tx.Rollback()
	stored, dup, err := appendTx(ctx, tx, e, data)
	if err != nil || dup {
		return stored, dup, err
	}
	return stored, false, tx.Commit()
}

func appendTx(ctx context.Context, tx *sql.Tx, e mainlog.Entry, data []byte) (mainlog.Entry, bool, error) {
	if e.Key != "" {
		got, err := scanEntry(tx.QueryRowContext(ctx, `SELECT `+entryCols+` FROM mainlog_entries e WHERE event = ? AND idem_key = ?`, e.Event, e.Key))
		if err == nil {
			return got, true, nil
		}
		if !errors.Is(err, mainlog.ErrNotFound) {
			return e, false, err
		}
	}
	err := tx.QueryRowContext(ctx, `UPDATE mainlog_events SET last_seq = last_seq + 1 WHERE slug = ? RETURNING last_seq`, e.Event).Scan(&e.Seq)
	if errors.Is(err, sql.ErrNoRows) {
		return e, false, mainlog.ErrNotFound
	}
	if err != nil {
		return e, false, err
	}
	tags, err := json.Marshal(nonNilStrings(e.Tags))
	if err != nil {
		return e, false, err
	}
	var chatName string
	var chatAt, eventTime int64
	if e.Chat != nil {
		chatName, chatAt = e.Chat.Name, ms(e.Chat.At)
	}
	if e.EventTime != nil {
		eventTime = ms(*e.EventTime)
	}
	var att mainlog.Attachment
	if e.Attachment != nil {
		att = *e.Attachment
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO mainlog_entries(id, event, seq, kind, text, tags, author_id, author_name, author_label,
		created_at, event_time, occurred_at, commune, annotation, corrects, chat_name, chat_at, att_name, att_type, att_size, att_sha256, idem_key)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, e.Event, e.Seq, e.Kind, e.Text, string(tags), e.AuthorID, e.AuthorName, e.AuthorLabel,
		ms(e.CreatedAt), eventTime, ms(e.Occurred()), e.Commune, e.Annotation, e.Corrects, chatName, chatAt,
		att.Name, att.Type, att.Size, att.SHA256, e.Key)
	if err != nil {
		return e, false, err
	}
	if e.Attachment != nil {
		if _, err := tx.ExecContext(ctx, `INSERT INTO mainlog_attachments(entry, data) VALUES (?, ?)`, e.ID, data); err != nil {
			return e, false, err
		}
	}
	e.Tags = nonNilStrings(e.Tags)
	return e, false, nil
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// entryCols reads an entry as "e", with the entries correcting it.
const entryCols = `e.id, e.event, e.seq, e.kind, e.text, e.tags, e.author_id, e.author_name, e.author_label, e.created_at, e.event_time,
	e.commune, e.annotation, e.corrects, e.chat_name, e.chat_at, e.att_name, e.att_type, e.att_size, e.att_sha256, e.idem_key,
	(SELECT group_concat(c.id, ' ') FROM mainlog_entries c WHERE c.corrects = e.id AND c.corrects <> '')`

func scanEntry(row interface{ Scan(...any) error }) (mainlog.Entry, error) {
	var e mainlog.Entry
	var tags, chatName string
	var created, eventTime, chatAt int64
	var att mainlog.Attachment
	var correctedBy sql.NullString
	err := row.Scan(&e.ID, &e.Event, &e.Seq, &e.Kind, &e.Text, &tags, &e.AuthorID, &e.AuthorName, &e.AuthorLabel, &created, &eventTime,
		&e.Commune, &e.Annotation, &e.Corrects, &chatName, &chatAt, &att.Name, &att.Type, &att.Size, &att.SHA256, &e.Key, &correctedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return e, mainlog.ErrNotFound
	}
	if err != nil {
		return e, err
	}
	e.CreatedAt = fromMS(created)
	if eventTime != 0 {
		t := fromMS(eventTime)
		e.EventTime = &t
	}
	if chatName != "" {
		e.Chat = &mainlog.ChatSource{Name: chatName, At: fromMS(chatAt)}
	}
	if att.Type != "" {
		e.Attachment = &att
	}
	if correctedBy.String != "" {
		e.CorrectedBy = strings.Fields(correctedBy.String)
		sort.Strings(e.CorrectedBy) // IDs sort by time
	}
	if err := json.Unmarshal([]byte(tags), &e.Tags); err != nil {
		return e, fmt.Errorf("entry %s: tags: %w", e.ID, err)
	}
	return e, nil
}

// Entry implements mainlog.Store.
func (st logStore) Entry(ctx context.Context, event, id string) (mainlog.Entry, error) {
	return scanEntry(st.s.db.QueryRowContext(ctx, `SELECT `+entryCols+` FROM mainlog_entries e WHERE e.id = ? AND e.event = ?`, id, event))
}

// Entries implements mainlog.Store.
func (st logStore) Entries(ctx context.Context, q mainlog.Query) ([]mainlog.Entry, error) {
	if len(q.Events) == 0 {
		return []mainlog.Entry{}, nil
	}
	var where []string
	var args []any
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
	add(`e.event IN (`+placeholders(len(q.Events))+`)`, anys(q.Events)...)
	if len(q.Tags) > 0 {
		add(`EXISTS (SELECT 1 FROM json_each(e.tags) WHERE json_each.value IN (`+placeholders(len(q.Tags))+`))`, anys(q.Tags)...)
	}
	if q.Author != "" {
		add(`e.author_name = ?`, q.Author)
	}
	if !q.From.IsZero() {
		add(`e.occurred_at >= ?`, ms(q.From))
	}
	if !q.To.IsZero() {
		add(`e.occurred_at < ?`, ms(q.To))
	}
	if words := mainlog.SearchWords(q.Text); len(words) > 0 {
		terms := make([]string, len(words))
		for i, w := range words {
			terms[i] = `"` + w + `"*` // letters and digits only: nothing to escape
		}
		add(`e.rowid IN (SELECT rowid FROM mainlog_fts WHERE mainlog_fts MATCH ?)`, strings.Join(terms, " "))
	}
	if q.AfterSeq > 0 {
		add(`e.seq > ?`, q.AfterSeq)
	}
	if c := q.After; c != nil {
		add(`(e.created_at > ? OR e.created_at = ? AND e.id > ?)`, ms(c.At), ms(c.At), c.ID)
	}
	if c := q.Before; c != nil {
		add(`(e.created_at < ? OR e.created_at = ? AND e.id < ?)`, ms(c.At), ms(c.At), c.ID)
	}
	order := "e.created_at, e.id"
	if q.Desc {
		order = "e.created_at DESC, e.id DESC"
	}
	limit := q.Limit
	if limit <= 0 {
		limit = mainlog.DefaultLimit
	}
	rows, err := st.s.db.QueryContext(ctx, `SELECT `+entryCols+` FROM mainlog_entries e WHERE `+strings.Join(where, " AND ")+
		` ORDER BY `+order+` LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []mainlog.Entry{}
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

func anys(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// AttachmentData implements mainlog.Store.
func (st logStore) AttachmentData(ctx context.Context, event, id string) ([]byte, error) {
	var b []byte
	err := st.s.db.QueryRowContext(ctx, `SELECT a.data FROM mainlog_attachments a JOIN mainlog_entries e ON e.id = a.entry
		WHERE a.entry = ? AND e.event = ?`, id, event).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, mainlog.ErrNotFound
	}
	return b, err
}

// PutBoard implements mainlog.Store.
func (st logStore) PutBoard(ctx context.Context, b mainlog.Board, e mainlog.Entry) (mainlog.Entry, error) {
	tx, err := st.s.db.BeginTx(ctx, nil)
	if err != nil {
		return e, err
	}
	defer tx.Rollback()
	var cur int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM mainlog_boards WHERE event = ?`, b.Event).Scan(&cur); err != nil {
		return e, err
	}
	if b.Version != cur+1 {
		return e, mainlog.ErrConflict
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO mainlog_boards(event, version, severity, criteria, situation, stakes, means, next_point, author_id, author_name, at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, b.Event, b.Version, b.Severity, b.Criteria, b.Situation, b.Stakes, b.Means, b.NextPoint,
		b.AuthorID, b.AuthorName, ms(b.At)); err != nil {
		return e, err
	}
	stored, _, err := appendTx(ctx, tx, e, nil)
	if err != nil {
		return e, err
	}
	return stored, tx.Commit()
}

const boardCols = `event, version, severity, criteria, situation, stakes, means, next_point, author_id, author_name, at`

func scanBoard(row interface{ Scan(...any) error }) (mainlog.Board, error) {
	var b mainlog.Board
	var at int64
	err := row.Scan(&b.Event, &b.Version, &b.Severity, &b.Criteria, &b.Situation, &b.Stakes, &b.Means, &b.NextPoint, &b.AuthorID, &b.AuthorName, &at)
	b.At = fromMS(at)
	return b, err
}

// Board implements mainlog.Store.
func (st logStore) Board(ctx context.Context, event string) (mainlog.Board, error) {
	b, err := scanBoard(st.s.db.QueryRowContext(ctx, `SELECT `+boardCols+` FROM mainlog_boards WHERE event = ? ORDER BY version DESC LIMIT 1`, event))
	if errors.Is(err, sql.ErrNoRows) {
		return mainlog.Board{Event: event}, nil
	}
	return b, err
}

// Boards implements mainlog.Store.
func (st logStore) Boards(ctx context.Context, event string) ([]mainlog.Board, error) {
	rows, err := st.s.db.QueryContext(ctx, `SELECT `+boardCols+` FROM mainlog_boards WHERE event = ? ORDER BY version`, event)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []mainlog.Board
	for rows.Next() {
		b, err := scanBoard(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// SetTags implements mainlog.Store.
func (st logStore) SetTags(ctx context.Context, event string, tags []mainlog.Tag, e mainlog.Entry) (mainlog.Entry, error) {
	b, err := json.Marshal(nonNilTags(tags))
	if err != nil {
		return e, err
	}
	tx, err := st.s.db.BeginTx(ctx, nil)
	if err != nil {
		return e, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE mainlog_events SET tags = ? WHERE slug = ?`, string(b), event)
	if err != nil {
		return e, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return e, mainlog.ErrNotFound
	}
	stored, _, err := appendTx(ctx, tx, e, nil)
	if err != nil {
		return e, err
	}
	return stored, tx.Commit()
}
