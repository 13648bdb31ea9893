package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"

	"crisisroom/mainlog"
	"crisisroom/mainlog/mainlogtest"
)

func TestMainlogConformance(t *testing.T) {
	mainlogtest.Run(t, func(t *testing.T) mainlog.Store { return open(t).Mainlog() })
}

// TestMainlogAppendOnlyInTheDatabase: even SQL that bypasses the store
// cannot change or delete an entry, an attachment or a board version.
func TestMainlogAppendOnlyInTheDatabase(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	st := s.Mainlog()
	at := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	if err := st.CreateEvent(ctx, mainlog.Event{Slug: "main", Title: "x", Kind: "strategique", Room: "main", CreatedAt: at, Tags: mainlog.DefaultTags()}); err != nil {
		t.Fatal(err)
	}
	e := mainlog.Entry{ID: "e1", Event: "main", Kind: mainlog.KindNote, Text: "original", CreatedAt: at,
		Attachment: &mainlog.Attachment{Name: "a.txt", Type: mainlog.TypeText, Size: 2, SHA256: "x"}}
	if _, _, err := st.Append(ctx, e, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutBoard(ctx, mainlog.Board{Event: "main", Version: 1, Severity: "vert", At: at},
		mainlog.Entry{ID: "e2", Event: "main", Kind: mainlog.KindBoard, Text: "v1", CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE mainlog_entries SET text = 'altered' WHERE id = 'e1'`,
		`DELETE FROM mainlog_entries WHERE id = 'e1'`,
		`DELETE FROM mainlog_entries`,
		`UPDATE mainlog_attachments SET data = x'00'`,
		`DELETE FROM mainlog_attachments`,
		`UPDATE mainlog_boards SET severity = 'rouge'`,
		`DELETE FROM mainlog_boards`,
	} {
		if _, err := s.db.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want refused as append-only", q, err)
		}
	}
	got, err := st.Entry(ctx, "main", "e1")
	if err != nil || got.Text != "original" {
		t.Fatalf("entry after the attempts: %+v, %v", got, err)
	}
	if n, err := st.Entries(ctx, mainlog.Query{Events: []string{"main"}}); err != nil || len(n) != 2 {
		t.Fatalf("entries after the attempts: %d, %v", len(n), err)
	}
}
