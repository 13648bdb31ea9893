// Package mainlogtest is the conformance suite every mainlog.Store must
// pass (store/sqlite and store/postgres run it).
package mainlogtest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"crisisroom/mainlog"
)

var t0 = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

// Run runs the suite; newStore returns a fresh, empty store per subtest.
func Run(t *testing.T, newStore func(t *testing.T) mainlog.Store) {
	t.Run("Events", func(t *testing.T) { events(t, newStore(t)) })
	t.Run("AppendNumbersAndKeepsFields", func(t *testing.T) { appendFields(t, newStore(t)) })
	t.Run("IdempotentKey", func(t *testing.T) { idempotent(t, newStore(t)) })
	t.Run("CorrectionsKeepBoth", func(t *testing.T) { corrections(t, newStore(t)) })
	t.Run("Filters", func(t *testing.T) { filters(t, newStore(t)) })
	t.Run("Search", func(t *testing.T) { search(t, newStore(t)) })
	t.Run("Pages", func(t *testing.T) { pages(t, newStore(t)) })
	t.Run("Attachment", func(t *testing.T) { attachment(t, newStore(t)) })
	t.Run("BoardVersions", func(t *testing.T) { board(t, newStore(t)) })
	t.Run("Tags", func(t *testing.T) { tags(t, newStore(t)) })
	t.Run("ConcurrentAppends", func(t *testing.T) { concurrent(t, newStore(t)) })
}

func ev(slug, parent string, at time.Time) mainlog.Event {
	return mainlog.Event{Slug: slug, Parent: parent, Title: "Canicule " + slug, Kind: "strategique", Room: slug,
		CreatedAt: at, CreatedBy: "COD", Tags: mainlog.DefaultTags()}
}

// entry is a plain note of event at t0+minute.
func entry(event string, minute int, text string, tags ...string) mainlog.Entry {
	at := t0.Add(time.Duration(minute) * time.Minute)
	if tags == nil {
		tags = []string{}
	}
	return mainlog.Entry{ID: fmt.Sprintf("%012x%016d", at.UnixMilli(), minute), Event: event, Kind: mainlog.KindNote, Text: text, Tags: tags,
		AuthorID: "link-1", AuthorName: "Claire Martin – SIDPC", AuthorLabel: "préfecture", CreatedAt: at}
}

func mustCreate(t *testing.T, st mainlog.Store, evs ...mainlog.Event) {
	t.Helper()
	for _, e := range evs {
		if err := st.CreateEvent(context.Background(), e); err != nil {
			t.Fatalf("create event %s: %v", e.Slug, err)
		}
	}
}

func mustAppend(t *testing.T, st mainlog.Store, e mainlog.Entry) mainlog.Entry {
	t.Helper()
	got, dup, err := st.Append(context.Background(), e, nil)
	if err != nil || dup {
		t.Fatalf("append %s: dup %v, %v", e.ID, dup, err)
	}
	return got
}

func ids(list []mainlog.Entry) []string {
	out := make([]string, len(list))
	for i, e := range list {
		out[i] = e.Text
	}
	return out
}

func query(t *testing.T, st mainlog.Store, q mainlog.Query) []string {
	t.Helper()
	list, err := st.Entries(context.Background(), q)
	if err != nil {
		t.Fatalf("entries %+v: %v", q, err)
	}
	return ids(list)
}

func events(t *testing.T, st mainlog.Store) {
	ctx := context.Background()
	mustCreate(t, st, ev("main", "", t0), ev("pc-lorient", "main", t0.Add(time.Minute)))
	if err := st.CreateEvent(ctx, ev("main", "", t0)); !errors.Is(err, mainlog.ErrExists) {
		t.Fatalf("second event with the same slug: %v, want ErrExists", err)
	}
	list, err := st.Events(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("events = %+v, %v", list, err)
	}
	want := ev("pc-lorient", "main", t0.Add(time.Minute))
	if list[0].Slug != "main" || !reflect.DeepEqual(list[1], want) {
		t.Fatalf("events = %+v\nwant second %+v", list, want)
	}
}

