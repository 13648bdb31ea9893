package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"crisisroom/mainlog"
)

// Mainlog returns the mainlog.Store view of s.
func (s *Store) Mainlog() mainlog.Store { return logStore{s} }

type logStore struct{ s *Store }

// mainlogMigration is store/sqlite's, on PostgreSQL. Entries, attachments
// and board versions refuse UPDATE, DELETE and TRUNCATE in the database
// itself. Full-text search uses the French configuration on a stored
// tsvector ('<' and '>' read as spaces, so that text inside markup is
// indexed as words, as SQLite's FTS5 does).
const mainlogMigration = `CREATE TABLE mainlog_events (
		slug TEXT PRIMARY KEY,
		parent TEXT NOT NULL,
		title TEXT NOT NULL,
		kind TEXT NOT NULL,
		room TEXT NOT NULL,
		created_at TIMESTAMPTZ NOT NULL,
		created_by TEXT NOT NULL,
		last_seq BIGINT NOT NULL DEFAULT 0,
		tags JSONB NOT NULL
	);
	CREATE TABLE mainlog_entries (
		id TEXT PRIMARY KEY,
		event TEXT NOT NULL REFERENCES mainlog_events(slug),
		seq BIGINT NOT NULL,
		kind TEXT NOT NULL,
		text TEXT NOT NULL,
		tags TEXT[] NOT NULL,
		author_id TEXT NOT NULL,
		author_name TEXT NOT NULL,
		author_label TEXT NOT NULL,
		created_at TIMESTAMPTZ NOT NULL,
		event_time TIMESTAMPTZ,
		occurred_at TIMESTAMPTZ NOT NULL,
		commune TEXT NOT NULL,
		annotation TEXT NOT NULL,
		corrects TEXT NOT NULL,
		chat_name TEXT NOT NULL,
		chat_at TIMESTAMPTZ,
		att_name TEXT NOT NULL,
		att_type TEXT NOT NULL,
		att_size BIGINT NOT NULL,
		att_sha256 TEXT NOT NULL,
		idem_key TEXT NOT NULL,
		tsv tsvector GENERATED ALWAYS AS (to_tsvector('french', translate(text, '<>', '  '))) STORED,
		UNIQUE (event, seq)
	);
	CREATE INDEX mainlog_entries_order ON mainlog_entries(event, created_at, id COLLATE "C");
	CREATE INDEX mainlog_entries_occurred ON mainlog_entries(event, occurred_at);
	CREATE INDEX mainlog_entries_corrects ON mainlog_entries(corrects) WHERE corrects <> '';
	CREATE UNIQUE INDEX mainlog_entries_key ON mainlog_entries(event, idem_key) WHERE idem_key <> '';
	CREATE INDEX mainlog_entries_tsv ON mainlog_entries USING GIN (tsv);
	CREATE INDEX mainlog_entries_tags ON mainlog_entries USING GIN (tags);
	CREATE TABLE mainlog_attachments (
		entry TEXT PRIMARY KEY REFERENCES mainlog_entries(id),
		data BYTEA NOT NULL
	);
	CREATE TABLE mainlog_boards (
		event TEXT NOT NULL REFERENCES mainlog_events(slug),
		version BIGINT NOT NULL,
		severity TEXT NOT NULL,
		criteria TEXT NOT NULL,
		situation TEXT NOT NULL,
		stakes TEXT NOT NULL,
		means TEXT NOT NULL,
		next_point TEXT NOT NULL,
		author_id TEXT NOT NULL,
		author_name TEXT NOT NULL,
		at TIMESTAMPTZ NOT NULL,
		PRIMARY KEY (event, version)
	);
	CREATE FUNCTION mainlog_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		RAISE EXCEPTION 'main courante: % on % refused: the log is append-only', TG_OP, TG_TABLE_NAME;
	END $$;
	CREATE TRIGGER mainlog_entries_append_only BEFORE UPDATE OR DELETE ON mainlog_entries FOR EACH ROW EXECUTE FUNCTION mainlog_append_only();
	CREATE TRIGGER mainlog_entries_no_truncate BEFORE TRUNCATE ON mainlog_entries FOR EACH STATEMENT EXECUTE FUNCTION mainlog_append_only();
	CREATE TRIGGER mainlog_attachments_append_only BEFORE UPDATE OR DELETE ON mainlog_attachments FOR EACH ROW EXECUTE FUNCTION mainlog_append_only();
	CREATE TRIGGER mainlog_attachments_no_truncate BEFORE TRUNCATE ON mainlog_attachments FOR EACH STATEMENT EXECUTE FUNCTION mainlog_append_only();
	CREATE TRIGGER mainlog_boards_append_only BEFORE UPDATE OR DELETE ON mainlog_boards FOR EACH ROW EXECUTE FUNCTION mainlog_append_only();
	CREATE TRIGGER mainlog_boards_no_truncate BEFORE TRUNCATE ON mainlog_boards FOR EACH STATEMENT EXECUTE FUNCTION mainlog_append_only();`

