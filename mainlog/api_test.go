package mainlog_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"crisisroom/mainlog"
	"crisisroom/rooms"
)

// TestLogAppendOnly: no path of the API deletes or alters a stored entry.
// Every other method on the log and on an entry is answered 405 with a
// message; a correction is a new entry, and both stay.
func TestLogAppendOnly(t *testing.T) {
	e := start(t)
	orig := e.write(e.member, map[string]any{"text": "Évacuation de 30 personnes", "tags": []string{"decision"}, "author": "Claire"})
	if orig.ID == "" || orig.Seq < 1 || orig.Kind != mainlog.KindNote || orig.AuthorName != "Claire" || !reflect.DeepEqual(orig.Tags, []string{"decision"}) {
		t.Fatalf("created entry: %+v", orig)
	}
	body, _ := json.Marshal(map[string]any{"text": "altered", "tags": []string{}})
	paths := []string{"/api/v1/events/main/log/" + orig.ID, "/api/v1/events/main/log", "/api/v1/events/main/log/" + orig.ID + "/attachment"}
	for _, p := range paths {
		for _, m := range []string{http.MethodDelete, http.MethodPut, http.MethodPatch} {
			// Without a credential the gate answers 401 first, like on
			// every route; whoever may read the log learns it is append-only.
			if a := e.do(m, p, "", "application/json", body); a.status != http.StatusUnauthorized {
				t.Errorf("%s %s without a token: HTTP %d, want 401", m, p, a.status)
			}
			for _, tok := range []string{e.host, e.member} {
				a := e.do(m, p, tok, "application/json", body)
				if a.status != http.StatusMethodNotAllowed || a.header.Get("Allow") == "" {
					t.Errorf("%s %s: HTTP %d (Allow %q), want 405", m, p, a.status, a.header.Get("Allow"))
					continue
				}
				if code, _ := a.apiErr(t); code != "append_only" {
					t.Errorf("%s %s: error %q", m, p, code)
				}
			}
		}
	}
	if a := e.do(http.MethodPost, "/api/v1/events/main/log/"+orig.ID, e.host, "application/json", body); a.status != http.StatusMethodNotAllowed {
		t.Errorf("POST on an entry: HTTP %d, want 405", a.status)
	}

	fix := e.write(e.member, map[string]any{"text": "Correction : 40 personnes", "corrects": orig.ID})
	if fix.Corrects != orig.ID || fix.Seq != orig.Seq+1 {
		t.Fatalf("correction: %+v", fix)
	}
	a := e.do(http.MethodGet, "/api/v1/events/main/log/"+orig.ID, e.member, "", nil)
	var back mainlog.Entry
	a.json(t, &back)
	back.CorrectedBy, orig.CorrectedBy = nil, nil
	if a.status != http.StatusOK || !reflect.DeepEqual(back, orig) {
		t.Fatalf("the original after all that: HTTP %d\n got %+v\nwant %+v", a.status, back, orig)
	}
	list := e.list(e.member, "")
	texts := map[string]mainlog.Entry{}
	for _, x := range list {
		texts[x.Text] = x
	}
	if o, f := texts["Évacuation de 30 personnes"], texts["Correction : 40 personnes"]; o.ID != orig.ID || !reflect.DeepEqual(o.CorrectedBy, []string{fix.ID}) || f.Corrects != orig.ID {
		t.Fatalf("both stay, linked: %+v", list)
	}
	// A correction must point at an entry of the same log.
	if a := e.post("/api/v1/events/main/log", e.member, map[string]any{"text": "x", "corrects": "nope"}); a.status != http.StatusUnprocessableEntity {
		t.Fatalf("correction of an unknown entry: HTTP %d", a.status)
	}
}

