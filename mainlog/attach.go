package mainlog

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Attachment types, decided from the bytes (never from the client's
// Content-Type or the name alone): PDF, PNG, JPEG, plain text and CSV.
const (
	TypePDF  = "application/pdf"
	TypePNG  = "image/png"
	TypeJPEG = "image/jpeg"
	TypeText = "text/plain; charset=utf-8"
	TypeCSV  = "text/csv; charset=utf-8"
)

// checkFile sniffs and describes an attachment, or says why it is refused.
func checkFile(f *File) (Attachment, error) {
	ve := &ValidationError{}
	name := cleanFileName(f.Name)
	switch {
	case len(f.Data) > MaxAttachmentBytes:
		ve.TooLarge = true
		ve.add("file", "pièce jointe trop volumineuse : %s, au plus %d Mio", sizeText(int64(len(f.Data))), MaxAttachmentBytes>>20)
		return Attachment{}, ve
	case len(f.Data) == 0:
		ve.add("file", "pièce jointe vide")
		return Attachment{}, ve
	}
	typ := sniff(name, f.Data)
	if typ == "" {
		ve.add("file", "type de fichier refusé (%s) : seuls PDF, PNG, JPEG, texte et CSV sont acceptés", describe(f.Data))
		return Attachment{}, ve
	}
	name = withExtension(name, typ)
	sum := sha256.Sum256(f.Data)
	return Attachment{Name: name, Type: typ, Size: int64(len(f.Data)), SHA256: hex.EncodeToString(sum[:])}, nil
}

// sniff returns the attachment type of data, "" if it is not accepted.
// Text must be UTF-8 and is CSV when its name says so. Anything a browser
// could run or render as a page (HTML, SVG, scripts) is refused.
func sniff(name string, data []byte) string {
	switch t := http.DetectContentType(data); t {
	case TypePDF, TypePNG, TypeJPEG:
		return t
	case "text/plain; charset=utf-8":
		if !utf8.Valid(data) {
			return ""
		}
		if strings.EqualFold(path.Ext(name), ".csv") {
			return TypeCSV
		}
		return TypeText
	}
	return ""
}

// describe names what was sniffed, for the refusal message.
func describe(data []byte) string {
	t := http.DetectContentType(data)
	if i := strings.IndexByte(t, ';'); i > 0 {
		t = t[:i]
	}
	if t == "text/plain" {
		return "texte qui n'est pas en UTF-8"
	}
	return t
}

// cleanFileName keeps the base name, without path, control characters,
// line or paragraph separators, or bidirectional controls: an RLO (U+202E)
// before "fdp.exe" makes "rapport<RLO>fdp.exe" read as "rapportexe.pdf".
func cleanFileName(name string) string {
	name = strings.ReplaceAll(name, "\\", "/")
	name = path.Base(name)
	var b strings.Builder
	n := 0
	for _, r := range name {
		if unsafeNameRune(r) {
			continue
		}
		if n++; n > MaxAttachNameRunes {
			break
		}
		b.WriteRune(r)
	}
	out := strings.TrimSpace(b.String())
	if out == "" || out == "." || out == ".." || out == "/" {
		return "piece-jointe"
	}
	return out
}

// unsafeNameRune reports the runes a file name loses: C0 and C1 controls,
// line and paragraph separators, the bidirectional marks, embeddings,
// overrides and isolates, the double quote, and invalid UTF-8.
func unsafeNameRune(r rune) bool {
	switch {
	case unicode.IsControl(r), r == '"', r == utf8.RuneError,
		r == '\u2028', r == '\u2029', // line and paragraph separators
		r == '\u200e', r == '\u200f', r == '\u061c', // LRM, RLM, ALM
		r >= '\u202a' && r <= '\u202e', // LRE, RLE, PDF, LRO, RLO
		r >= '\u2066' && r <= '\u2069': // LRI, RLI, FSI, PDI
		return true
	}
	return false
}

// extensions are the endings a name may keep for each stored type, the
// first one added when it has none of them.
func extensions(typ string) []string {
	switch typ {
	case TypePDF:
		return []string{".pdf"}
	case TypePNG:
		return []string{".png"}
	case TypeJPEG:
		return []string{".jpg", ".jpeg"}
	case TypeCSV:
		return []string{".csv"}
	}
	return []string{".txt"}
}

// withExtension makes the name end as the sniffed type does. Once saved,
// a file is opened by its name, not by the type it was served with: so
// "rapport.pdf.exe" stored as a PDF becomes "rapport.pdf.exe.pdf", and a
// text "page.html" becomes "page.html.txt". The name the writer gave stays
// readable in front of the added ending, which tells what it really is;
// nothing is removed, so nothing is hidden. The name is shortened first
// if needed, to stay within MaxAttachNameRunes.
func withExtension(name, typ string) string {
	exts := extensions(typ)
	ext := strings.ToLower(path.Ext(name))
	for _, e := range exts {
		if ext == e {
			return name
		}
	}
	if r := []rune(name); len(r)+len(exts[0]) > MaxAttachNameRunes {
		name = strings.TrimSpace(string(r[:MaxAttachNameRunes-len(exts[0])]))
	}
	return name + exts[0]
}

// DownloadName is the name an attachment is served under: cleaned again,
// since entries written before the rules above keep the name they were
// stored with (the log is append-only).
func DownloadName(a Attachment) string {
	return withExtension(cleanFileName(a.Name), a.Type)
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<20:
		return strings.Replace(fmt.Sprintf("%.1f Mio", float64(n)/(1<<20)), ".", ",", 1)
	case n >= 1<<10:
		return fmt.Sprintf("%d Kio", n>>10)
	}
	return fmt.Sprintf("%d octets", n)
}
