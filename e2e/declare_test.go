package e2e

import (
	"context"
	"crisisroom/internal/testgeo"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"crisisroom/app"
	"crisisroom/declarations"
	"crisisroom/rooms"
)

// declGeoDir is the reference territory in testdata/geo (internal/testgeo).
func declGeoDir(t *testing.T) string { return testgeo.Dir(t) }

// startDeclServer is startServer with the Morbihan territory loaded, so
// that the declaration API is on. Browsers go through the cut proxy.
func startDeclServer(t *testing.T) *testServer {
	t.Helper()
	geo := declGeoDir(t)
	ctx := context.Background()
	proxy := newCutProxy(t)
	cfg := app.DefaultConfig()
	cfg.SFUUDP, cfg.SFUTCP = "127.0.0.1:0", "" // no fixed port: test processes run side by side
	cfg.DataDir = t.TempDir()
	cfg.PublicURL = "http://" + proxy.addr()
	cfg.Addr = "127.0.0.1:0"
	cfg.Territory = filepath.Join(geo, "communes-56-morbihan.geojson")
	cfg.CommunesCSV = filepath.Join(geo, "communes-56-morbihan-cog2021.csv")
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", tail(logs.String(), 6000))
		}
	})
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	be, err := app.OpenBackends(ctx, cfg)
	if err != nil {
		t.Fatalf("open backends: %v", err)
	}
	a, err := app.New(ctx, cfg, be, log)
	if err != nil {
		t.Fatalf("new app: %v", err)
	}
	if _, _, err := a.Bootstrap(ctx); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := httptest.NewUnstartedServer(a.Handler())
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	proxy.start(l.Addr().String())
	t.Cleanup(func() {
		proxy.close()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.Shutdown(sctx)
		srv.Close()
		_ = be.Close()
	})
	return &testServer{app: a, http: srv, proxy: proxy}
}

// apiGet reads the API straight from the server (not through the proxy,
// which the test cuts).
func apiGet[T any](t *testing.T, srv *testServer, token, path string) T {
	t.Helper()
	res := bearerDo(t, http.MethodGet, srv.http.URL+"/api/v1"+path, token, nil)
	defer res.Body.Close()
	var v T
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
		t.Fatalf("GET %s: decode: %v", path, err)
	}
	return v
}

// apiRaw reads a non-JSON answer of the API straight from the server.
func apiRaw(t *testing.T, srv *testServer, token, path string) string {
	t.Helper()
	res := bearerDo(t, http.MethodGet, srv.http.URL+"/api/v1"+path, token, nil)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", path, res.Status, err)
	}
	return string(b)
}

type declList struct {
	Declarations []declarations.Declaration `json:"declarations"`
}

// setOffline cuts the phone off: the proxy refuses and drops every
// connection (the page, its service worker, everything), and the page's
// network is emulated offline so that navigator.onLine and the
// online/offline events behave as on a phone losing its signal.
func setOffline(p *page, srv *testServer, offline bool) {
	p.t.Helper()
	srv.proxy.setDown(offline)
	if offline {
		srv.proxy.cut()
	}
	conds := []*network.Conditions{}
	if offline {
		conds = append(conds, &network.Conditions{Offline: true, Latency: 0, DownloadThroughput: -1, UploadThroughput: -1})
	}
	p.do("network emulation", 5*time.Second, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		if _, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
			EmulateOfflineServiceWorker: &offline, MatchedNetworkConditions: conds,
		}); err != nil {
			return err
		}
		_, err := chromedp.Call(ctx, network.OverrideNetworkState, network.OverrideNetworkStateParams{
			Offline: offline, DownloadThroughput: -1, UploadThroughput: -1,
		})
		return err
	}))
}

type declLayout struct {
	VW, ScrollW float64
	Small       []string // targets under 44 px
	Outside     []string // elements past the right edge
	Targets     int
}

