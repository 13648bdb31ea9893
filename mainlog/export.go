package mainlog

import (
	"bufio"
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
)

// exportPage is how many entries the export reads at a time: a log of any
// length streams in constant memory.
const exportPage = 1000

// csvHeader names the export's columns (French: the file is for the
// prefecture's archive and its spreadsheet).
var csvHeader = []string{"n°", "événement", "enregistrée le", "faits du", "auteur", "lien", "type", "étiquettes",
	"texte", "corrige", "corrigée par", "commune", "annotation", "pièce jointe", "pièce jointe sha256", "identifiant"}

var kindNames = map[string]string{KindNote: "saisie", KindChat: "discussion", KindBoard: "tableau de situation", KindSystem: "système"}

// export streams the filtered log as CSV: UTF-8 with a BOM (French Excel
// then reads the accents), ';' between fields (a French locale's list
// separator), CRLF lines, fields quoted when they hold ';', quotes or line
// breaks (RFC 4180). Times are local to the deployment.
func (a *API) export(w http.ResponseWriter, r *http.Request, actor Actor) {
	q, tree, err := a.query(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	slug := chi.URLParam(r, "slug")
	ev, err := a.Svc.Visible(r.Context(), actor, slug)
	if err != nil {
		a.fail(w, err)
		return
	}
	q.Desc, q.Limit, q.Before = false, exportPage, nil
	// The first page is read before answering, so that a failing store
	// still gets a proper error status.
	page, err := a.Svc.List(r.Context(), actor, slug, q, tree)
	if err != nil {
		a.fail(w, err)
		return
	}
	names := a.names()
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="main-courante-`+ev.Slug+"-"+time.Now().In(a.Loc).Format("20060102-1504")+`.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString("\ufeff")
	cw := csv.NewWriter(bw)
	cw.Comma, cw.UseCRLF = ';', true
	_ = cw.Write(csvHeader)
	for {
		for _, e := range page {
			_ = cw.Write(a.row(e, names))
		}
		if len(page) < exportPage {
			break
		}
		last := page[len(page)-1]
		q.After = &Cursor{At: last.CreatedAt, ID: last.ID}
		if page, err = a.Svc.List(r.Context(), actor, slug, q, tree); err != nil {
			// The status is sent: the truncated file ends with a line that
			// says so, rather than passing for complete.
			a.Log.Error("log export interrupted", "event", slug, "err", err)
			_ = cw.Write([]string{"", "", "", "", "", "", "", "", "EXPORT INTERROMPU : fichier incomplet, recommencez l'export"})
			break
		}
	}
	cw.Flush()
	_ = bw.Flush()
}

// exportNames resolves tag IDs and event titles.
type exportNames struct {
	tags   map[string]map[string]string // event → tag ID → label
	titles map[string]string
}

func (a *API) names() exportNames {
	n := exportNames{tags: map[string]map[string]string{}, titles: map[string]string{}}
	for _, e := range a.Svc.hub.all() {
		m := map[string]string{}
		for _, t := range e.Tags {
			m[t.ID] = t.Label
		}
		n.tags[e.Slug], n.titles[e.Slug] = m, e.Title
	}
	return n
}

func (a *API) row(e Entry, n exportNames) []string {
	const layout = "2006-01-02 15:04:05"
	tags := make([]string, len(e.Tags))
	for i, id := range e.Tags {
		if l := n.tags[e.Event][id]; l != "" {
			tags[i] = l
		} else {
			tags[i] = id
		}
	}
	facts := ""
	if e.EventTime != nil {
		facts = e.EventTime.In(a.Loc).Format(layout)
	}
	author := e.AuthorName
	if e.Chat != nil {
		author += " (message de " + e.Chat.Name + " à " + e.Chat.At.In(a.Loc).Format("15:04") + ")"
	}
	att, sum := "", ""
	if e.Attachment != nil {
		att = e.Attachment.Name + " (" + e.Attachment.Type + ", " + strconv.FormatInt(e.Attachment.Size, 10) + " octets)"
		sum = e.Attachment.SHA256
	}
	return []string{strconv.FormatInt(e.Seq, 10), cell(n.titles[e.Event]), e.CreatedAt.In(a.Loc).Format(layout), facts,
		cell(author), cell(e.AuthorLabel), kindNames[e.Kind], cell(strings.Join(tags, ", ")), cell(e.Text), e.Corrects,
		strings.Join(e.CorrectedBy, " "), e.Commune, e.Annotation, cell(att), sum, e.ID}
}

// cell keeps a spreadsheet from reading text as a formula (CSV
// injection): a cell starting with =, +, @, a tab, a carriage return, or a
// minus sign not followed by a space gets a leading apostrophe. Text
// starting "- " (a French list) is left alone.
func cell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '@', '\t', '\r':
		return "'" + s
	case '-':
		if len(s) > 1 && s[1] != ' ' {
			return "'" + s
		}
	}
	return s
}
