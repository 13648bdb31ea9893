package mainlog

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"path"
	"strings"
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

// cleanFileName keeps the base name, without path or control characters.
func cleanFileName(name string) string {
	name = strings.ReplaceAll(name, "\\", "/")
	name = path.Base(name)
	var b strings.Builder
	n := 0
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '"' || r == utf8.RuneError {
			continue
		}
		if n++; n > MaxAttachNameRunes {
			break
		}
		b.WriteRune(r)
	}
	out := strings.TrimSpace(b.String())
	if out == "" || out == "." || out == "/" {
		return "piece-jointe"
	}
	return out
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