const measureDeclare = `(() => {
	const small = [], outside = [];
	let n = 0;
	for (const e of document.querySelectorAll('button, input, textarea, a[href]')) {
		const r = e.getBoundingClientRect();
		if (r.width === 0 && r.height === 0) continue; // hidden
		n++;
		const name = e.tagName + (e.className ? '.' + e.className : '') + (e.dataset.place ? '[' + e.dataset.place + ']' : '') + ' ' + Math.round(r.width) + 'x' + Math.round(r.height);
		if (r.height < 44 || r.width < 44) small.push(name);
		if (r.right > innerWidth + 0.5 || r.left < -0.5) outside.push(name);
	}
	return { VW: innerWidth, ScrollW: document.documentElement.scrollWidth, Small: small, Outside: outside, Targets: n };
})()`

func checkDeclareLayout(t *testing.T, p *page) {
	t.Helper()
	l := eval[declLayout](p, measureDeclare)
	t.Logf("phone layout: viewport %.0f px, page %.0f px wide, %d targets", l.VW, l.ScrollW, l.Targets)
	if l.VW != 360 {
		t.Errorf("viewport %.0f px wide, want 360", l.VW)
	}
	if l.ScrollW > l.VW {
		t.Errorf("horizontal scroll: page %.0f px wide in a %.0f px viewport", l.ScrollW, l.VW)
	}
	if len(l.Small) > 0 {
		t.Errorf("touch targets under 44 px: %v", l.Small)
	}
	if len(l.Outside) > 0 {
		t.Errorf("elements past the screen edge: %v", l.Outside)
	}
	if l.Targets < 10 {
		t.Errorf("only %d targets measured: is the form showing?", l.Targets)
	}
}

// rowStatus is the status of the history row of an idempotency key.
func rowStatus(key string) string {
	return `(() => { const li = document.querySelector('#history li[data-key=' + CSS.escape(` + js(key) + `) + ']');
		return li ? li.dataset.status + '|' + li.querySelector('.badge').textContent : ''; })()`
}

// TestDeclareOnPhoneOfflineAndReport: a mayor opens the commune link on a
// 360 px phone, declares once online ("reçu", and the API has it), loses
// the network, declares again ("en attente d'envoi"), reloads the page
// while offline (the page comes from the service worker, the declaration
// from IndexedDB, still pending), gets the network back: the declaration
// arrives once ("reçu"), and a replay of its key is not counted again.
// Then a correction with a reason, and the prefecture's morning report
// with the CSV export and the print layout.
func TestDeclareOnPhoneOfflineAndReport(t *testing.T) {
	began := time.Now()
	ctx := context.Background()
	browserCtx := newBrowser(t)
	srv := startDeclServer(t)
	dir := artifactsDir(t)
	const vannes = "56260"
	links, err := srv.app.NewCommuneLinks(ctx, []string{vannes}, time.Hour)
	if err != nil {
		t.Fatalf("commune link: %v", err)
	}
	token := links[0].Token
	if !strings.HasSuffix(links[0].URL, "/d#t="+token) {
		t.Fatalf("commune link %q", links[0].URL)
	}
	me := apiGet[struct {
		Today string `json:"today"`
	}](t, srv, token, "/me")
	today := me.Today
	yesterday := declDay(t, today, -1)

	mayor := openPage(t, browserCtx, "mairie (phone 360)")
	mayor.do("phone viewport", 5*time.Second, chromedp.EmulateViewport(360, 740,
		chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait))
	mayor.do("open the commune link", 15*time.Second, chromedp.Navigate(links[0].URL))
	mayor.waitFor("the form", `document.body.dataset.state === 'ready'`, 10*time.Second)
	if h := eval[string](mayor, `location.hash`); h != "" {
		t.Errorf("the token stays in the address bar (%q)", h)
	}
	if got := eval[string](mayor, `JSON.parse(localStorage.getItem('crisisroom.declare.tokens') || '{}')[`+js(vannes)+`] || ''`); got != token {
		t.Errorf("token not kept in localStorage for %s", vannes)
	}
	if got := eval[string](mayor, `document.getElementById('commune-name').textContent + ' ' + document.getElementById('date').value`); got != "Vannes "+today {
		t.Errorf("header and default date: %q, want %q", got, "Vannes "+today)
	}
	checkDeclareLayout(t, mayor)
	mayor.waitFor("the service worker", `document.body.dataset.sw === 'ready'`, 10*time.Second)
	screenshot(t, mayor, dir, "declare-phone.png")
	t.Logf("form ready after %v", time.Since(began).Round(time.Millisecond))

	id1 := declareOnline(t, mayor, srv, token, today)

	checkRetryAfter(t, mayor, srv, token)

	checkOfflineRoundTrip(t, mayor, srv, token, yesterday, dir)
	checkCorrection(t, mayor, srv, token, id1)
	checkRefusedItem(t, mayor, srv, token, today)
	checkDeclareLayout(t, mayor)
	screenshot(t, mayor, dir, "declare-phone-received.png")
	mayor.checkClean()
	t.Logf("phone story done after %v", time.Since(began).Round(time.Millisecond))

	checkReport(t, browserCtx, srv, dir, yesterday)
	t.Logf("total %v", time.Since(began).Round(time.Millisecond))
}

