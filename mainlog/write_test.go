package mainlog_test

import (
	"bytes"
	"encoding/json"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"testing"

	"crisisroom/mainlog"
)

// part is one part of a hand-made multipart form.
type part struct {
	field, file string // file "" for a plain field
	data        []byte
}

func formBody(t *testing.T, parts ...part) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		cd := `form-data; name="` + p.field + `"`
		if p.file != "" {
			cd += `; filename="` + p.file + `"`
		}
		h.Set("Content-Disposition", cd)
		pw, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = pw.Write(p.data)
	}
	_ = w.Close()
	return w.FormDataContentType(), buf.Bytes()
}

func entryPart(t *testing.T, v map[string]any) part {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return part{field: "entry", data: b}
}

// TestLogMultipartParts: a form is one entry and at most one file; any
// other shape is refused with a clear error and nothing is stored.
func TestLogMultipartParts(t *testing.T) {
	e := start(t)
	pdf := []byte("%PDF-1.4\nun\n")
	png := []byte("\x89PNG\r\n\x1a\n0000")
	for _, c := range []struct {
		name  string
		parts []part
		code  string
	}{
		{"two files", []part{entryPart(t, map[string]any{"text": "deux fichiers"}), {"file", "a.pdf", pdf}, {"file", "b.png", png}}, "too_many_files"},
		{"two entries", []part{entryPart(t, map[string]any{"text": "un"}), entryPart(t, map[string]any{"text": "deux"})}, "duplicate_part"},
		{"two entries around a file", []part{entryPart(t, map[string]any{"text": "un"}), {"file", "a.pdf", pdf}, entryPart(t, map[string]any{"text": "deux"})}, "duplicate_part"},
		{"unknown part", []part{entryPart(t, map[string]any{"text": "x"}), {"file", "a.pdf", pdf}, {"file2", "b.pdf", pdf}}, "unknown_part"},
	} {
		ct, b := formBody(t, c.parts...)
		a := e.do(http.MethodPost, "/api/v1/events/main/log", e.member, ct, b)
		code, msg := a.apiErr(t)
		if a.status != http.StatusBadRequest || code != c.code || !strings.Contains(msg, "Rien n'a été enregistré") {
			t.Errorf("%s: HTTP %d %s %q, want 400 %s saying nothing was saved", c.name, a.status, code, msg, c.code)
		}
	}
	if list := e.list(e.member, ""); len(list) != 0 {
		t.Fatalf("refused forms stored entries: %+v", list)
	}
	// One entry and one file is still fine.
	ct, b := formBody(t, entryPart(t, map[string]any{"text": "un fichier"}), part{"file", "a.pdf", pdf})
	if a := e.do(http.MethodPost, "/api/v1/events/main/log", e.member, ct, b); a.status != http.StatusCreated {
		t.Fatalf("one file: HTTP %d %s", a.status, a.body)
	}
}

// TestLogKeyReuse: a retry with the same key and the same content answers
// the original (200); the same key with other content is refused (422)
// and the original stays alone.
func TestLogKeyReuse(t *testing.T) {
	e := start(t)
	const path = "/api/v1/events/main/log"
	orig := map[string]any{"text": "Ouverture du gymnase", "key": "k-reuse", "tags": []string{"decision", "transport"}}
	first := e.write(e.member, orig)
	// The same entry, its tags by label and in another order: the same
	// once normalised.
	same := map[string]any{"text": "Ouverture du gymnase", "key": "k-reuse", "tags": []string{"Transport", "décision"}}
	a := e.post(path, e.member, same)
	var got mainlog.Entry
	a.json(t, &got)
	if a.status != http.StatusOK || got.ID != first.ID {
		t.Fatalf("same content again: HTTP %d %s, want 200 with %s", a.status, a.body, first.ID)
	}
	for name, body := range map[string]map[string]any{
		"other text": {"text": "Fermeture du gymnase", "key": "k-reuse", "tags": []string{"decision", "transport"}},
		"other tags": {"text": "Ouverture du gymnase", "key": "k-reuse", "tags": []string{"decision"}},
		"a commune":  {"text": "Ouverture du gymnase", "key": "k-reuse", "tags": []string{"decision", "transport"}, "commune": "56178"},
	} {
		a := e.post(path, e.member, body)
		if code, msg := a.apiErr(t); a.status != http.StatusUnprocessableEntity || code != "idempotency_key_reused" || !strings.Contains(msg, "rien n'a été enregistré") {
			t.Errorf("%s with the same key: HTTP %d %s %q, want 422 idempotency_key_reused", name, a.status, code, msg)
		}
	}
	// With an attachment: the same bytes are a retry, other bytes are not.
	ct, b := multipartBody(t, map[string]any{"text": "plan", "key": "k-file"}, "plan.pdf", []byte("%PDF-1.4\nv1\n"))
	if a := e.do(http.MethodPost, path, e.member, ct, b); a.status != http.StatusCreated {
		t.Fatalf("entry with a file: HTTP %d %s", a.status, a.body)
	}
	if a := e.do(http.MethodPost, path, e.member, ct, b); a.status != http.StatusOK {
		t.Fatalf("the same entry with the same file again: HTTP %d %s", a.status, a.body)
	}
	ct, b = multipartBody(t, map[string]any{"text": "plan", "key": "k-file"}, "plan.pdf", []byte("%PDF-1.4\nv2\n"))
	if a := e.do(http.MethodPost, path, e.member, ct, b); a.status != http.StatusUnprocessableEntity {
		t.Fatalf("the same key with another file: HTTP %d %s, want 422", a.status, a.body)
	}
	var texts []string
	for _, x := range e.list(e.member, "") {
		texts = append(texts, x.Text)
	}
	if strings.Join(texts, "|") != "Ouverture du gymnase|plan" {
		t.Fatalf("entries after the retries: %q, want each once", texts)
	}
}

// TestLogAttachmentName: an attachment named to mislead (an RLO turning
// "fdp.exe" into "exe.pdf" on screen, control characters) is stored and
// served under a clean name ending as its sniffed type.
func TestLogAttachmentName(t *testing.T) {
	e := start(t)
	// Control characters cannot be in a header as such, but the encoded
	// form of RFC 2231 (filename*) carries them.
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	entry, _ := w.CreateFormField("entry")
	_, _ = entry.Write([]byte(`{"text":"rapport"}`))
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename*=UTF-8''rap%01port%E2%80%AEfdp.exe%E2%81%A6%0D`)
	f, _ := w.CreatePart(h)
	_, _ = f.Write([]byte("%PDF-1.4\nx\n"))
	_ = w.Close()
	ct, b := w.FormDataContentType(), buf.Bytes()
	a := e.do(http.MethodPost, "/api/v1/events/main/log", e.member, ct, b)
	var got mainlog.Entry
	a.json(t, &got)
	if a.status != http.StatusCreated || got.Attachment == nil || got.Attachment.Name != "rapportfdp.exe.pdf" {
		t.Fatalf("HTTP %d %s, want the name rapportfdp.exe.pdf", a.status, a.body)
	}
	d := e.do(http.MethodGet, "/api/v1/events/main/log/"+got.ID+"/attachment", e.member, "", nil)
	cd := d.header.Get("Content-Disposition")
	typ, params, err := mime.ParseMediaType(cd)
	if d.status != http.StatusOK || err != nil || typ != "attachment" || params["filename"] != "rapportfdp.exe.pdf" {
		t.Fatalf("download: HTTP %d Content-Disposition %q (%v)", d.status, cd, err)
	}
}
