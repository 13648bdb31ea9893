package e2e

import (
	"context"
	"crisisroom/internal/testgeo"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"crisisroom/app"
	"crisisroom/rooms"
)

// The communes the test declares in (Morbihan, COG 2021 populations).
const (
	pontivy  = "56178" // 15,064 inhabitants: 10 deaths in a day is "crise"
	guemene  = "56073" // Guémené-sur-Scorff, 1,060: 3 deaths is "crise"
	vert     = "#2da44e"
	rouge    = "#e1000f"
	liveJS   = `document.getElementById('map-live').dataset.status === 'live' && document.getElementById('map-pane').dataset.ready === 'true'`
	followJS = `document.getElementById('map-pane').dataset.follow`
)

// geoDir is the reference territory in testdata/geo (internal/testgeo).
func geoDir(t *testing.T) string { return testgeo.Dir(t) }

func startMapServer(t *testing.T) *testServer {
	t.Helper()
	geo := geoDir(t)
	return startServer(t, 6, 30*time.Second, func(c *app.Config) {
		c.Territory = filepath.Join(geo, "communes-56-morbihan.geojson")
		c.CommunesCSV = filepath.Join(geo, "communes-56-morbihan-cog2021.csv")
	})
}

// hostLink mints a host link and returns it with its token (the Bearer of
// the declarations API: a room host acts as an operator).
func (s *testServer) hostLink(t *testing.T, label string) (link, token string) {
	t.Helper()
	u, err := s.app.NewRoomLink(context.Background(), app.MainRoom, rooms.RoleHost, label, time.Hour)
	if err != nil {
		t.Fatalf("mint host link: %v", err)
	}
	_, tok, ok := strings.Cut(u, "#t=")
	if !ok {
		t.Fatalf("host link without token: %s", u)
	}
	return u, tok
}

// declare posts a declaration for today (Europe/Paris) straight to the
// server, not through the proxy, so that it works while the browsers'
// connections are cut.
func (s *testServer) declare(t *testing.T, token, commune, place string, count int) {
	t.Helper()
	if code, body := s.postDeclaration(t, token, commune, place, count); code != http.StatusCreated {
		t.Fatalf("declare %s %s %d: HTTP %d %s", commune, place, count, code, body)
	}
}

// postDeclaration posts one declaration of today (Paris) and returns the
// answer's status and body.
func (s *testServer) postDeclaration(t *testing.T, token, commune, place string, count int) (int, string) {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatalf("time zone: %v", err)
	}
	key := make([]byte, 8)
	_, _ = rand.Read(key)
	res := bearerDo(t, http.MethodPost, s.http.URL+"/api/v1/declarations", token, map[string]any{"commune": commune,
		"date": time.Now().In(loc).Format("2006-01-02"), "place": place, "count": count, "idempotency_key": "e2e-" + hex.EncodeToString(key)})
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// apiState is what the API says of a commune: the reference the pages
// must agree with.
type apiState struct {
	Total        int            `json:"total"`
	Today        int            `json:"today"`
	Level        int            `json:"level"`
	TodayByPlace map[string]int `json:"today_by_place"`
}

func (s *testServer) communeState(t *testing.T, token, code string) apiState {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.http.URL+"/api/v1/aggregates?commune="+code, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("aggregates: %v", err)
	}
	defer res.Body.Close()
	var st apiState
	if res.StatusCode != http.StatusOK || json.NewDecoder(res.Body).Decode(&st) != nil {
		t.Fatalf("aggregates %s: HTTP %d", code, res.StatusCode)
	}
	return st
}

// mapView is a page's map viewport as the page exposes it.
type mapView struct {
	Zoom     string
	Center   string
	Selected string
}

const readView = `(() => ({ Zoom: document.getElementById('map').dataset.zoom || '', Center: document.getElementById('map').dataset.center || '',
	Selected: document.getElementById('map-pane').dataset.selected || '' }))()`