// declareOnline: a count the form refuses shows its French message next
// to the field; then 3 deaths at the EHPAD, confirmed, are "reçu" and in
// the API. It returns the declaration's id.
func declareOnline(t *testing.T, p *page, srv *testServer, token, today string) string {
	t.Helper()
	p.do("an empty count", 5*time.Second,
		chromedp.Click(chromedp.CSS(`#decl-form .places button[data-place="ehpad"]`)),
		chromedp.SetValue(chromedp.CSS("#count"), ""),
		chromedp.Click(chromedp.CSS(`#decl-form button[type=submit]`)))
	if got := eval[string](p, `document.getElementById('err-count').textContent`); got != "Le nombre doit être compris entre 1 et 200." {
		t.Errorf("count error next to the field: %q", got)
	}

	// Online: EHPAD, 3 deaths, confirm → reçu.
	p.do("declare 3 at the EHPAD", 5*time.Second,
		chromedp.SetValue(chromedp.CSS("#count"), "1"),
		chromedp.Click(chromedp.CSS(`#decl-form .stepper .plus`)),
		chromedp.Click(chromedp.CSS(`#decl-form .stepper .plus`)),
		chromedp.Click(chromedp.CSS(`#decl-form button[type=submit]`)))
	if got := eval[string](p, `document.querySelector('#decl-form .confirm-text').textContent`); !strings.HasPrefix(got, "3 décès · EHPAD · ") {
		t.Errorf("confirmation text: %q", got)
	}
	p.do("confirm", 5*time.Second, chromedp.Click(chromedp.CSS(`#decl-form .confirm-yes`)))
	p.waitFor("the first declaration received", `!!document.querySelector('#history li[data-status="sent"]') && document.getElementById('flash').dataset.kind === 'ok'`, 10*time.Second)
	key1 := eval[string](p, `document.querySelector('#history li[data-status="sent"]').dataset.key`)
	if got := eval[string](p, rowStatus(key1)); got != "sent|reçu" {
		t.Errorf("first declaration row: %q", got)
	}
	list := apiGet[declList](t, srv, token, "/declarations").Declarations
	if len(list) != 1 || list[0].IdempotencyKey != key1 || list[0].Count != 3 || list[0].Place != "ehpad" || list[0].Date != today {
		t.Fatalf("API after the online declaration: %+v", list)
	}
	return list[0].ID
}

