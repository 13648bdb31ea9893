package mainlog_test

import (
	"bytes"
	"context"
	"crisisroom/access"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"crisisroom/app"
	"crisisroom/declarations"
	"crisisroom/mainlog"
)

// tricky texts: the separator, quotes, line breaks, a formula, accents.
var tricky = []string{
	`Réunion COD ; décision : ouverture du gymnase`,
	`Le maire dit "pas avant 18h" ; à confirmer`,
	"Ligne 1\nLigne 2\r\nLigne 3",
	`=HYPERLINK("http://exemple.invalid","cliquez")`,
	`- 3 personnes évacuées, 🚒 sur place`,
}

// TestLogCSVExport10000: the CSV of 10,000 entries is complete and reads
// back exactly: UTF-8 with a BOM, ';' separators, CRLF lines, quoting of
// ';', quotes and line breaks, formulas neutralised.
func TestLogCSVExport10000(t *testing.T) {
	e := start(t)
	const n = 10_000
	began := time.Now()
	actor := mainlog.Actor{ID: "link-csv", Label: "préfecture", P: access.LinkPrincipal("link-csv", "préfecture", app.MainRoom, access.Participant, "", false)}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				in := mainlog.EntryInput{Text: fmt.Sprintf("%05d %s", i, tricky[i%len(tricky)]), Tags: []string{"decision"}, Author: "Auteur ; « n° " + fmt.Sprint(w) + " »"}
				if _, _, err := e.app.Mainlog.Write(context.Background(), actor, app.MainRoom, in, nil); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("10,000 entries written in %v", time.Since(began).Round(time.Millisecond))

	began = time.Now()
	a := e.do(http.MethodGet, "/api/v1/events/main/log.csv", e.member, "", nil)
	t.Logf("export: %d bytes in %v", len(a.body), time.Since(began).Round(time.Millisecond))
	if a.status != http.StatusOK || !strings.HasPrefix(a.header.Get("Content-Type"), "text/csv; charset=utf-8") ||
		!strings.Contains(a.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("export: HTTP %d %v", a.status, a.header)
	}
	if !bytes.HasPrefix(a.body, []byte("\xef\xbb\xbf")) {
		t.Fatalf("no UTF-8 BOM: %q", a.body[:10])
	}
	body := a.body[3:]
	if !bytes.HasPrefix(body, []byte("n°;événement;enregistrée le;")) || !bytes.Contains(body, []byte("\r\n")) {
		t.Fatalf("header line: %q", body[:80])
	}
	r := csv.NewReader(bytes.NewReader(body))
	r.Comma = ';'
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatalf("the CSV does not read back: %v", err)
	}
	if len(rows) != n+1 {
		t.Fatalf("%d rows, want %d entries and the header", len(rows)-1, n)
	}
	seen := make([]bool, n)
	for k, row := range rows[1:] {
		if len(row) != len(rows[0]) {
			t.Fatalf("row %d has %d fields, want %d", k, len(row), len(rows[0]))
		}
		var seq, i int
		fmt.Sscan(row[0], &seq)
		if seq != k+1 {
			t.Fatalf("row %d has number %d: numbers must run 1..%d in order", k, seq, n)
		}
		text := row[8]
		if _, err := fmt.Sscanf(text, "%05d", &i); err != nil || i < 0 || i >= n || seen[i] {
			t.Fatalf("row %d: text %q", k, text)
		}
		seen[i] = true
		want := fmt.Sprintf("%05d %s", i, strings.ReplaceAll(tricky[i%len(tricky)], "\r\n", "\n"))
		if text != want {
			t.Fatalf("row %d: text %q, want %q", k, text, want)
		}
		if row[4] == "" || !strings.HasPrefix(row[4], "Auteur ; « n° ") || row[7] != "décision" || row[6] != "saisie" {
			t.Fatalf("row %d: %q", k, row)
		}
	}
	// A formula at the start of a cell is neutralised.
	fe := e.write(e.member, map[string]any{"text": `=1+1`})
	a = e.do(http.MethodGet, "/api/v1/events/main/log.csv?after_seq="+fmt.Sprint(fe.Seq-1), e.member, "", nil)
	r = csv.NewReader(bytes.NewReader(a.body[3:]))
	r.Comma = ';'
	rows, err = r.ReadAll()
	if err != nil || len(rows) != 2 || rows[1][8] != `'=1+1` {
		t.Fatalf("formula cell: %q, %v", rows, err)
	}
}

// TestLogAlertLevels: an alert level change of the declarations is written
// to the main courante by the system, marked as such, once.
func TestLogAlertLevels(t *testing.T) {
	e := start(t)
	loc, _ := time.LoadLocation("Europe/Paris")
	body, _ := json.Marshal(map[string]any{"commune": "56178", "date": time.Now().In(loc).Format("2006-01-02"),
		"place": "domicile", "count": 10, "idempotency_key": "alert-test-1"})
	if a := e.do(http.MethodPost, "/api/v1/declarations", e.host, "application/json", body); a.status != http.StatusCreated {
		t.Fatalf("declare: HTTP %d %s", a.status, a.body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var got []mainlog.Entry
		for _, x := range e.list(e.member, "") {
			if x.Kind == mainlog.KindSystem {
				got = append(got, x)
			}
		}
		var pontivy *mainlog.Entry
		for i := range got {
			if got[i].Commune == "56178" {
				pontivy = &got[i]
			}
		}
		if pontivy != nil {
			if pontivy.AuthorID != "system" || !strings.Contains(pontivy.Text, "Pontivy (56178)") || !strings.Contains(pontivy.Text, "crise (rouge)") {
				t.Fatalf("alert entry: %+v", *pontivy)
			}
			t.Logf("system entries: %d, e.g. %q", len(got), pontivy.Text)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no system entry for Pontivy's level change: %+v", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The same change received twice (two instances of a cluster) is one entry.
	ev := declarations.AlertEvent{Commune: "56121", From: declarations.LevelNormal, To: declarations.LevelAlerte, At: time.Now().UTC()}
	// Counted by their text: other system entries (the département's own
	// level change) may still arrive from the declaration above.
	count := func() int {
		n := 0
		for _, x := range e.list(e.member, "") {
			if x.Text == "Niveau d'alerte de test" {
				n++
			}
		}
		return n
	}
	before := count()
	for i := 0; i < 2; i++ {
		if _, err := e.app.Mainlog.System(context.Background(), app.MainRoom, "Niveau d'alerte de test", "56121",
			fmt.Sprintf("alert:%s:%d:%d:%d", ev.Commune, ev.From, ev.To, ev.At.UnixMilli())); err != nil {
			t.Fatal(err)
		}
	}
	if after := count(); after != before+1 {
		t.Fatalf("the same alert key twice: %d entries more, want 1", after-before)
	}
}
