package mainlog

import (
	"strings"
	"testing"
)

// TestAttachmentNames: the stored name loses bidirectional and control
// characters and ends as the sniffed type does.
func TestAttachmentNames(t *testing.T) {
	pdf := []byte("%PDF-1.4\nx\n")
	png := []byte("\x89PNG\r\n\x1a\n0000")
	text := []byte("commune;décès\n56178;3\n")
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"rapport\u202efdp.exe", pdf, "rapportfdp.exe.pdf"},
		{"rapport.pdf.exe", pdf, "rapport.pdf.exe.pdf"},
		{"a\u2066b\u2069c\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u2067\u2068.pdf", pdf, "abc.pdf"},
		{"bilan\x01\x1f\x7f\u0085\u009b\u2028\u2029.pdf", pdf, "bilan.pdf"},
		{"carte.PNG", png, "carte.PNG"},
		{"photo.jpg", png, "photo.jpg.png"},
		{"relevé.csv", text, "relevé.csv"},
		{"page.html", text, "page.html.txt"},
		{"notes", text, "notes.txt"},
		{`C:\Users\x\plan.pdf`, pdf, "plan.pdf"},
		{"\u202e", pdf, "piece-jointe.pdf"},
		{"..", pdf, "piece-jointe.pdf"},
		{strings.Repeat("é", 300) + ".exe", pdf, strings.Repeat("é", MaxAttachNameRunes-4) + ".pdf"},
	} {
		att, err := checkFile(&File{Name: c.name, Data: c.data})
		if err != nil {
			t.Fatalf("%q: %v", c.name, err)
		}
		if att.Name != c.want {
			t.Errorf("%q stored as %q, want %q", c.name, att.Name, c.want)
		}
		if got := DownloadName(att); got != att.Name {
			t.Errorf("%q: download name %q differs from the stored %q", c.name, got, att.Name)
		}
	}
	// An entry stored before these rules is served under the clean name.
	old := Attachment{Name: "rapport\u202efdp.exe", Type: TypePDF}
	if got := DownloadName(old); got != "rapportfdp.exe.pdf" {
		t.Fatalf("old name served as %q", got)
	}
}