// checkOfflineRoundTrip: declared with no network at all, the declaration
// waits in IndexedDB ("en attente d'envoi"), survives a reload served by
// the service worker, and arrives once when the network is back; a replay
// of its key is not counted again.
func checkOfflineRoundTrip(t *testing.T, p *page, srv *testServer, token, yesterday, dir string) {
	t.Helper()
	// Offline: Domicile, 2 deaths, yesterday → en attente d'envoi.
	setOffline(p, srv, true)
	p.waitFor("the page to know it is offline", `navigator.onLine === false`, 5*time.Second)
	p.do("declare 2 at home, yesterday, offline", 5*time.Second,
		chromedp.Click(chromedp.CSS(`#decl-form button[data-day="-1"]`)),
		chromedp.Click(chromedp.CSS(`#decl-form .places button[data-place="domicile"]`)),
		chromedp.Click(chromedp.CSS(`#decl-form .stepper .plus`)),
		chromedp.SendKeys(chromedp.CSS("#note"), "Déclaré sans réseau"),
		chromedp.Click(chromedp.CSS(`#decl-form button[type=submit]`)),
		chromedp.Click(chromedp.CSS(`#decl-form .confirm-yes`)))
	p.waitFor("the offline declaration pending", `!!document.querySelector('#history li[data-status="pending"]') && document.getElementById('flash').dataset.kind === 'wait'`, 10*time.Second)
	key2 := eval[string](p, `document.querySelector('#history li[data-status="pending"]').dataset.key`)
	if got := eval[string](p, rowStatus(key2)); got != "pending|en attente d’envoi" {
		t.Errorf("offline row: %q", got)
	}
	screenshot(t, p, dir, "declare-phone-pending.png")

	// Reload with no network at all: the service worker serves the page,
	// IndexedDB still holds the declaration.
	p.do("reload offline", 15*time.Second, chromedp.Reload())
	p.waitFor("the page reopened offline", `document.body.dataset.state === 'ready'`, 10*time.Second)
	p.waitFor("the declaration still pending after the reload", rowStatus(key2)+` === 'pending|en attente d’envoi'`, 5*time.Second)
	if !eval[bool](p, `navigator.serviceWorker.controller !== null && document.getElementById('net').textContent === 'Hors ligne'`) {
		t.Errorf("after the offline reload: not served by the service worker, or not shown offline")
	}
	if n := len(apiGet[declList](t, srv, token, "/declarations").Declarations); n != 2 {
		t.Fatalf("the server has %d declarations while the phone is offline, want 2", n)
	}

	// Network back: the online event sends it, once.
	back := time.Now()
	setOffline(p, srv, false)
	p.waitFor("the offline declaration received", rowStatus(key2)+` === 'sent|reçu'`, 15*time.Second)
	t.Logf("offline declaration received %v after the network came back", time.Since(back).Round(time.Millisecond))
	list := apiGet[declList](t, srv, token, "/declarations").Declarations
	total, withKey2, ids := 0, 0, map[string]bool{}
	for _, d := range list {
		total += d.Count
		ids[d.ID] = true
		if d.IdempotencyKey == key2 {
			withKey2++
			if d.Count != 2 || d.Place != "domicile" || d.Date != yesterday || d.Note != "Déclaré sans réseau" {
				t.Errorf("offline declaration stored as %+v", d)
			}
		}
	}
	if len(list) != 3 || len(ids) != 3 || withKey2 != 1 || total != 6 {
		t.Fatalf("after reconnection: %d declarations, %d ids, %d with the offline key, total %d; want 3, 3, 1, 6", len(list), len(ids), withKey2, total)
	}
	// A retried send (say the answer was lost): same key, same declaration,
	// counted once.
	replay := eval[struct {
		Status int
		ID     string
	}](p, `(async () => {
		const token = JSON.parse(localStorage.getItem('crisisroom.declare.tokens'))[`+js("56260")+`];
		const body = { commune: `+js("56260")+`, date: `+js(yesterday)+`, place: 'domicile', count: 2, note: 'Déclaré sans réseau', idempotency_key: `+js(key2)+` };
		const r = await fetch('/api/v1/declarations', { method: 'POST', headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
		return { Status: r.status, ID: (await r.json()).id };
	})()`)
	if replay.Status != http.StatusOK || !ids[replay.ID] {
		t.Errorf("replay of the offline key: status %d id %q, want 200 and an existing id", replay.Status, replay.ID)
	}
	if n := len(apiGet[declList](t, srv, token, "/declarations").Declarations); n != 3 {
		t.Errorf("after the replay: %d declarations, want 3", n)
	}
}