// CreateEvent implements mainlog.Store.
func (st logStore) CreateEvent(ctx context.Context, e mainlog.Event) error {
	tags, err := json.Marshal(nonNilTags(e.Tags))
	if err != nil {
		return err
	}
	tag, err := st.s.pool.Exec(ctx, `INSERT INTO mainlog_events(slug, parent, title, kind, room, created_at, created_by, tags)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (slug) DO NOTHING`, e.Slug, e.Parent, e.Title, e.Kind, e.Room, ts(e.CreatedAt), e.CreatedBy, tags)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
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

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Events implements mainlog.Store.
func (st logStore) Events(ctx context.Context) ([]mainlog.Event, error) {
	rows, err := st.s.pool.Query(ctx, `SELECT slug, parent, title, kind, room, created_at, created_by, last_seq, tags
		FROM mainlog_events ORDER BY created_at, slug COLLATE "C"`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (mainlog.Event, error) {
		var e mainlog.Event
		var tags []byte
		if err := row.Scan(&e.Slug, &e.Parent, &e.Title, &e.Kind, &e.Room, &e.CreatedAt, &e.CreatedBy, &e.LastSeq, &tags); err != nil {
			return e, err
		}
		e.CreatedAt = e.CreatedAt.UTC()
		if err := json.Unmarshal(tags, &e.Tags); err != nil {
			return e, fmt.Errorf("event %s: tags: %w", e.Slug, err)
		}
		return e, nil
	})
}

// Append implements mainlog.Store. The event's row is locked by the
// UPDATE that numbers the entry: two instances appending at once get
// consecutive numbers. Two racing appends with the same key: the second
// fails on the unique index and is retried, then finds the first.
func (st logStore) Append(ctx context.Context, e mainlog.Entry, data []byte) (mainlog.Entry, bool, error) {
	for try := 0; ; try++ {
		var stored mainlog.Entry
		var dup bool
		err := pgx.BeginFunc(ctx, st.s.pool, func(tx pgx.Tx) error {
			var err error
			stored, dup, err = appendTx(ctx, tx, e, data)
			return err
		})
		var pe *pgconn.PgError
		if err != nil && e.Key != "" && try == 0 && errors.As(err, &pe) && pe.Code == "23505" {
			continue
		}
		return stored, dup, err
	}
}

func appendTx(ctx context.Context, tx pgx.Tx, e mainlog.Entry, data []byte) (mainlog.Entry, bool, error) {
	if e.Key != "" {
		got, err := scanEntry(tx.QueryRow(ctx, `SELECT `+entryCols+` FROM mainlog_entries e WHERE e.event = $1 AND e.idem_key = $2`, e.Event, e.Key))
		if err == nil {
			return got, true, nil
		}
		if !errors.Is(err, mainlog.ErrNotFound) {
			return e, false, err
		}
	}
	err := tx.QueryRow(ctx, `UPDATE mainlog_events SET last_seq = last_seq + 1 WHERE slug = $1 RETURNING last_seq`, e.Event).Scan(&e.Seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return e, false, mainlog.ErrNotFound
	}
	if err != nil {
		return e, false, err
	}
	var chatName string
	var chatAt, eventTime *time.Time
	if e.Chat != nil {
		chatName, chatAt = e.Chat.Name, nullTS(e.Chat.At)
	}
	if e.EventTime != nil {
		eventTime = nullTS(*e.EventTime)
	}
	var att mainlog.Attachment
	if e.Attachment != nil {
		att = *e.Attachment
	}
	e.Tags = nonNilStrings(e.Tags)
	_, err = tx.Exec(ctx, `INSERT INTO mainlog_entries(id, event, seq, kind, text, tags, author_id, author_name, author_label,
		created_at, event_time, occurred_at, commune, annotation, corrects, chat_name, chat_at, att_name, att_type, att_size, att_sha256, idem_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)`,
		e.ID, e.Event, e.Seq, e.Kind, e.Text, e.Tags, e.AuthorID, e.AuthorName, e.AuthorLabel,
		ts(e.CreatedAt), eventTime, ts(e.Occurred()), e.Commune, e.Annotation, e.Corrects, chatName, chatAt,
		att.Name, att.Type, att.Size, att.SHA256, e.Key)
	if err != nil {
		return e, false, err
	}
	if e.Attachment != nil {
		if _, err := tx.Exec(ctx, `INSERT INTO mainlog_attachments(entry, data) VALUES ($1, $2)`, e.ID, data); err != nil {
			return e, false, err
		}
	}
	return e, false, nil
}

// entryCols reads an entry as "e", with the entries correcting it.
const entryCols = `e.id, e.event, e.seq, e.kind, e.text, e.tags, e.author_id, e.author_name, e.author_label, e.created_at, e.event_time,
	e.commune, e.annotation, e.corrects, e.chat_name, e.chat_at, e.att_name, e.att_type, e.att_size, e.att_sha256, e.idem_key,
	(SELECT array_agg(c.id ORDER BY c.id COLLATE "C") FROM mainlog_entries c WHERE c.corrects = e.id AND c.corrects <> '')`

func scanEntry(row pgx.Row) (mainlog.Entry, error) {
	var e mainlog.Entry
	var chatName string
	var eventTime, chatAt *time.Time
	var att mainlog.Attachment
	err := row.Scan(&e.ID, &e.Event, &e.Seq, &e.Kind, &e.Text, &e.Tags, &e.AuthorID, &e.AuthorName, &e.AuthorLabel, &e.CreatedAt, &eventTime,
		&e.Commune, &e.Annotation, &e.Corrects, &chatName, &chatAt, &att.Name, &att.Type, &att.Size, &att.SHA256, &e.Key, &e.CorrectedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return e, mainlog.ErrNotFound
	}
	if err != nil {
		return e, err
	}
	e.CreatedAt = e.CreatedAt.UTC()
	if eventTime != nil {
		t := eventTime.UTC()
		e.EventTime = &t
	}
	if chatName != "" {
		e.Chat = &mainlog.ChatSource{Name: chatName, At: fromNull(chatAt)}
	}
	if att.Type != "" {
		e.Attachment = &att
	}
	e.Tags = nonNilStrings(e.Tags)
	if len(e.CorrectedBy) == 0 {
		e.CorrectedBy = nil
	}
	return e, nil
}

// Entry implements mainlog.Store.
func (st logStore) Entry(ctx context.Context, event, id string) (mainlog.Entry, error) {
	return scanEntry(st.s.pool.QueryRow(ctx, `SELECT `+entryCols+` FROM mainlog_entries e WHERE e.id = $1 AND e.event = $2`, id, event))
}

// Entries implements mainlog.Store.
func (st logStore) Entries(ctx context.Context, q mainlog.Query) ([]mainlog.Entry, error) {
	if len(q.Events) == 0 {
		return []mainlog.Entry{}, nil
	}
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	where = append(where, `e.event = ANY(`+arg(q.Events)+`)`)
	if len(q.Tags) > 0 {
		where = append(where, `e.tags && `+arg(q.Tags)+`::text[]`)
	}
	if q.Author != "" {
		where = append(where, `e.author_name = `+arg(q.Author))
	}
	if !q.From.IsZero() {
		where = append(where, `e.occurred_at >= `+arg(ts(q.From)))
	}
	if !q.To.IsZero() {
		where = append(where, `e.occurred_at < `+arg(ts(q.To)))
	}
	if words := mainlog.SearchWords(q.Text); len(words) > 0 {
		terms := make([]string, len(words))
		for i, w := range words {
			terms[i] = w + ":*" // letters and digits only: nothing to escape
		}
		where = append(where, `e.tsv @@ to_tsquery('french', `+arg(strings.Join(terms, " & "))+`)`)
	}
	if q.AfterSeq > 0 {
		where = append(where, `e.seq > `+arg(q.AfterSeq))
	}
	if c := q.After; c != nil {
		at, id := arg(ts(c.At)), arg(c.ID)
		where = append(where, `(e.created_at > `+at+` OR e.created_at = `+at+` AND e.id COLLATE "C" > `+id+`)`)
	}
	if c := q.Before; c != nil {
		at, id := arg(ts(c.At)), arg(c.ID)
		where = append(where, `(e.created_at < `+at+` OR e.created_at = `+at+` AND e.id COLLATE "C" < `+id+`)`)
	}
	order := `e.created_at, e.id COLLATE "C"`
	if q.Desc {
		order = `e.created_at DESC, e.id COLLATE "C" DESC`
	}
	limit := q.Limit
	if limit <= 0 {
		limit = mainlog.DefaultLimit
	}
	rows, err := st.s.pool.Query(ctx, `SELECT `+entryCols+` FROM mainlog_entries e WHERE `+strings.Join(where, " AND ")+
		` ORDER BY `+order+` LIMIT `+arg(limit), args...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (mainlog.Entry, error) { return scanEntry(row) })
	if out == nil && err == nil {
		out = []mainlog.Entry{}
	}
	return out, err
}

// AttachmentData implements mainlog.Store.
func (st logStore) AttachmentData(ctx context.Context, event, id string) ([]byte, error) {
	var b []byte
	err := st.s.pool.QueryRow(ctx, `SELECT a.data FROM mainlog_attachments a JOIN mainlog_entries e ON e.id = a.entry
		WHERE a.entry = $1 AND e.event = $2`, id, event).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, mainlog.ErrNotFound
	}
	return b, err
}

