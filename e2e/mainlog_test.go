package e2e

import (
	"bytes"
	"context"
	"crisisroom/access"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"crisisroom/app"
	"crisisroom/mainlog"
)

// The main courante in the room page, in real Chromium.
const (
	logLiveJS = `document.getElementById('mlog-live').dataset.status === 'live'`
	// entryJS finds the list item of an entry by its text.
	entryJS = `((text) => [...document.querySelectorAll('#mlog-list li.mlog-entry')].find((li) => li.querySelector('.text').textContent === text))`
	xssText = `<img src=x onerror="window.__xss=1"><script>window.__xss=2</script> & "guillemets" ; point-virgule`
)

// openLog opens the main courante panel and waits for its live feed.
func openLog(p *page) {
	p.t.Helper()
	p.do("open the main courante", 5*time.Second, chromedp.Click(chromedp.CSS("#ctl-log")))
	p.waitFor("the main courante live", `!document.getElementById('panel-log').hidden && `+logLiveJS, 10*time.Second)
}

// writeEntry types an entry in the form, ticks tags and sends it.
func writeEntry(p *page, text string, tags ...string) {
	p.t.Helper()
	actions := []chromedp.Action[chromedp.Void]{chromedp.SetValue(chromedp.CSS("#mlog-text"), text)}
	for _, tag := range tags {
		actions = append(actions, chromedp.Click(chromedp.CSS(`#mlog-tags input[value="`+tag+`"]`)))
	}
	actions = append(actions, chromedp.Click(chromedp.CSS("#mlog-send")))
	p.do("write an entry", 5*time.Second, actions...)
	p.waitFor("the entry sent", `document.getElementById('mlog-text').value === '' && /n° \d+/.test(document.getElementById('mlog-msg').textContent)`, 5*time.Second)
}