// checkCorrection corrects a received declaration: without a reason the
// server's French message shows next to the field; with one, it is stored
// with its audit trail.
func checkCorrection(t *testing.T, p *page, srv *testServer, token, id string) {
	t.Helper()
	row1 := `#history li[data-id="` + id + `"]`
	p.do("open the correction", 5*time.Second, chromedp.Click(chromedp.CSS(row1+` .act-fix`)))
	p.do("correct to 4 without a reason", 5*time.Second,
		chromedp.Click(chromedp.CSS(row1+` .amend .stepper .plus`)),
		chromedp.Click(chromedp.CSS(row1+` .amend button[type=submit]`)))
	p.waitFor("the missing reason", `document.querySelector('`+row1+` .amend [data-err="reason"]').textContent === 'Indiquez le motif de la correction.'`, 5*time.Second)
	p.do("give the reason", 5*time.Second,
		chromedp.SendKeys(chromedp.CSS(row1+` .amend textarea[name=reason]`), "Un décès de plus signalé par l’EHPAD"),
		chromedp.Click(chromedp.CSS(row1+` .amend button[type=submit]`)))
	p.waitFor("the correction shown", `(document.querySelector('`+row1+` .row-count') || {}).textContent === '4' && !!document.querySelector('`+row1+` .row-tag')`, 10*time.Second)
	got := apiGet[struct {
		Declaration declarations.Declaration `json:"declaration"`
		Revisions   []declarations.Revision  `json:"revisions"`
	}](t, srv, token, "/declarations/"+id)
	if got.Declaration.Count != 4 || got.Declaration.Revision != 2 || len(got.Revisions) != 2 || got.Revisions[1].Reason != "Un décès de plus signalé par l’EHPAD" {
		t.Errorf("after the correction: %+v, revisions %+v", got.Declaration, got.Revisions)
	}
}

// checkRefusedItem: an outbox item the server refuses (422) shows the
// error, stays across a reload, and is fixed from the form, keeping its
// key. Such an item comes from a page whose rules were older than the
// server's (here, a count above --max-count): it is put straight into
// IndexedDB, since the current page would not let it through.
func checkRefusedItem(t *testing.T, p *page, srv *testServer, token, today string) {
	t.Helper()
	const key = "stale-client-item-0001"
	eval[bool](p, `new Promise((resolve, reject) => {
		const req = indexedDB.open('crisisroom-declare', 1);
		req.onerror = () => reject(req.error);
		req.onsuccess = () => {
			const tx = req.result.transaction('outbox', 'readwrite');
			tx.objectStore('outbox').put({ key: `+js(key)+`, commune: '56260', status: 'pending', attempts: 0, createdAt: Date.now(),
				input: { commune: '56260', date: `+js(today)+`, place: 'hopital', count: 250, note: '', idempotency_key: `+js(key)+` } });
			tx.oncomplete = () => resolve(true);
			tx.onerror = () => reject(tx.error);
		};
	})`)
	p.do("reload with the stale item", 15*time.Second, chromedp.Reload())
	const refused = `(() => { const li = document.querySelector('#history li[data-key="` + key + `"]');
		const text = (sel) => (li.querySelector(sel) || { textContent: '' }).textContent; // a pending row has no error line yet
		return li ? li.dataset.status + '|' + text('.badge') + '|' + text('.row-err') : ''; })()`
	p.waitFor("the refused item", refused+` === 'error|refusé|Déclaration invalide. Le nombre doit être compris entre 1 et 200.'`, 10*time.Second)
	p.do("reload again", 15*time.Second, chromedp.Reload())
	p.waitFor("the refused item still there", refused+`.startsWith('error|refusé|')`, 10*time.Second)
	p.do("fix it from the form", 10*time.Second, chromedp.Click(chromedp.CSS(`#history li[data-key="`+key+`"] .act-edit`)))
	if got := eval[string](p, `document.getElementById('err-count').textContent + '|' + document.getElementById('decl-form').dataset.editing + '|' + document.getElementById('count').value`); got != "Le nombre doit être compris entre 1 et 200.|"+key+"|200" {
		t.Errorf("the form holding the refused item: %q", got)
	}
	p.do("send the fixed item", 10*time.Second,
		chromedp.SetValue(chromedp.CSS("#count"), "25"),
		chromedp.Click(chromedp.CSS(`#decl-form button[type=submit]`)),
		chromedp.Click(chromedp.CSS(`#decl-form .confirm-yes`)))
	p.waitFor("the fixed item received", rowStatus(key)+` === 'sent|reçu'`, 10*time.Second)
	n := 0
	for _, d := range apiGet[declList](t, srv, token, "/declarations").Declarations {
		if d.IdempotencyKey == key {
			n++
			if d.Count != 25 || d.Place != "hopital" {
				t.Errorf("fixed item stored as %+v", d)
			}
		}
	}
	if n != 1 {
		t.Errorf("the fixed item is stored %d times, want once", n)
	}
}