// PutBoard implements mainlog.Store. The event's row is locked first, so
// two instances changing the board at once are serialised and the second
// sees the first's version.
func (st logStore) PutBoard(ctx context.Context, b mainlog.Board, e mainlog.Entry) (mainlog.Entry, error) {
	var stored mainlog.Entry
	err := pgx.BeginFunc(ctx, st.s.pool, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM mainlog_events WHERE slug = $1 FOR UPDATE`, b.Event).Scan(&one); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return mainlog.ErrNotFound
			}
			return err
		}
		var cur int64
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM mainlog_boards WHERE event = $1`, b.Event).Scan(&cur); err != nil {
			return err
		}
		if b.Version != cur+1 {
			return mainlog.ErrConflict
		}
		if _, err := tx.Exec(ctx, `INSERT INTO mainlog_boards(event, version, severity, criteria, situation, stakes, means, next_point, author_id, author_name, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, b.Event, b.Version, b.Severity, b.Criteria, b.Situation, b.Stakes, b.Means,
			b.NextPoint, b.AuthorID, b.AuthorName, ts(b.At)); err != nil {
			return err
		}
		var err error
		stored, _, err = appendTx(ctx, tx, e, nil)
		return err
	})
	return stored, err
}

const boardCols = `event, version, severity, criteria, situation, stakes, means, next_point, author_id, author_name, at`

func scanBoard(row pgx.Row) (mainlog.Board, error) {
	var b mainlog.Board
	err := row.Scan(&b.Event, &b.Version, &b.Severity, &b.Criteria, &b.Situation, &b.Stakes, &b.Means, &b.NextPoint, &b.AuthorID, &b.AuthorName, &b.At)
	b.At = b.At.UTC()
	return b, err
}

// Board implements mainlog.Store.
func (st logStore) Board(ctx context.Context, event string) (mainlog.Board, error) {
	b, err := scanBoard(st.s.pool.QueryRow(ctx, `SELECT `+boardCols+` FROM mainlog_boards WHERE event = $1 ORDER BY version DESC LIMIT 1`, event))
	if errors.Is(err, pgx.ErrNoRows) {
		return mainlog.Board{Event: event}, nil
	}
	return b, err
}

// Boards implements mainlog.Store.
func (st logStore) Boards(ctx context.Context, event string) ([]mainlog.Board, error) {
	rows, err := st.s.pool.Query(ctx, `SELECT `+boardCols+` FROM mainlog_boards WHERE event = $1 ORDER BY version`, event)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (mainlog.Board, error) { return scanBoard(row) })
}

// SetTags implements mainlog.Store.
func (st logStore) SetTags(ctx context.Context, event string, tags []mainlog.Tag, e mainlog.Entry) (mainlog.Entry, error) {
	b, err := json.Marshal(nonNilTags(tags))
	if err != nil {
		return e, err
	}
	var stored mainlog.Entry
	err = pgx.BeginFunc(ctx, st.s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE mainlog_events SET tags = $1 WHERE slug = $2`, b, event)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return mainlog.ErrNotFound
		}
		stored, _, err = appendTx(ctx, tx, e, nil)
		return err
	})
	return stored, err
}