// sameView: same zoom and commune, centres within a few metres.
func sameView(a, b mapView) bool {
	if a.Zoom == "" || a.Zoom != b.Zoom || a.Selected != b.Selected {
		return false
	}
	var alat, alng, blat, blng float64
	if _, err := fmt.Sscanf(a.Center, "%g,%g", &alat, &alng); err != nil {
		return false
	}
	if _, err := fmt.Sscanf(b.Center, "%g,%g", &blat, &blng); err != nil {
		return false
	}
	return math.Abs(alat-blat) < 1e-4 && math.Abs(alng-blng) < 1e-4
}

// waitSameView polls until follower shows presenter's viewport.
func waitSameView(t *testing.T, presenter, follower *page, what string) mapView {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		p, f := eval[mapView](presenter, readView), eval[mapView](follower, readView)
		if sameView(p, f) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: follower's map %+v does not match the presenter's %+v", what, f, p)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pageFigures are the numbers a page shows for the selected commune and
// the département.
type pageFigures struct {
	Status, Fill, Level                   string
	Today, Domicile, Ehpad, Total, DepDay string
	GuemeneFill                           string
}

const readFigures = `(() => {
	const q = (s) => document.querySelector(s)?.textContent ?? '';
	const path = (c) => document.querySelector('path[data-code="' + c + '"]');
	return { Status: document.getElementById('map-live').dataset.status,
		Fill: path('` + pontivy + `').getAttribute('fill'), Level: path('` + pontivy + `').getAttribute('data-level'),
		Today: q('#cp-rows td[data-place="all"][data-period="today"]'),
		Domicile: q('#cp-rows td[data-place="domicile"][data-period="today"]'),
		Ehpad: q('#cp-rows td[data-place="ehpad"][data-period="today"]'),
		Total: q('#cp-rows td[data-place="all"][data-period="total"]'),
		DepDay: q('#dep-today'), GuemeneFill: path('` + guemene + `').getAttribute('fill') };
})()`

// clickCommune clicks a point inside a commune's polygon, as a person would.
func clickCommune(p *page, code string) {
	p.t.Helper()
	pt := eval[struct {
		X, Y float64
		OK   bool
	}](p, `(() => {
		const el = document.querySelector('path[data-code="`+code+`"]');
		const r = el.getBoundingClientRect();
		const pts = [];
		for (let i = 1; i < 16; i++) for (let j = 1; j < 16; j++) pts.push([r.left + r.width * i / 16, r.top + r.height * j / 16]);
		pts.sort((a, b) => Math.hypot(a[0] - r.left - r.width / 2, a[1] - r.top - r.height / 2) - Math.hypot(b[0] - r.left - r.width / 2, b[1] - r.top - r.height / 2));
		for (const [x, y] of pts) if (document.elementFromPoint(x, y) === el) return { X: x, Y: y, OK: true };
		return { X: 0, Y: 0, OK: false };
	})()`)
	if !pt.OK {
		p.t.Fatalf("%s: commune %s has no visible point to click", p.name, code)
	}
	p.do("click commune "+code, 5*time.Second, chromedp.MouseClickXY(pt.X, pt.Y))
}

// TestMapInBrowsers: the live map beside the video, in real Chromium. A
// host on a desktop presents the map to a participant on a 360 px phone;
// a declaration posted through the API recolours the commune on the phone
// within a second; the follower detaches and follows again; the signaling
// connection is cut while more declarations arrive, and once back the
// figures are the server's; a late joiner lands on the presenter's view.
func TestMapInBrowsers(t *testing.T) {
	began := time.Now()
	browser := newBrowser(t)
	srv := startMapServer(t)
	dir := artifactsDir(t)
	hostURL, hostTok := srv.hostLink(t, "préfecture")
	pres := openPage(t, browser, "presenter (host, desktop)")
	fol := openPage(t, browser, "follower (phone, 360 px)")
	pres.do("desktop viewport", 5*time.Second, chromedp.EmulateViewport(1280, 800))
	fol.do("phone viewport", 5*time.Second, chromedp.EmulateViewport(360, 740,
		chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait))

	join(pres, hostURL, "Préfecture – COD")
	join(fol, srv.link(t, "sdis"), "SDIS 56")
	for _, p := range []*page{pres, fol} {
		p.waitFor("the live map", liveJS, 15*time.Second)
	}
	t.Logf("both maps live after %v", time.Since(began).Round(time.Millisecond))

	// One page, one connection: video signaling and map feed share it.
	for _, p := range []*page{pres, fol} {
		if n := p.sockets.Load(); n != 1 {
			t.Errorf("%s opened %d WebSockets, want 1", p.name, n)
		}
	}
	if n := srv.app.Map.Subscribers(); n != 2 {
		t.Errorf("map watchers: %d, want 2", n)
	}

	// Desktop: video and map side by side. Phone: tabs Vidéo / Carte.
	checkDesktopSplit(t, pres)
	checkPhoneTabs(t, fol)

	// Only hosts may present.
	if eval[bool](fol, `!document.getElementById('map-present').hidden`) {
		t.Errorf("a participant sees the presenter button")
	}
	pres.do("take the presenter role", 5*time.Second, chromedp.Click(chromedp.CSS("#map-present")))
	pres.waitFor("presenting", `document.getElementById('map-pane').dataset.presenter === 'self'`, 5*time.Second)
	fol.waitFor("following", `document.getElementById('map-pane').dataset.presenter === 'other' && `+followJS+` === 'true'`, 5*time.Second)

	// The presenter selects Pontivy, pans and zooms in.
	clickCommune(pres, pontivy)
	pres.waitFor("Pontivy's panel", `document.getElementById('commune').dataset.code === '`+pontivy+`' && document.querySelectorAll('#cp-rows tr').length === 5`, 5*time.Second)
	r := eval[struct{ X, Y float64 }](pres, `(() => { const r = document.getElementById('map').getBoundingClientRect(); return { X: r.left + r.width * 0.4, Y: r.top + r.height * 0.5 }; })()`)
	before := eval[mapView](pres, readView)
	pres.do("pan the map", 10*time.Second, chromedp.DragAndDropXY(r.X, r.Y, r.X-120, r.Y+70, 12))
	for i := 0; i < 2; i++ {
		z := eval[string](pres, `document.getElementById('map').dataset.zoom`)
		pres.do("zoom in", 5*time.Second, chromedp.Click(chromedp.CSS(".leaflet-control-zoom-in")))
		pres.waitFor("the zoom", `document.getElementById('map').dataset.zoom !== '`+z+`'`, 5*time.Second)
	}
	after := waitSameView(t, pres, fol, "pan and zoom")
	if after.Zoom == before.Zoom || after.Center == before.Center {
		t.Errorf("the presenter's map did not move: %+v → %+v", before, after)
	}
	fol.waitFor("Pontivy's panel on the phone", `document.getElementById('commune').dataset.code === '`+pontivy+`' && !document.getElementById('commune').hidden`, 5*time.Second)
	t.Logf("follower matches the presenter: zoom %s → %s, centre %s → %s, commune %s", before.Zoom, after.Zoom, before.Center, after.Center, after.Selected)

	// A declaration recolours Pontivy on the other page within a second.
	if f := eval[pageFigures](fol, readFigures); f.Fill != vert || f.Today != "0" {
		t.Fatalf("before any declaration, Pontivy shows %+v", f)
	}
	sent := time.Now()
	srv.declare(t, hostTok, pontivy, "domicile", 10)
	seenAt := waitUntil(t, fol, "Pontivy red with 10 deaths today", `(() => {
		const p = document.querySelector('path[data-code="`+pontivy+`"]');
		const td = document.querySelector('#cp-rows td[data-place="all"][data-period="today"]');
		return p.getAttribute('fill') === '`+rouge+`' && td.textContent === '10';
	})()`, 5*time.Second)
	latency := seenAt.Sub(sent)
	t.Logf("declaration → colour and figure on the follower's page: %v", latency.Round(time.Millisecond))
	if latency > time.Second {
		t.Errorf("the follower saw the declaration after %v, want within 1 s", latency)
	}
	pres.waitFor("Pontivy red on the presenter's page", `document.querySelector('path[data-code="`+pontivy+`"]').getAttribute('fill') === '`+rouge+`'`, 2*time.Second)
	fol.waitFor("the commune's series fetched again", `document.getElementById('cp-spark').dataset.sum === '10'`, 5*time.Second)

	checkDetach(t, pres, fol)
	checkAnnotationAndLayer(t, srv, hostTok, pres, fol)

	// Outage: the signaling connection is cut; two declarations arrive
	// meanwhile. No page may show a number it cannot vouch for, and once
	// back every figure must be the server's.
	srv.proxy.setDown(true)
	if n := srv.proxy.cut(); n < 2 {
		t.Fatalf("cut %d connections, want at least the two WebSockets", n)
	}
	for _, p := range []*page{pres, fol} {
		p.waitFor("the map reconnecting, figures withheld", `document.getElementById('map-live').dataset.status === 'reconnecting' && document.getElementById('dep-today').textContent === '…' && document.querySelector('#cp-rows td[data-place="all"][data-period="today"]').textContent === '…'`, 5*time.Second)
	}
	srv.declare(t, hostTok, pontivy, "ehpad", 5)
	srv.declare(t, hostTok, guemene, "hopital", 3)
	srv.proxy.setDown(false)
	back := time.Now()
	want := srv.communeState(t, hostTok, pontivy)
	if want.Today != 15 || want.TodayByPlace["ehpad"] != 5 || want.Level != 3 {
		t.Fatalf("server state of Pontivy after the outage: %+v", want)
	}
	for _, p := range []*page{pres, fol} {
		p.waitFor("live again with the outage's declarations", liveJS+` && document.getElementById('dep-today').textContent === '18'`, 20*time.Second)
		f := eval[pageFigures](p, readFigures)
		wantF := pageFigures{Status: "live", Fill: rouge, Level: "3", Today: "15", Domicile: "10", Ehpad: "5", Total: "15", DepDay: "18", GuemeneFill: rouge}
		if f != wantF {
			t.Errorf("%s after the outage shows %+v, want %+v", p.name, f, wantF)
		}
	}
	t.Logf("after the outage both pages are live and right in %v", time.Since(back).Round(time.Millisecond))
	// The presenter kept the role through the resume; the follower still follows.
	waitSameView(t, pres, fol, "after the outage")
	fol.waitFor("the annotation, sent again on the new socket", `document.getElementById('map-pane').dataset.annotations === '1'`, 5*time.Second)

	screenshot(t, pres, dir, "map-presenter-desktop.png")
	screenshot(t, fol, dir, "map-follower-phone.png")

	// A late joiner lands on the presenter's view at once.
	late := openPage(t, browser, "late joiner")
	late.do("viewport", 5*time.Second, chromedp.EmulateViewport(1100, 700))
	join(late, srv.link(t, "late"), "Arrivé en retard")
	late.waitFor("the live map", liveJS, 15*time.Second)
	waitSameView(t, pres, late, "late joiner")
	late.waitFor("the annotation and the layer list", `document.querySelector('[data-ann]') !== null && document.querySelectorAll('#layers-list li').length === 1`, 5*time.Second)

	// A restart of the server on the same data dir (an update at 3 a.m.):
	// the pages come back by themselves and the annotation is still there.
	restarted := time.Now()
	srv.restart(t)
	for _, p := range []*page{pres, fol, late} {
		p.waitFor("live again after the server restart", liveJS, 30*time.Second)
		p.waitFor("the annotation after the server restart", `document.getElementById('map-pane').dataset.annotations === '1' && [...document.querySelectorAll('.ann-tip')].some((e) => e.textContent === `+js(shelter)+`)`, 10*time.Second)
	}
	t.Logf("after a server restart all pages are live with the stored annotation in %v", time.Since(restarted).Round(time.Millisecond))

	for _, p := range []*page{pres, fol, late} {
		p.checkClean()
	}
	t.Logf("total %v", time.Since(began).Round(time.Millisecond))
}

// waitUntil polls a predicate every 10 ms in the page and returns when the
// page saw it true (the page's clock, same machine).
func waitUntil(t *testing.T, p *page, what, pred string, timeout time.Duration) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, timeout+5*time.Second)
	defer cancel()
	ms, err := chromedp.Run(ctx, chromedp.Poll[float64](`(`+pred+`) ? Date.now() : 0`,
		chromedp.WithPollingInterval(10*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		t.Fatalf("%s: waiting for %s: %v\nfigures: %+v", p.name, what, err, eval[pageFigures](p, readFigures))
	}
	return time.UnixMilli(int64(ms))
}

type paneBox struct {
	VW, ScrollW                 float64
	GridW, MapW, MapH, MapLeft  float64
	GridShown, MapShown, TabsOn bool
	ControlsBottom, VH          float64
}

const measurePanes = `(() => {
	const box = (id) => document.getElementById(id).getBoundingClientRect();
	const shown = (id) => getComputedStyle(document.getElementById(id)).display !== 'none';
	const g = box('grid'), m = box('map');
	return { VW: innerWidth, VH: innerHeight, ScrollW: document.documentElement.scrollWidth,
		GridW: g.width, MapW: m.width, MapH: m.height, MapLeft: m.left,
		GridShown: shown('grid'), MapShown: shown('map-pane'),
		TabsOn: getComputedStyle(document.querySelector('.view-tabs')).display !== 'none',
		ControlsBottom: document.querySelector('.controls').getBoundingClientRect().bottom };
})()`

func checkDesktopSplit(t *testing.T, p *page) {
	t.Helper()
	b := eval[paneBox](p, measurePanes)
	if b.TabsOn || !b.GridShown || !b.MapShown || b.MapW < 500 || b.GridW < 300 || b.MapLeft < b.GridW {
		t.Errorf("desktop: video and map should be side by side: %+v", b)
	}
}

// checkPhoneTabs: at 360 px the room shows tabs; the map tab holds the map,
// nothing scrolls sideways and the controls stay on screen.
func checkPhoneTabs(t *testing.T, p *page) {
	t.Helper()
	b := eval[paneBox](p, measurePanes)
	if !b.TabsOn || !b.GridShown || b.MapShown {
		t.Errorf("phone: the video tab should be shown first, the map behind its tab: %+v", b)
	}
	p.do("open the map tab", 5*time.Second, chromedp.Click(chromedp.CSS("#tab-map")))
	p.waitFor("the map tab", `document.getElementById('tab-map').getAttribute('aria-selected') === 'true' && document.getElementById('map').clientWidth > 0`, 5*time.Second)
	b = eval[paneBox](p, measurePanes)
	if b.VW != 360 || b.ScrollW > b.VW || b.GridShown || !b.MapShown || b.MapW < 340 || b.MapH < 250 || b.ControlsBottom > b.VH+1 {
		t.Errorf("phone map tab badly laid out: %+v", b)
	}
	t.Logf("phone map: %.0fx%.0f in a %vx%v viewport", b.MapW, b.MapH, b.VW, b.VH)
}

// checkDetach: the follower detaches (the presenter's moves no longer move
// it), then follows again and jumps to the presenter's current view.
func checkDetach(t *testing.T, pres, fol *page) {
	t.Helper()
	fol.do("detach", 5*time.Second, chromedp.Click(chromedp.CSS("#map-follow-btn")))
	fol.waitFor("detached", followJS+` === 'false'`, 5*time.Second)
	mine := eval[mapView](fol, readView)
	views := eval[string](fol, `document.getElementById('map-pane').dataset.views`)
	z := eval[string](pres, `document.getElementById('map').dataset.zoom`)
	pres.do("zoom out", 5*time.Second, chromedp.Click(chromedp.CSS(".leaflet-control-zoom-out")))
	pres.waitFor("the zoom", `document.getElementById('map').dataset.zoom !== '`+z+`'`, 5*time.Second)
	// The presenter's new view reaches the follower, which stays put.
	fol.waitFor("the presenter's new view, received", `document.getElementById('map-pane').dataset.views !== '`+views+`'`, 5*time.Second)
	if got := eval[mapView](fol, readView); got != mine {
		t.Errorf("a detached follower moved: %+v → %+v", mine, got)
	}
	fol.do("follow again", 5*time.Second, chromedp.Click(chromedp.CSS("#map-follow-btn")))
	fol.waitFor("following", followJS+` === 'true'`, 5*time.Second)
	waitSameView(t, pres, fol, "re-follow")
}

const shelter = "Centre d'hébergement <b>gymnase</b>"

// checkAnnotationAndLayer: the presenter draws a marker with the page's
// tools; the follower sees it with its label (as text). A host uploads an
// operator layer through the API; the follower's list updates live and the
// layer's points are drawn when it turns it on.
func checkAnnotationAndLayer(t *testing.T, srv *testServer, hostTok string, pres, fol *page) {
	t.Helper()
	pres.do("start an annotation", 5*time.Second, chromedp.Click(chromedp.CSS("#ann-start")),
		chromedp.SendKeys(chromedp.CSS("#ann-label"), shelter))
	at := eval[struct{ X, Y float64 }](pres, `(() => { const r = document.getElementById('map').getBoundingClientRect(); return { X: r.left + r.width * 0.3, Y: r.top + r.height * 0.6 }; })()`)
	pres.do("place the marker", 5*time.Second, chromedp.MouseClickXY(at.X, at.Y))
	if sel := eval[string](pres, `document.getElementById('map-pane').dataset.selected`); sel != pontivy {
		t.Errorf("a click while drawing selected commune %q", sel)
	}
	pres.do("save the annotation", 5*time.Second, chromedp.Click(chromedp.CSS("#ann-save")))
	pres.waitFor("the saved annotation", `document.getElementById('ann-bar').hidden && document.querySelector('[data-ann]') !== null`, 5*time.Second)
	fol.waitFor("the annotation on the follower's map", `[...document.querySelectorAll('.ann-tip')].some((e) => e.textContent === `+js(shelter)+`)`, 5*time.Second)
	if n := eval[int](fol, `document.querySelectorAll('.ann-tip b, .ann-tip img').length`); n != 0 {
		t.Errorf("an annotation label was parsed as HTML")
	}

	const layer = `{"type":"FeatureCollection","features":[
		{"type":"Feature","properties":{"nom":"Centre hospitalier de Pontivy"},"geometry":{"type":"Point","coordinates":[-2.9636,48.0727]}},
		{"type":"Feature","properties":{"nom":"EHPAD <i>Kerlivio</i>"},"geometry":{"type":"Point","coordinates":[-2.5573,47.8791]}}]}`
	req, _ := http.NewRequest(http.MethodPost, srv.http.URL+"/api/v1/layers?name=H%C3%B4pitaux", strings.NewReader(layer))
	req.Header.Set("Authorization", "Bearer "+hostTok)
	req.Header.Set("Content-Type", "application/geo+json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("upload a layer: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("upload a layer: HTTP %d", res.StatusCode)
	}
	fol.waitFor("the new layer in the list", `document.querySelectorAll('#layers-list li').length === 1 && document.querySelector('#layers-list li span').textContent === 'Hôpitaux (2)'`, 5*time.Second)
	fol.do("turn the layer on", 5*time.Second, chromedp.Click(chromedp.CSS("#layers-toggle")),
		chromedp.Click(chromedp.CSS("#layers-list input[type=checkbox]")))
	fol.waitFor("the layer's two points", `document.querySelectorAll('.leaflet-oplayers-pane path').length === 2`, 5*time.Second)
	fol.do("close the layer list", 5*time.Second, chromedp.Click(chromedp.CSS("#layers-toggle")))
}