// TestLogBadInput: each bad input gets a clear refusal, nothing partial is
// stored, and the valid entries around them are all there.
func TestLogBadInput(t *testing.T) {
	e := start(t)
	e.write(e.member, map[string]any{"text": "avant"})
	huge := strings.Repeat("é", 500_000) // 1 MB of text
	type refusal struct {
		name   string
		status int
		code   string
		needle string // in the message
		a      func() answer
	}
	pdf := append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("x"), mainlog.MaxAttachmentBytes)...)
	for _, r := range []refusal{
		{"1 MB of text", 413, "too_large", "10000", func() answer { return e.post("/api/v1/events/main/log", e.member, map[string]any{"text": huge}) }},
		{"20,000 characters", 413, "too_large", "20000", func() answer {
			return e.post("/api/v1/events/main/log", e.member, map[string]any{"text": strings.Repeat("a", 20_000)})
		}},
		{"unknown tag", 422, "invalid", "inconnue", func() answer {
			return e.post("/api/v1/events/main/log", e.member, map[string]any{"text": "x", "tags": []string{"decision", "licorne"}})
		}},
		{"empty text", 422, "invalid", "obligatoire", func() answer { return e.post("/api/v1/events/main/log", e.member, map[string]any{"text": "  "}) }},
		{"control characters", 422, "invalid", "contrôle", func() answer { return e.post("/api/v1/events/main/log", e.member, map[string]any{"text": "a\x00b"}) }},
		{"unknown commune", 422, "invalid", "commune", func() answer {
			return e.post("/api/v1/events/main/log", e.member, map[string]any{"text": "x", "commune": "99999"})
		}},
		{"event time in the future", 422, "invalid", "futur", func() answer {
			return e.post("/api/v1/events/main/log", e.member, map[string]any{"text": "x", "event_time": time.Now().Add(time.Hour)})
		}},
		{"unknown field", 400, "bad_request", "JSON", func() answer {
			return e.post("/api/v1/events/main/log", e.member, map[string]any{"text": "x", "seq": 1})
		}},
		{"attachment over 5 MiB", 413, "too_large", "5 Mio", func() answer {
			ct, b := multipartBody(t, map[string]any{"text": "plan"}, "plan.pdf", pdf)
			return e.do(http.MethodPost, "/api/v1/events/main/log", e.member, ct, b)
		}},
		{"HTML attachment", 422, "invalid", "text/html", func() answer {
			ct, b := multipartBody(t, map[string]any{"text": "page"}, "note.txt", []byte("<html><script>alert(1)</script></html>"))
			return e.do(http.MethodPost, "/api/v1/events/main/log", e.member, ct, b)
		}},
		{"SVG attachment", 422, "invalid", "refusé", func() answer {
			ct, b := multipartBody(t, map[string]any{"text": "image"}, "carte.png", []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`))
			return e.do(http.MethodPost, "/api/v1/events/main/log", e.member, ct, b)
		}},
		{"executable named .pdf", 422, "invalid", "refusé", func() answer {
			ct, b := multipartBody(t, map[string]any{"text": "exe"}, "rapport.pdf", append([]byte("MZ\x90\x00\x03"), make([]byte, 100)...))
			return e.do(http.MethodPost, "/api/v1/events/main/log", e.member, ct, b)
		}},
		{"no token", 401, "unauthenticated", "Lien", func() answer { return e.post("/api/v1/events/main/log", "", map[string]any{"text": "x"}) }},
	} {
		a := r.a()
		code, msg := a.apiErr(t)
		if a.status != r.status || code != r.code || !strings.Contains(msg, r.needle) {
			t.Errorf("%s: HTTP %d %s %q, want %d %s containing %q", r.name, a.status, code, msg, r.status, r.code, r.needle)
		}
	}
	// HTML and script in the text are stored as written (the pages show
	// them as text); attachments of each accepted type are sniffed.
	script := `<img src=x onerror=alert(1)><script>alert("log")</script>`
	e.write(e.member, map[string]any{"text": script})
	for _, f := range []struct{ name, typ string }{{"plan.png", mainlog.TypePNG}, {"relevé.csv", mainlog.TypeCSV}, {"notes.txt", mainlog.TypeText}} {
		data := []byte("\x89PNG\r\n\x1a\n0000")
		if f.typ != mainlog.TypePNG {
			data = []byte("commune;décès\n56178;3\n")
		}
		ct, b := multipartBody(t, map[string]any{"text": "pièce " + f.name}, f.name, data)
		a := e.do(http.MethodPost, "/api/v1/events/main/log", e.member, ct, b)
		var got mainlog.Entry
		a.json(t, &got)
		if a.status != http.StatusCreated || got.Attachment == nil || got.Attachment.Type != f.typ || got.Attachment.Name != f.name {
			t.Fatalf("attachment %s: HTTP %d %+v", f.name, a.status, got.Attachment)
		}
		d := e.do(http.MethodGet, "/api/v1/events/main/log/"+got.ID+"/attachment", e.host, "", nil)
		if d.status != http.StatusOK || !bytes.Equal(d.body, data) || d.header.Get("Content-Type") != f.typ ||
			!strings.HasPrefix(d.header.Get("Content-Disposition"), "attachment") || !strings.Contains(d.header.Get("Content-Security-Policy"), "sandbox") {
			t.Fatalf("download %s: HTTP %d %q %v", f.name, d.status, d.body, d.header)
		}
	}
	e.write(e.member, map[string]any{"text": "après"})
	var texts []string
	for _, x := range e.list(e.member, "") {
		texts = append(texts, x.Text)
	}
	want := []string{"avant", script, "pièce plan.png", "pièce relevé.csv", "pièce notes.txt", "après"}
	if !reflect.DeepEqual(texts, want) {
		t.Fatalf("the log after the refusals: %q\nwant %q", texts, want)
	}
}

// TestLogRights: who may read and write what.
func TestLogRights(t *testing.T) {
	e := start(t)
	communes, err := e.app.NewCommuneLinks(t.Context(), []string{"56178"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	board := map[string]any{"version": 0, "severity": "jaune", "situation": "Canicule"}
	for _, c := range []struct {
		name   string
		status int
		a      func() answer
	}{
		{"commune link reads", 403, func() answer { return e.do(http.MethodGet, "/api/v1/events/main/log", communes[0].Token, "", nil) }},
		{"forged token", 401, func() answer {
			return e.do(http.MethodGet, "/api/v1/events/main/log", strings.Repeat("a", 40), "", nil)
		}},
		{"participant edits the board", 403, func() answer { return e.put("/api/v1/events/main/board", e.member, board) }},
		{"participant creates a sub-event", 403, func() answer {
			return e.post("/api/v1/events/main/events", e.member, map[string]any{"title": "x", "kind": "tactique"})
		}},
		{"participant edits the tags", 403, func() answer { return e.put("/api/v1/events/main/tags", e.member, map[string]any{"tags": []any{}}) }},
		// The same answer as for an event one does not belong to: a link
		// does not learn which events exist.
		{"unknown event", 403, func() answer { return e.do(http.MethodGet, "/api/v1/events/nope/log", e.host, "", nil) }},
		{"host edits the board", 200, func() answer { return e.put("/api/v1/events/main/board", e.host, board) }},
	} {
		if a := c.a(); a.status != c.status {
			t.Errorf("%s: HTTP %d %s, want %d", c.name, a.status, a.body, c.status)
		}
	}

	// A sub-event: its own room and links; the parent's hosts see it, its
	// own members do not see the parent.
	a := e.post("/api/v1/events/main/events", e.host, map[string]any{"title": "PC Lorient – hébergement", "kind": "tactique", "author": "Claire"})
	var sub struct {
		Event mainlog.Event
		Links mainlog.Links
	}
	a.json(t, &sub)
	if a.status != http.StatusCreated || sub.Event.Slug != "pc-lorient-hebergement" || sub.Event.Parent != "main" || sub.Event.Room != sub.Event.Slug ||
		!strings.Contains(sub.Links.Host, "/r/pc-lorient-hebergement#t=") || !strings.Contains(sub.Links.Participant, "#t=") {
		t.Fatalf("sub-event: HTTP %d %+v", a.status, sub)
	}
	_, subTok, _ := strings.Cut(sub.Links.Participant, "#t=")
	if a := e.do(http.MethodGet, "/api/v1/events/main/log", subTok, "", nil); a.status != http.StatusForbidden {
		t.Errorf("a sub-event member reads the parent: HTTP %d", a.status)
	}
	e.write(e.member, map[string]any{"text": "dans le principal"})
	if a := e.post("/api/v1/events/pc-lorient-hebergement/log", subTok, map[string]any{"text": "dans le sous-événement"}); a.status != http.StatusCreated {
		t.Fatalf("write to the sub-event: HTTP %d %s", a.status, a.body)
	}
	var tree struct {
		Home   string
		Events []mainlog.Event
	}
	e.do(http.MethodGet, "/api/v1/events", e.host, "", nil).json(t, &tree)
	if tree.Home != "main" || len(tree.Events) != 2 {
		t.Fatalf("the host's tree: %+v", tree)
	}
	e.do(http.MethodGet, "/api/v1/events", subTok, "", nil).json(t, &tree)
	if tree.Home != "pc-lorient-hebergement" || len(tree.Events) != 1 {
		t.Fatalf("the sub-event member's tree: %+v", tree)
	}
	both := e.list(e.host, "tree=1")
	if n := len(both); n != 5 { // board v1, sub-event created, "dans le principal", event created, "dans le sous-événement"
		t.Fatalf("main with its sub-events: %d entries", n)
	}
	if only := e.list(e.host, ""); len(only) != 3 {
		t.Fatalf("main alone: %d entries", len(only))
	}
	if _, err := e.app.NewRoomLink(t.Context(), sub.Event.Room, rooms.RoleParticipant, "x", time.Hour); err != nil {
		t.Fatalf("the sub-event's room exists for links: %v", err)
	}
}

// TestLogBoardAndTags: each board change is a version and a log entry; a
// change based on an old version is refused; the taxonomy is the event's.
func TestLogBoardAndTags(t *testing.T) {
	e := start(t)
	w := e.watch(e.member)
	w.next(mainlog.TypeSnapshot)
	put := func(version int, sev string) answer {
		return e.put("/api/v1/events/main/board", e.host, map[string]any{"version": version, "severity": sev,
			"criteria": "Canicule niveau 3", "situation": "38 °C", "stakes": "EHPAD", "means": "2 VSAV", "next_point": "14h00", "author": "Claire"})
	}
	if a := put(0, "jaune"); a.status != http.StatusOK {
		t.Fatalf("v1: HTTP %d %s", a.status, a.body)
	}
	if a := put(1, "rouge"); a.status != http.StatusOK {
		t.Fatalf("v2: HTTP %d %s", a.status, a.body)
	}
	if a := put(1, "vert"); a.status != http.StatusConflict {
		t.Fatalf("stale v2: HTTP %d %s, want 409", a.status, a.body)
	}
	if a := put(2, "rouge"); a.status != http.StatusUnprocessableEntity {
		t.Fatalf("no change: HTTP %d, want 422", a.status)
	}
	if a := put(2, "violet"); a.status != http.StatusUnprocessableEntity {
		t.Fatalf("unknown severity: HTTP %d, want 422", a.status)
	}
	var b mainlog.Board
	json.Unmarshal(w.next(mainlog.TypeBoard), &b)
	json.Unmarshal(w.next(mainlog.TypeBoard), &b)
	if b.Version != 2 || b.Severity != "rouge" || b.AuthorName != "Claire" {
		t.Fatalf("live board: %+v", b)
	}
	var hist struct{ Versions []mainlog.Board }
	e.do(http.MethodGet, "/api/v1/events/main/board/history", e.member, "", nil).json(t, &hist)
	if len(hist.Versions) != 2 || hist.Versions[0].Severity != "jaune" {
		t.Fatalf("history: %+v", hist)
	}
	log := e.list(e.member, "")
	if len(log) != 2 || log[1].Kind != mainlog.KindBoard || !strings.Contains(log[1].Text, "jaune → rouge") || !strings.Contains(log[0].Text, "Situation : 38 °C") {
		t.Fatalf("board changes in the log: %+v", log)
	}

	// Taxonomy: add one, retire one; the retired tag is refused on new
	// entries but stays on old ones.
	old := e.write(e.member, map[string]any{"text": "avant", "tags": []string{"dechets"}})
	var tags []mainlog.Tag
	for _, tg := range mainlog.DefaultTags() {
		if tg.ID != "dechets" {
			tags = append(tags, tg)
		}
	}
	tags = append(tags, mainlog.Tag{Label: "Sécheresse"})
	if a := e.put("/api/v1/events/main/tags", e.host, map[string]any{"tags": tags, "author": "Claire"}); a.status != http.StatusOK {
		t.Fatalf("set tags: HTTP %d %s", a.status, a.body)
	}
	var ev mainlog.Event
	json.Unmarshal(w.next(mainlog.TypeEvent), &ev)
	if n := len(ev.Tags); n != 12 || ev.Tags[8].ID != "dechets" || !ev.Tags[8].Retired || ev.Tags[11].ID != "secheresse" {
		t.Fatalf("live taxonomy: %+v", ev.Tags)
	}
	if a := e.post("/api/v1/events/main/log", e.member, map[string]any{"text": "x", "tags": []string{"dechets"}}); a.status != http.StatusUnprocessableEntity {
		t.Fatalf("retired tag: HTTP %d", a.status)
	}
	e.write(e.member, map[string]any{"text": "après", "tags": []string{"Sécheresse"}})
	if got := e.list(e.member, "tag=dechets"); len(got) != 1 || got[0].ID != old.ID {
		t.Fatalf("entries with the retired tag: %+v", got)
	}
	if got := e.list(e.member, "tag=secheresse"); len(got) != 1 || got[0].Text != "après" {
		t.Fatalf("entries with the new tag: %+v", got)
	}
}

// TestLogFiltersAndLive: filters of the list; a watcher of the room gets
// every entry live, numbered without gaps; an idempotent retry is one entry.
func TestLogFiltersAndLive(t *testing.T) {
	e := start(t)
	w := e.watch(e.member)
	var snap mainlog.Snapshot
	json.Unmarshal(w.next(mainlog.TypeSnapshot), &snap)
	if snap.Room != "main" || len(snap.Events) != 1 || snap.Events[0].Slug != "main" {
		t.Fatalf("snapshot: %+v", snap)
	}
	late := time.Now().Add(-3 * time.Hour).UTC().Truncate(time.Second)
	e.write(e.member, map[string]any{"text": "Gymnase Jean-Moulin ouvert", "tags": []string{"hebergement-urgence"}, "author": "Claire"})
	e.write(e.host, map[string]any{"text": "Fermeture des écoles décidée", "tags": []string{"decision"}, "author": "Préfet"})
	e.write(e.member, map[string]any{"text": "Coupure électrique (signalée en retard)", "event_time": late, "author": "Claire", "commune": "56178"})
	first := e.write(e.member, map[string]any{"text": "Une seule fois", "key": "k-1"})
	again := e.post("/api/v1/events/main/log", e.member, map[string]any{"text": "Une seule fois", "key": "k-1"})
	var dup mainlog.Entry
	again.json(t, &dup)
	if again.status != http.StatusOK || dup.ID != first.ID {
		t.Fatalf("retry with the same key: HTTP %d %+v", again.status, dup)
	}
	for i := 1; i <= 4; i++ {
		var got mainlog.Entry
		json.Unmarshal(w.next(mainlog.TypeEntry), &got)
		if got.Seq != int64(i) {
			t.Fatalf("live entry %d has number %d", i, got.Seq)
		}
	}
	texts := func(q string) []string {
		var out []string
		for _, x := range e.list(e.member, q) {
			out = append(out, x.Text)
		}
		return out
	}
	for _, c := range []struct {
		q    string
		want []string
	}{
		{"tag=decision", []string{"Fermeture des écoles décidée"}},
		{"author=Claire&tag=hebergement-urgence", []string{"Gymnase Jean-Moulin ouvert"}},
		{"q=gymnase", []string{"Gymnase Jean-Moulin ouvert"}},
		{"q=%C3%A9coles+ferm", []string{"Fermeture des écoles décidée"}},
		{"to=" + time.Now().Add(-time.Hour).Format(time.RFC3339), []string{"Coupure électrique (signalée en retard)"}},
		{"order=desc&limit=1", []string{"Une seule fois"}},
	} {
		if got := texts(c.q); !reflect.DeepEqual(got, c.want) {
			t.Errorf("filter %s: %q, want %q", c.q, got, c.want)
		}
	}
	// The list is a JSON array; a next page is announced in a header.
	a := e.do(http.MethodGet, "/api/v1/events/main/log?limit=2", e.member, "", nil)
	var page []mainlog.Entry
	a.json(t, &page)
	if len(page) != 2 || a.header.Get(mainlog.MoreHeader) != "true" || !bytes.HasPrefix(a.body, []byte("[")) {
		t.Errorf("page of 2: %d entries, %s %q", len(page), mainlog.MoreHeader, a.header.Get(mainlog.MoreHeader))
	}
	a = e.do(http.MethodGet, "/api/v1/events/main/log?limit=2&after="+page[1].ID, e.member, "", nil)
	a.json(t, &page)
	if len(page) != 2 || a.header.Get(mainlog.MoreHeader) != "" || page[1].ID != first.ID {
		t.Errorf("last page: %+v, %s %q", page, mainlog.MoreHeader, a.header.Get(mainlog.MoreHeader))
	}
	if a := e.do(http.MethodGet, "/api/v1/events/main/log?from=hier", e.member, "", nil); a.status != http.StatusBadRequest {
		t.Errorf("bad date: HTTP %d", a.status)
	}
}