func appendFields(t *testing.T, st mainlog.Store) {
	ctx := context.Background()
	mustCreate(t, st, ev("main", "", t0))
	late := t0.Add(-2 * time.Hour).Add(123 * time.Millisecond)
	full := entry("main", 1, "Ouverture du gymnase ; 40 lits\n« hébergement d'urgence »", "hebergement-urgence", "decision")
	full.EventTime, full.Commune, full.Annotation, full.Key = &late, "56178", "ann-1", "link-1:k1"
	full.Kind, full.Chat = mainlog.KindChat, &mainlog.ChatSource{Name: "SDIS 56", At: t0.Add(30 * time.Second)}
	full.Attachment = &mainlog.Attachment{Name: "plan.pdf", Type: mainlog.TypePDF, Size: 4, SHA256: "abcd"}
	var got []mainlog.Entry
	for i, e := range []mainlog.Entry{full, entry("main", 2, "deux"), entry("main", 3, "trois")} {
		data := []byte(nil)
		if e.Attachment != nil {
			data = []byte("%PDF")
		}
		stored, dup, err := st.Append(ctx, e, data)
		if err != nil || dup || stored.Seq != int64(i+1) {
			t.Fatalf("append %d: seq %d, dup %v, %v", i, stored.Seq, dup, err)
		}
		got = append(got, stored)
	}
	back, err := st.Entry(ctx, "main", full.ID)
	full.Seq, full.CorrectedBy = 1, nil
	if err != nil || !reflect.DeepEqual(back, full) {
		t.Fatalf("entry read back:\n got %+v, %v\nwant %+v", back, err, full)
	}
	if !reflect.DeepEqual(got[0], full) {
		t.Fatalf("append returned %+v, want %+v", got[0], full)
	}
	if _, err := st.Entry(ctx, "other", full.ID); !errors.Is(err, mainlog.ErrNotFound) {
		t.Fatalf("entry through another event: %v", err)
	}
	if _, _, err := st.Append(ctx, entry("nope", 4, "x"), nil); !errors.Is(err, mainlog.ErrNotFound) {
		t.Fatalf("append to an unknown event: %v", err)
	}
	list, _ := st.Events(ctx)
	if list[0].LastSeq != 3 {
		t.Fatalf("last seq = %d, want 3", list[0].LastSeq)
	}
}

func idempotent(t *testing.T, st mainlog.Store) {
	ctx := context.Background()
	mustCreate(t, st, ev("main", "", t0), ev("sub", "main", t0))
	first := entry("main", 1, "une fois", "transport", "decision")
	first.Key = "alert:56178:0:3"
	late := t0.Add(-time.Hour).Add(7 * time.Millisecond)
	first.EventTime, first.Commune = &late, "56178"
	first.Attachment = &mainlog.Attachment{Name: "plan.pdf", Type: mainlog.TypePDF, Size: 4, SHA256: "abcd"}
	a, dup, err := st.Append(ctx, first, []byte("%PDF"))
	if err != nil || dup {
		t.Fatalf("append: dup %v, %v", dup, err)
	}
	again := entry("main", 2, "deux fois ?")
	again.Key = first.Key
	b, dup, err := st.Append(ctx, again, nil)
	// The service compares a retry with what this returns (mainlog
	// sameContent): it must be the stored entry, every field as written.
	if err != nil || !dup || !reflect.DeepEqual(b, a) {
		t.Fatalf("same key again: %+v, dup %v, %v; want the first entry %+v", b, dup, err, a)
	}
	other := entry("sub", 3, "ailleurs")
	other.Key = first.Key
	if c := mustAppend(t, st, other); c.Seq != 1 {
		t.Fatalf("same key in another event: seq %d", c.Seq)
	}
	if got := query(t, st, mainlog.Query{Events: []string{"main"}}); !reflect.DeepEqual(got, []string{"une fois"}) {
		t.Fatalf("entries = %q", got)
	}
}

func corrections(t *testing.T, st mainlog.Store) {
	ctx := context.Background()
	mustCreate(t, st, ev("main", "", t0))
	orig := mustAppend(t, st, entry("main", 1, "Évacuation de 30 personnes"))
	fix := entry("main", 2, "Correction : 40 personnes, pas 30")
	fix.Corrects = orig.ID
	fix = mustAppend(t, st, fix)
	fix2 := entry("main", 3, "Correction : 45")
	fix2.Corrects = orig.ID
	fix2 = mustAppend(t, st, fix2)
	back, err := st.Entry(ctx, "main", orig.ID)
	if err != nil || back.Text != orig.Text || !reflect.DeepEqual(back.CorrectedBy, []string{fix.ID, fix2.ID}) {
		t.Fatalf("corrected entry = %+v, %v (want the text kept and corrected_by both)", back, err)
	}
	list, err := st.Entries(ctx, mainlog.Query{Events: []string{"main"}})
	if err != nil || len(list) != 3 || list[0].Text != orig.Text || len(list[0].CorrectedBy) != 2 || list[1].Corrects != orig.ID || list[2].CorrectedBy != nil {
		t.Fatalf("list = %+v, %v", list, err)
	}
}