// checkRetryAfter: the first send of a declaration gets 503 with
// Retry-After: 2 (answered by the browser's request interception, as a
// loaded server would): the page keeps it "en attente d'envoi", waits the
// two seconds asked for (its own backoff would wait at most one), sends
// again with the same key, and the declaration is received once.
func checkRetryAfter(t *testing.T, p *page, srv *testServer, token string) {
	t.Helper()
	ictx, cancel := context.WithCancel(p.ctx)
	defer cancel()
	paused := chromedp.Events(ictx, fetch.RequestPaused)
	p.do("intercept the declaration requests", 5*time.Second, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: "*/api/v1/declarations"}}})
		return err
	}))
	type post struct {
		at  time.Time
		key string
		err error
	}
	posts := make(chan post, 8)
	go func() {
		n := 0
		for ev, err := range paused {
			if err != nil {
				return
			}
			if ev.Request.Method != http.MethodPost { // the history's GET
				_, _ = chromedp.Call(ictx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
				continue
			}
			var body []byte
			for _, e := range ev.Request.PostDataEntries {
				body = append(body, e.Bytes...)
			}
			var in struct {
				Key string `json:"idempotency_key"`
			}
			_ = json.Unmarshal(body, &in)
			var cerr error
			if n++; n == 1 {
				_, cerr = chromedp.Call(ictx, fetch.FulfillRequest, fetch.FulfillRequestParams{RequestID: ev.RequestID, ResponseCode: http.StatusServiceUnavailable,
					ResponseHeaders: []*fetch.HeaderEntry{{Name: "Retry-After", Value: "2"}, {Name: "Content-Type", Value: "application/json"}},
					Body:            []byte(`{"error":"unavailable","message":"Service momentanément indisponible, nouvel essai automatique."}`)})
			} else {
				_, cerr = chromedp.Call(ictx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
			}
			posts <- post{time.Now(), in.Key, cerr}
		}
	}()
	next := func(what string) post {
		t.Helper()
		select {
		case ps := <-posts:
			if ps.err != nil {
				t.Fatalf("%s: interception: %v", what, ps.err)
			}
			return ps
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no request within 10 s", what)
		}
		return post{}
	}
	p.do("declare 1 'autre'", 5*time.Second,
		chromedp.Click(chromedp.CSS(`#decl-form .places button[data-place="autre"]`)),
		chromedp.Click(chromedp.CSS(`#decl-form button[type=submit]`)),
		chromedp.Click(chromedp.CSS(`#decl-form .confirm-yes`)))
	first := next("first send")
	p.waitFor("the 503 shown as waiting", rowStatus(first.key)+` === 'pending|en attente d’envoi' && document.getElementById('flash').textContent.startsWith('Serveur momentanément indisponible (503)')`, 5*time.Second)
	second := next("retry")
	gap := second.at.Sub(first.at)
	t.Logf("503 with Retry-After: 2 → retried after %v with the same key: %v", gap.Round(time.Millisecond), first.key == second.key)
	if gap < 1900*time.Millisecond || gap > 4*time.Second || first.key == "" || first.key != second.key {
		t.Errorf("retry after %v (want ≈2 s), keys %q then %q", gap, first.key, second.key)
	}
	p.waitFor("the retried declaration received", rowStatus(first.key)+` === 'sent|reçu'`, 10*time.Second)
	n := 0
	for _, d := range apiGet[declList](t, srv, token, "/declarations").Declarations {
		if d.IdempotencyKey == first.key {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the retried declaration is stored %d times, want once", n)
	}
	p.do("stop intercepting", 5*time.Second, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, fetch.Disable, cdp.Empty{})
		return err
	}))
}