// TestMainlogInBrowsers: two members of the room; an entry with tags
// written on one page appears live on the other; filters and search; the
// board's colour change appears live and in the log; a chat message is
// promoted to the log; a correction keeps both; bad input is refused with
// a clear message and the form keeps what was typed; markup stays text;
// the printable view shows every entry on numbered sheets.
func TestMainlogInBrowsers(t *testing.T) {
	began := time.Now()
	browser := newBrowser(t)
	srv := startServer(t, 6, 30*time.Second)
	dir := artifactsDir(t)
	hostURL, hostTok := srv.hostLink(t, "préfecture")
	host := openPage(t, browser, "host (COD)")
	member := openPage(t, browser, "participant (SDIS)")
	host.do("viewport", 5*time.Second, chromedp.EmulateViewport(1280, 860))
	member.do("viewport", 5*time.Second, chromedp.EmulateViewport(1100, 860))
	join(host, hostURL, "Claire Martin – COD")
	join(member, srv.link(t, "sdis"), "Capitaine Le Goff – SDIS 56")
	for _, p := range []*page{host, member} {
		p.waitFor("in the room", `!document.getElementById('view-room').hidden && document.getElementById('conn').dataset.status === 'open'`, 15*time.Second)
		openLog(p)
		if n := p.sockets.Load(); n != 1 {
			t.Errorf("%s opened %d WebSockets, want 1 (video and log on one)", p.name, n)
		}
	}
	if n := srv.app.Mainlog.Hub().Watchers(); n != 2 {
		t.Errorf("log watchers: %d, want 2", n)
	}

	// An entry with tags, written on one page, appears live on the other.
	sent := time.Now()
	writeEntry(member, "Ouverture du gymnase Jean-Moulin : 40 lits", "hebergement-urgence", "decision")
	seen := seenAt(t, host, "the entry on the host's page", entryJS+`('Ouverture du gymnase Jean-Moulin : 40 lits')?.querySelectorAll('.tag').length === 2`, 5*time.Second)
	t.Logf("entry → other page: %v", seen.Sub(sent).Round(time.Millisecond))
	tags := eval[[]string](host, `[...`+entryJS+`('Ouverture du gymnase Jean-Moulin : 40 lits').querySelectorAll('.tag')].map((s) => s.textContent)`)
	if strings.Join(tags, ",") != "décision,hébergement d'urgence" && strings.Join(tags, ",") != "hébergement d'urgence,décision" {
		t.Errorf("tags shown: %q", tags)
	}
	writeEntry(host, "Point presse à 17h en préfecture", "communication")
	writeEntry(member, xssText)
	member.waitFor("the three entries", `document.querySelectorAll('#mlog-list li.mlog-entry').length === 3`, 5*time.Second)
	host.waitFor("the markup entry, as text", entryJS+`(`+js(xssText)+`) !== undefined`, 5*time.Second)
	for _, p := range []*page{host, member} {
		if v := eval[bool](p, `window.__xss === undefined && document.querySelector('#mlog-list img, #mlog-list script') === null`); !v {
			t.Errorf("%s: markup in an entry was interpreted", p.name)
		}
	}

	checkFilters(t, host)
	checkBoard(t, host, member)
	checkChatToLog(t, host, member)
	checkLogCorrection(t, host, member)
	checkBadInput(t, member)
	screenshot(t, host, dir, "mainlog-desktop.png")

	// On a phone the panel takes the screen, nothing scrolls sideways.
	member.do("phone viewport", 5*time.Second, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch))
	member.waitFor("the panel laid out for the phone", `document.getElementById('panel-log').getBoundingClientRect().width >= 370 && document.documentElement.scrollWidth <= innerWidth`, 5*time.Second)
	if rows := eval[bool](member, `new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => {
		const c = [...document.querySelectorAll('.controls .ctl')].filter((b) => !b.hidden);
		r(c.every((b) => b.getBoundingClientRect().top === c[0].getBoundingClientRect().top));
	})))`); !rows {
		t.Errorf("the phone's controls wrap onto two rows")
	}
	screenshot(t, member, dir, "mainlog-phone.png")

	// The API agrees with the pages.
	var list []struct{ Seq int64 }
	logAPIGet(t, srv.http.URL+"/api/v1/events/main/log?limit=500", hostTok, &list)
	shown := eval[int](host, `document.querySelectorAll('#mlog-list li.mlog-entry').length`)
	if len(list) != shown {
		t.Errorf("the host's page shows %d entries, the API has %d", shown, len(list))
	}

	// Checked before the printable view's 75 entries, and again once the
	// two open pages have rendered them live (one render per burst).
	for _, p := range []*page{host, member} {
		p.checkClean()
	}
	checkPrintable(t, browser, srv, hostTok, dir, len(list))
	for _, p := range []*page{host, member} {
		p.checkClean()
	}
	t.Logf("total %v", time.Since(began).Round(time.Millisecond))
}