func filters(t *testing.T, st mainlog.Store) {
	mustCreate(t, st, ev("main", "", t0), ev("sub", "main", t0))
	a := entry("main", 1, "a", "decision")
	b := entry("main", 2, "b", "transport", "decision")
	c := entry("sub", 3, "c", "transport")
	c.AuthorName = "SDIS 56"
	d := entry("main", 10, "d (recorded late)")
	early := t0.Add(-time.Hour)
	d.EventTime = &early
	for _, e := range []mainlog.Entry{a, b, c, d} {
		mustAppend(t, st, e)
	}
	both := []string{"main", "sub"}
	for _, tc := range []struct {
		name string
		q    mainlog.Query
		want []string
	}{
		{"one event", mainlog.Query{Events: []string{"main"}}, []string{"a", "b", "d (recorded late)"}},
		{"tree", mainlog.Query{Events: both}, []string{"a", "b", "c", "d (recorded late)"}},
		{"tag", mainlog.Query{Events: both, Tags: []string{"transport"}}, []string{"b", "c"}},
		{"tags any", mainlog.Query{Events: both, Tags: []string{"decision", "transport"}}, []string{"a", "b", "c"}},
		{"author", mainlog.Query{Events: both, Author: "SDIS 56"}, []string{"c"}},
		{"period on when it happened", mainlog.Query{Events: both, From: t0.Add(-2 * time.Hour), To: t0}, []string{"d (recorded late)"}},
		{"period", mainlog.Query{Events: both, From: t0.Add(2 * time.Minute), To: t0.Add(3 * time.Minute)}, []string{"b"}},
		{"after seq", mainlog.Query{Events: []string{"main"}, AfterSeq: 2}, []string{"d (recorded late)"}},
		{"desc", mainlog.Query{Events: both, Desc: true, Limit: 2}, []string{"d (recorded late)", "c"}},
		{"nothing", mainlog.Query{Events: both, Tags: []string{"dechets"}}, []string{}},
	} {
		if got := query(t, st, tc.q); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func search(t *testing.T, st mainlog.Store) {
	mustCreate(t, st, ev("main", "", t0))
	for i, s := range []string{
		"Ouverture du gymnase Jean-Moulin à Lorient",
		"Le préfet décide la fermeture des écoles",
		"Gymnase plein ; transfert vers la salle des fêtes",
		`<script>alert("x")</script> texte piégé`,
	} {
		mustAppend(t, st, entry("main", i+1, s))
	}
	all := []string{"main"}
	for _, tc := range []struct{ q, want []string }{
		{[]string{"gymnase"}, []string{"Ouverture du gymnase Jean-Moulin à Lorient", "Gymnase plein ; transfert vers la salle des fêtes"}},
		{[]string{"GYMNASE lorient"}, []string{"Ouverture du gymnase Jean-Moulin à Lorient"}},
		{[]string{"gymn"}, []string{"Ouverture du gymnase Jean-Moulin à Lorient", "Gymnase plein ; transfert vers la salle des fêtes"}},
		{[]string{"fermeture écoles"}, []string{"Le préfet décide la fermeture des écoles"}},
		{[]string{"script"}, []string{`<script>alert("x")</script> texte piégé`}},
		{[]string{"hélicoptère"}, []string{}},
	} {
		if got := query(t, st, mainlog.Query{Events: all, Text: tc.q[0]}); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("search %q: %q, want %q", tc.q[0], got, tc.want)
		}
	}
	// Whatever a person types is a search, never a syntax error.
	for _, q := range []string{`"`, `gymnase"`, `*`, `a:b & | ! ( ) NEAR(x y)`, `'; DROP TABLE x; --`, `-gymnase`, `^`} {
		if _, err := st.Entries(context.Background(), mainlog.Query{Events: all, Text: q}); err != nil {
			t.Errorf("search %q: %v", q, err)
		}
	}
}

func pages(t *testing.T, st mainlog.Store) {
	mustCreate(t, st, ev("main", "", t0))
	var want []string
	for i := 0; i < 25; i++ {
		e := mustAppend(t, st, entry("main", i, fmt.Sprintf("e%02d", i)))
		want = append(want, e.Text)
	}
	var got []string
	var after *mainlog.Cursor
	for {
		list, err := st.Entries(context.Background(), mainlog.Query{Events: []string{"main"}, After: after, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ids(list)...)
		if len(list) < 10 {
			break
		}
		last := list[len(list)-1]
		after = &mainlog.Cursor{At: last.CreatedAt, ID: last.ID}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("paged forward: %q", got)
	}
	var back []string
	var before *mainlog.Cursor
	for {
		list, err := st.Entries(context.Background(), mainlog.Query{Events: []string{"main"}, Before: before, Desc: true, Limit: 7})
		if err != nil {
			t.Fatal(err)
		}
		back = append(back, ids(list)...)
		if len(list) < 7 {
			break
		}
		last := list[len(list)-1]
		before = &mainlog.Cursor{At: last.CreatedAt, ID: last.ID}
	}
	sort.Strings(back)
	if !reflect.DeepEqual(back, want) {
		t.Fatalf("paged backward: %q", back)
	}
}

func attachment(t *testing.T, st mainlog.Store) {
	ctx := context.Background()
	mustCreate(t, st, ev("main", "", t0))
	data := make([]byte, 300_000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	e := entry("main", 1, "plan joint")
	e.Attachment = &mainlog.Attachment{Name: "plan.png", Type: mainlog.TypePNG, Size: int64(len(data)), SHA256: "x"}
	if _, _, err := st.Append(ctx, e, data); err != nil {
		t.Fatal(err)
	}
	got, err := st.AttachmentData(ctx, "main", e.ID)
	if err != nil || !reflect.DeepEqual(got, data) {
		t.Fatalf("attachment read back: %d bytes, %v", len(got), err)
	}
	plain := mustAppend(t, st, entry("main", 2, "sans pièce jointe"))
	if _, err := st.AttachmentData(ctx, "main", plain.ID); !errors.Is(err, mainlog.ErrNotFound) {
		t.Fatalf("no attachment: %v", err)
	}
}

func board(t *testing.T, st mainlog.Store) {
	ctx := context.Background()
	mustCreate(t, st, ev("main", "", t0))
	b0, err := st.Board(ctx, "main")
	if err != nil || b0.Version != 0 || b0.Severity != "" || b0.Event != "main" {
		t.Fatalf("new event's board = %+v, %v", b0, err)
	}
	v1 := mainlog.Board{Event: "main", Version: 1, Severity: "jaune", Criteria: "Canicule niveau 3", Situation: "Températures > 38 °C",
		Stakes: "EHPAD", Means: "2 VSAV", NextPoint: "14h00", AuthorID: "link-1", AuthorName: "Claire", At: t0}
	e1, err := st.PutBoard(ctx, v1, entry("main", 1, "Tableau v1"))
	if err != nil || e1.Seq != 1 {
		t.Fatalf("put v1: %+v, %v", e1, err)
	}
	stale := v1
	stale.Severity = "rouge"
	if _, err := st.PutBoard(ctx, stale, entry("main", 2, "Tableau v1 bis")); !errors.Is(err, mainlog.ErrConflict) {
		t.Fatalf("second v1: %v, want ErrConflict", err)
	}
	v2 := v1
	v2.Version, v2.Severity, v2.At = 2, "orange", t0.Add(time.Hour)
	if _, err := st.PutBoard(ctx, v2, entry("main", 3, "Tableau v2")); err != nil {
		t.Fatal(err)
	}
	cur, err := st.Board(ctx, "main")
	if err != nil || !reflect.DeepEqual(cur, v2) {
		t.Fatalf("current board = %+v, %v", cur, err)
	}
	all, err := st.Boards(ctx, "main")
	if err != nil || len(all) != 2 || !reflect.DeepEqual(all[0], v1) {
		t.Fatalf("versions = %+v, %v", all, err)
	}
	if got := query(t, st, mainlog.Query{Events: []string{"main"}}); !reflect.DeepEqual(got, []string{"Tableau v1", "Tableau v2"}) {
		t.Fatalf("the board's log = %q (a refused change must log nothing)", got)
	}
}

func tags(t *testing.T, st mainlog.Store) {
	ctx := context.Background()
	mustCreate(t, st, ev("main", "", t0))
	want := append(mainlog.DefaultTags(), mainlog.Tag{ID: "secheresse", Label: "sécheresse"})
	want[0].Retired = true
	e, err := st.SetTags(ctx, "main", want, entry("main", 1, "Étiquettes modifiées"))
	if err != nil || e.Seq != 1 {
		t.Fatalf("set tags: %+v, %v", e, err)
	}
	list, err := st.Events(ctx)
	if err != nil || !reflect.DeepEqual(list[0].Tags, want) || list[0].LastSeq != 1 {
		t.Fatalf("tags = %+v, last seq %d, %v", list[0].Tags, list[0].LastSeq, err)
	}
}

func concurrent(t *testing.T, st mainlog.Store) {
	mustCreate(t, st, ev("main", "", t0))
	const n = 20
	var wg sync.WaitGroup
	seqs := make(chan int64, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			e, _, err := st.Append(context.Background(), entry("main", i, fmt.Sprint(i)), nil)
			if err != nil {
				t.Error(err)
				return
			}
			seqs <- e.Seq
		}(i)
	}
	wg.Wait()
	close(seqs)
	seen := map[int64]bool{}
	for s := range seqs {
		seen[s] = true
	}
	for i := int64(1); i <= n; i++ {
		if !seen[i] {
			t.Fatalf("concurrent appends: numbers %v, want 1..%d without gaps", seen, n)
		}
	}
}