// declDay shifts a YYYY-MM-DD day.
func declDay(t *testing.T, day string, n int) string {
	t.Helper()
	d, err := time.Parse(time.DateOnly, day)
	if err != nil {
		t.Fatalf("day %q: %v", day, err)
	}
	return d.AddDate(0, 0, n).Format(time.DateOnly)
}

// checkReport opens the morning report as the prefecture: yesterday's
// figures hold the declaration made offline; the CSV downloads; printed,
// the buttons are gone.
func checkReport(t *testing.T, browserCtx context.Context, srv *testServer, dir, yesterday string) {
	t.Helper()
	hostURL, err := srv.app.NewRoomLink(context.Background(), app.MainRoom, rooms.RoleHost, "Préfecture – COD", time.Hour)
	if err != nil {
		t.Fatalf("operator link: %v", err)
	}
	_, opToken, ok := strings.Cut(hostURL, "#t=")
	if !ok {
		t.Fatalf("host link %q", hostURL)
	}
	op := openPage(t, browserCtx, "préfecture (report)")
	op.do("desktop viewport", 5*time.Second, chromedp.EmulateViewport(1100, 900))
	op.do("open the report", 15*time.Second, chromedp.Navigate("http://"+srv.proxy.addr()+"/report#t="+opToken))
	op.waitFor("the report", `document.body.dataset.state === 'ready'`, 10*time.Second)
	type reportView struct {
		Date, Hash, Vannes, Dep, Missing, Day string
	}
	v := eval[reportView](op, `(() => {
		const row = document.querySelector('#communes-table tr[data-code="56260"]');
		return { Date: document.body.dataset.date, Hash: location.hash,
			Vannes: row ? [...row.children].map((c) => c.textContent.trim()).join('|') : '',
			Dep: [...document.querySelectorAll('#dep-table tbody td')].map((c) => c.textContent).join('|'),
			Missing: document.getElementById('missing-n').textContent, Day: document.getElementById('day').value };
	})()`)
	t.Logf("report: %+v", v)
	if v.Date != yesterday || v.Day != yesterday || v.Hash != "" {
		t.Errorf("report day %q (input %q), hash %q; want %s and no hash", v.Date, v.Day, v.Hash, yesterday)
	}
	// The page shows what the API says: yesterday, Vannes had the 2 deaths
	// declared offline, none the day before.
	rep := apiGet[declarations.Report](t, srv, opToken, "/report?date="+yesterday)
	var vannes *declarations.ReportLine
	for i := range rep.Communes {
		if rep.Communes[i].Code == "56260" {
			vannes = &rep.Communes[i]
		}
	}
	if vannes == nil || vannes.Total != 2 || vannes.ByPlace["domicile"] != 2 || vannes.Previous != 0 || vannes.Change != 2 {
		t.Fatalf("report API, Vannes: %+v", vannes)
	}
	levels := []string{"Normal", "Vigilance", "Alerte", "Crise"}
	// Commune, Domicile, EHPAD, Hôpital, Autre, total, day before, change, 7 days, level.
	if want := fmt.Sprintf("Vannes 56260|2|0|0|0|2|0|+2|%d|%s", vannes.Last7, levels[vannes.Level]); v.Vannes != want {
		t.Errorf("Vannes line %q, want %q", v.Vannes, want)
	}
	if want := fmt.Sprintf("(%d)", len(rep.NotDeclared)); v.Dep != "2|0|0|0|2" || v.Missing != want || len(rep.NotDeclared) != 249 {
		t.Errorf("département line %q, not declared %q; want 2|0|0|0|2 and %s of 249", v.Dep, v.Missing, want)
	}
	if n := eval[int](op, `document.querySelectorAll('#alert-table tbody tr').length`); n != len(rep.InAlert) {
		t.Errorf("%d communes in alert shown, the API has %d", n, len(rep.InAlert))
	}
	screenshot(t, op, dir, "report-desktop.png")

	// The CSV: fetched with the bearer token, saved as a file.
	dl := t.TempDir()
	op.do("allow downloads", 5*time.Second, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		info, err := chromedp.CallBrowser(ctx, target.GetTargetInfo, target.GetTargetInfoParams{TargetID: tg.TargetID})
		if err != nil {
			return err
		}
		_, err = chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllow, BrowserContextID: info.TargetInfo.BrowserContextID, DownloadPath: dl,
		})
		return err
	}))
	op.do("download the CSV", 5*time.Second, chromedp.Click(chromedp.CSS("#csv")))
	want := apiRaw(t, srv, opToken, "/export.csv")
	lines := strings.Count(want, "\r\n") - 1
	op.waitFor("the export", `document.getElementById('csv').dataset.lines === '`+strconv.Itoa(lines)+`'`, 10*time.Second)
	csvFile := waitFile(t, dl, "declarations-", 10*time.Second)
	b, err := os.ReadFile(csvFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want || !strings.Contains(want, "56260;Vannes;"+yesterday+";domicile;2\r\n") {
		t.Errorf("downloaded CSV %s differs from the API's export:\n%s\nwant:\n%s", filepath.Base(csvFile), b, want)
	}
	t.Logf("CSV downloaded: %s, %d rows, %d bytes", filepath.Base(csvFile), lines, len(b))

	// Printed: no buttons; an A4 PDF as an artefact.
	op.do("print media", 5*time.Second, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"})
		return err
	}))
	if shown := eval[int](op, `[...document.querySelectorAll('button, input')].filter((b) => b.getBoundingClientRect().height > 0).length`); shown != 0 {
		t.Errorf("%d buttons or inputs visible in print", shown)
	}
	op.do("A4-wide viewport", 5*time.Second, chromedp.EmulateViewport(794, 1123))
	screenshot(t, op, dir, "report-print.png")
	pdf, err := chromedp.Run(op.ctx, chromedp.PrintToPDF(chromedp.PDFPreferCSSPageSize(), chromedp.PDFPrintBackground()))
	if err != nil {
		t.Fatalf("print to PDF: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report-a4.pdf"), pdf, 0o644); err != nil {
		t.Fatal(err)
	}
	pages := regexp.MustCompile(`/Type\s*/Page[^s]`).FindAll(pdf, -1)
	t.Logf("report PDF: %d bytes, %d A4 pages", len(pdf), len(pages))
	if len(pages) == 0 {
		t.Errorf("the report PDF has no page")
	}
	op.checkClean()
}

// waitFile waits for a finished download whose name starts with prefix.
func waitFile(t *testing.T, dir, prefix string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), prefix) && !strings.HasSuffix(e.Name(), ".crdownload") {
				return filepath.Join(dir, e.Name())
			}
		}
		time.Sleep(100 * time.Millisecond) // a file system has no channel to wait on
	}
	t.Fatalf("no download starting with %q in %s after %v", prefix, dir, timeout)
	return ""
}