func checkFilters(t *testing.T, p *page) {
	t.Helper()
	count := `document.querySelectorAll('#mlog-list li.mlog-entry').length`
	p.do("filter by tag", 5*time.Second, chromedp.SetValue(chromedp.CSS("#mlog-f-tag"), "communication"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('mlog-f-tag').dispatchEvent(new Event('change', { bubbles: true }))`))
	p.waitFor("only the communication entry", count+` === 1 && `+entryJS+`('Point presse à 17h en préfecture') !== undefined`, 5*time.Second)
	p.do("clear the filters", 5*time.Second, chromedp.Click(chromedp.CSS(`#mlog-filters button[type="reset"]`)))
	p.waitFor("all entries again", count+` === 3`, 5*time.Second)
	p.do("search", 5*time.Second, chromedp.SendKeys(chromedp.CSS("#mlog-f-q"), "gymnase\r"))
	p.waitFor("only the gymnasium", count+` === 1 && `+entryJS+`('Ouverture du gymnase Jean-Moulin : 40 lits') !== undefined`, 5*time.Second)
	p.do("search by author", 5*time.Second, chromedp.Click(chromedp.CSS(`#mlog-filters button[type="reset"]`)),
		chromedp.SendKeys(chromedp.CSS("#mlog-f-author"), "Claire Martin – COD\r"))
	p.waitFor("only the host's entry", count+` === 1 && `+entryJS+`('Point presse à 17h en préfecture') !== undefined`, 5*time.Second)
	p.do("clear the filters", 5*time.Second, chromedp.Click(chromedp.CSS(`#mlog-filters button[type="reset"]`)))
	p.waitFor("all entries again", count+` === 3`, 5*time.Second)
}

// checkBoard: the host turns the board orange; the other page turns orange
// live, and both logs show the change.
func checkBoard(t *testing.T, host, member *page) {
	t.Helper()
	if eval[bool](member, `!document.getElementById('mlog-board-edit').hidden`) {
		t.Errorf("a participant may edit the board")
	}
	sent := time.Now()
	host.do("edit the board", 5*time.Second, chromedp.Click(chromedp.CSS("#mlog-board-edit")),
		chromedp.Click(chromedp.CSS(`#mlog-board-form input[value="orange"]`)),
		chromedp.SetValue(chromedp.CSS("#mlog-b-situation"), "Canicule : 38 °C attendus, 3 EHPAD sans climatisation"),
		chromedp.SetValue(chromedp.CSS("#mlog-b-next"), "18h00, audio"),
		chromedp.Click(chromedp.CSS(`#mlog-board-form button[type="submit"]`)))
	seen := seenAt(t, member, "the board orange on the other page", `document.getElementById('mlog-board').dataset.severity === 'orange' && document.querySelector('#mlog-board-fields dd[data-field="next_point"]')?.textContent === '18h00, audio'`, 5*time.Second)
	t.Logf("board colour → other page: %v", seen.Sub(sent).Round(time.Millisecond))
	for _, p := range []*page{host, member} {
		p.waitFor("the board change in the log", `[...document.querySelectorAll('#mlog-list li[data-kind="board"] .text')].some((e) => e.textContent.includes('gravité : orange') && e.textContent.includes('3 EHPAD'))`, 5*time.Second)
	}
	if c := eval[string](member, `getComputedStyle(document.getElementById('mlog-board')).borderTopColor`); c != "rgb(255, 140, 0)" {
		t.Errorf("the board's border is %s, want orange", c)
	}
}

// checkChatToLog: a chat message is promoted with one click and shows in
// both logs with its author.
func checkChatToLog(t *testing.T, host, member *page) {
	t.Helper()
	const msg = "Les pompiers demandent un second point d'eau à Lanester"
	member.do("open the chat and send", 5*time.Second, chromedp.Click(chromedp.CSS("#ctl-chat")),
		chromedp.SendKeys(chromedp.CSS("#chat-input"), msg), chromedp.Click(chromedp.CSS("#chat-send")))
	host.do("open the chat", 5*time.Second, chromedp.Click(chromedp.CSS("#ctl-chat")))
	host.waitFor("the chat message", `[...document.querySelectorAll('#chat-log .msg .text')].some((e) => e.textContent === `+js(msg)+`)`, 5*time.Second)
	host.do("promote it", 5*time.Second, chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll('#chat-log .msg')].find((li) => li.querySelector('.text').textContent === `+js(msg)+`).querySelector('.to-log').click()`))
	host.waitFor("promoted", `[...document.querySelectorAll('#chat-log .to-log')].some((b) => b.dataset.state === 'done')`, 5*time.Second)
	for _, p := range []*page{host, member} {
		p.do("back to the log", 5*time.Second, chromedp.Click(chromedp.CSS("#tab-log")))
		p.waitFor("the chat message in the log", entryJS+`(`+js(msg)+`)?.dataset.kind === 'chat' && `+entryJS+`(`+js(msg)+`).querySelector('.meta').textContent.includes('Capitaine Le Goff')`, 5*time.Second)
	}
}

// checkLogCorrection: the participant corrects their entry; both stay, linked.
func checkLogCorrection(t *testing.T, host, member *page) {
	t.Helper()
	const orig, fixed = "Ouverture du gymnase Jean-Moulin : 40 lits", "Ouverture du gymnase Jean-Moulin : 60 lits (correction)"
	member.do("correct", 5*time.Second, chromedp.Evaluate[chromedp.Void](entryJS+`(`+js(orig)+`).querySelector('.correct').click()`))
	member.waitFor("the correction form", `!document.getElementById('mlog-correcting').hidden && document.getElementById('mlog-text').value === `+js(orig), 5*time.Second)
	member.do("send the correction", 5*time.Second, chromedp.SetValue(chromedp.CSS("#mlog-text"), fixed), chromedp.Click(chromedp.CSS("#mlog-send")))
	for _, p := range []*page{host, member} {
		p.waitFor("both entries, linked", `!!`+entryJS+`(`+js(fixed)+`)?.querySelector('.corrects') && !!`+entryJS+`(`+js(orig)+`)?.querySelector('.corrected-by')`, 5*time.Second)
	}
}

// checkBadInput: refusals say why and keep what was typed.
func checkBadInput(t *testing.T, p *page) {
	t.Helper()
	before := eval[int](p, `document.querySelectorAll('#mlog-list li.mlog-entry').length`)
	// 1 MB of text (past the field's own limit, as a paste through a script would be).
	p.do("a 1 MB entry", 10*time.Second, chromedp.Evaluate[chromedp.Void](`document.getElementById('mlog-text').value = 'é'.repeat(1000000)`),
		chromedp.Click(chromedp.CSS("#mlog-send")))
	p.waitFor("a clear refusal", `document.getElementById('mlog-msg').textContent.includes('10000 caractères') && document.getElementById('mlog-text').value.length === 1000000`, 10*time.Second)

	// An attachment too large: refused before sending, text kept.
	tmp := t.TempDir()
	big := filepath.Join(tmp, "plan.pdf")
	if err := os.WriteFile(big, append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("0"), 6<<20)...), 0o600); err != nil {
		t.Fatal(err)
	}
	p.do("a 6 MiB attachment", 10*time.Second, chromedp.SetValue(chromedp.CSS("#mlog-text"), "Plan d'évacuation"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('.mlog-more').open = true`),
		chromedp.SetUploadFiles(chromedp.CSS("#mlog-file"), []string{big}), chromedp.Click(chromedp.CSS("#mlog-send")))
	p.waitFor("refused: too large", `document.getElementById('mlog-msg').textContent.includes('5 Mio') && document.getElementById('mlog-text').value === "Plan d'évacuation"`, 5*time.Second)

	// A forbidden type (HTML named .txt): the server refuses it by its content.
	html := filepath.Join(tmp, "note.txt")
	if err := os.WriteFile(html, []byte("<!doctype html><html><script>alert(1)</script></html>"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.do("an HTML attachment", 10*time.Second, chromedp.SetUploadFiles(chromedp.CSS("#mlog-file"), []string{html}), chromedp.Click(chromedp.CSS("#mlog-send")))
	p.waitFor("refused: type", `document.getElementById('mlog-msg').textContent.includes('type de fichier refusé') && document.getElementById('mlog-text').value === "Plan d'évacuation"`, 5*time.Second)

	// A good one goes through and can be downloaded by the other members.
	csv := filepath.Join(tmp, "relevé.csv")
	if err := os.WriteFile(csv, []byte("commune;lits\nLorient;40\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.do("a CSV attachment", 10*time.Second, chromedp.SetUploadFiles(chromedp.CSS("#mlog-file"), []string{csv}), chromedp.Click(chromedp.CSS("#mlog-send")))
	p.waitFor("sent with its attachment", entryJS+`("Plan d'évacuation")?.querySelector('.attachment')?.textContent.includes('relevé.csv')`, 5*time.Second)
	if after := eval[int](p, `document.querySelectorAll('#mlog-list li.mlog-entry').length`); after != before+1 {
		t.Errorf("after the refusals: %d entries, want %d (only the valid one added)", after, before+1)
	}
}

// checkPrintable: the printable view shows every entry, oldest first, on
// numbered sheets, and prints to a PDF.
func checkPrintable(t *testing.T, browser context.Context, srv *testServer, token, dir string, want int) {
	t.Helper()
	// Enough entries for several sheets of 40.
	actor := mainlog.Actor{ID: "e2e", Label: "e2e", P: access.LinkPrincipal("e2e", "e2e", app.MainRoom, access.Participant, "", false)}
	for i := 0; i < 75; i++ {
		if _, _, err := srv.app.Mainlog.Write(context.Background(), actor, app.MainRoom, mainlog.EntryInput{Text: fmt.Sprintf("Relevé horaire n° %d", i+1), Author: "Veille"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	want += 75
	sheets := (want + 39) / 40
	pr := openPage(t, browser, "printable view")
	pr.do("open the printable view", 10*time.Second, chromedp.Navigate(srv.cfg.PublicURL+"/log/main#t="+token))
	pr.waitFor("loaded", `document.body.dataset.state === 'ready'`, 10*time.Second)
	if h := eval[string](pr, `location.hash`); h != "" {
		t.Errorf("the token stays in the address bar: %q", h)
	}
	got := eval[struct {
		Entries, Rows int
		First         string
		XSS           bool
	}](pr, `({ Entries: +document.body.dataset.entries, Rows: document.querySelectorAll('.sheet tbody tr').length,
		First: document.querySelector('.sheet tbody tr td').textContent, XSS: window.__xss !== undefined || !!document.querySelector('.sheet td img, .sheet td script') })`)
	if got.Entries != want || got.Rows != want || got.First != "1" || got.XSS {
		t.Errorf("printable view: %+v, want %d entries from n° 1, no markup", got, want)
	}
	if n := eval[int](pr, `+document.body.dataset.sheets`); n != sheets {
		t.Errorf("%d sheets, want %d", n, sheets)
	}
	pr.do("next sheet", 5*time.Second, chromedp.Click(chromedp.CSS("#next")))
	pr.waitFor("sheet 2 shown alone", `document.body.dataset.current === '2' && [...document.querySelectorAll('.sheet')].filter((s) => getComputedStyle(s).display !== 'none').length === 1 && document.querySelector('.sheet.current tbody tr td').textContent === '41'`, 5*time.Second)
	pdf, err := chromedp.Run(pr.ctx, chromedp.PrintToPDF())
	if err != nil || !bytes.HasPrefix(pdf, []byte("%PDF")) {
		t.Fatalf("print to PDF: %v", err)
	}
	if pages := bytes.Count(pdf, []byte("/Type /Page\n")) + bytes.Count(pdf, []byte("/Type /Page\r")) + bytes.Count(pdf, []byte("/Type /Page ")) + bytes.Count(pdf, []byte("/Type /Page/")) + bytes.Count(pdf, []byte("/Type /Page>")); pages < sheets {
		t.Errorf("the PDF has %d pages, want at least one per sheet (%d)", pages, sheets)
	} else {
		t.Logf("printable view: %d entries on %d sheets, PDF of %d pages (%d bytes)", want, sheets, pages, len(pdf))
	}
	if err := os.WriteFile(filepath.Join(dir, "mainlog-print.pdf"), pdf, 0o644); err != nil {
		t.Fatal(err)
	}
	screenshot(t, pr, dir, "mainlog-print.png")
	pr.checkClean()
}

// seenAt polls a predicate every 10 ms in the page and returns when the
// page saw it true (the page's clock, same machine).
func seenAt(t *testing.T, p *page, what, pred string, timeout time.Duration) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, timeout+5*time.Second)
	defer cancel()
	ms, err := chromedp.Run(ctx, chromedp.Poll[float64](`(`+pred+`) ? Date.now() : 0`,
		chromedp.WithPollingInterval(10*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		t.Fatalf("%s: waiting for %s: %v", p.name, what, err)
	}
	return time.UnixMilli(int64(ms))
}

func logAPIGet(t *testing.T, url, token string, v any) {
	t.Helper()
	res := bearerDo(t, http.MethodGet, url, token, nil)
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d", url, res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
