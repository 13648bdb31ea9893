package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"crisisroom/app"
)

// A name with markup: it must show as text everywhere, never as an element.
const brunoName = `Bruno <img src=x onerror=alert(1)> Lefèvre`

// js quotes a Go string as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// join opens a room link, checks the pre-join preview and enters.
func join(p *page, link, name string) {
	p.t.Helper()
	prejoin(p, link)
	enter(p, name)
}

// prejoin opens a room link and waits for the camera preview.
func prejoin(p *page, link string) {
	p.t.Helper()
	p.do("open the link", 15*time.Second, chromedp.Navigate(link))
	p.waitFor("the camera preview", `!document.getElementById('view-prejoin').hidden && document.getElementById('preview').videoWidth > 0`, 15*time.Second)
	if h := eval[string](p, `location.hash`); h != "" {
		p.t.Errorf("%s: the token stays in the address bar (%q)", p.name, h)
	}
}

// enter types the display name and joins.
func enter(p *page, name string) {
	p.t.Helper()
	p.do("type the name and join", 10*time.Second,
		chromedp.SendKeys(chromedp.CSS("#name"), name),
		chromedp.Click(chromedp.CSS("#join")),
	)
}

// probeRemoteVideo measures the first remote tile's video for 800 ms.
type videoProbe struct {
	Width, Height int
	T0, T1        float64
}

func probeRemoteVideo(p *page) videoProbe {
	p.t.Helper()
	p.waitFor("the other person's video", `(() => { const v = document.querySelector('#grid .tile:not(.self) video'); return !!v && v.videoWidth > 0; })()`, 25*time.Second)
	return eval[videoProbe](p, `(async () => {
		const v = document.querySelector('#grid .tile:not(.self) video');
		const t0 = v.currentTime;
		await new Promise((r) => setTimeout(r, 800));
		return { Width: v.videoWidth, Height: v.videoHeight, T0: t0, T1: v.currentTime };
	})()`)
}

func assertPlaying(t *testing.T, p *page) {
	t.Helper()
	v := probeRemoteVideo(p)
	if v.Width <= 0 || v.T1 <= v.T0 {
		t.Fatalf("%s: remote video not playing: %+v", p.name, v)
	}
	t.Logf("%s sees the other at %dx%d, currentTime %.2f → %.2f", p.name, v.Width, v.Height, v.T0, v.T1)
}

func screenshot(t *testing.T, p *page, dir, file string) {
	t.Helper()
	png, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("%s: screenshot: %v", p.name, err)
	}
	path := filepath.Join(dir, file)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	t.Logf("screenshot: %s", path)
}

type layout struct {
	VW, VH         float64
	ScrollW        float64
	Tiles          []struct{ Left, Right, Top, Bottom, W, H float64 }
	ControlsTop    float64
	ControlsBottom float64
	LabelDisplay   string
}

const measureLayout = `(() => {
	const tiles = [...document.querySelectorAll('#grid .tile')].map((t) => {
		const r = t.getBoundingClientRect();
		return { Left: r.left, Right: r.right, Top: r.top, Bottom: r.bottom, W: r.width, H: r.height };
	});
	const c = document.querySelector('.controls').getBoundingClientRect();
	return {
		VW: innerWidth, VH: innerHeight, ScrollW: document.documentElement.scrollWidth, Tiles: tiles,
		ControlsTop: c.top, ControlsBottom: c.bottom,
		LabelDisplay: getComputedStyle(document.querySelector('#ctl-mic .lbl')).display,
	};
})()`

// TestRoomInBrowsers is the whole story in real Chromium: two people join
// the same room (one on a desktop, one on a phone-sized screen), see each
// other's video, chat, lose the signaling connection and resume, a third is
// refused because the room is full, and one leaves.
func TestRoomInBrowsers(t *testing.T) {
	began := time.Now()
	browser := newBrowser(t)
	srv := startServer(t, 2, 30*time.Second)
	dir := artifactsDir(t)
	alice := openPage(t, browser, "alice (desktop)")
	bruno := openPage(t, browser, "bruno (phone)")
	alice.do("desktop viewport", 5*time.Second, chromedp.EmulateViewport(1280, 720))
	bruno.do("phone viewport", 5*time.Second, chromedp.EmulateViewport(390, 844,
		chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait))
	t.Logf("browser ready after %v", time.Since(began).Round(time.Millisecond))

	join(alice, srv.link(t, "alice"), "Alice Martin")
	if got := eval[string](alice, `document.documentElement.lang + ' / ' + document.getElementById('join').textContent`); got != "fr / Rejoindre la salle" {
		t.Errorf("default language: got %q, want French", got)
	}
	prejoin(bruno, srv.link(t, "bruno"))
	screenshot(t, bruno, dir, "prejoin-phone.png")
	enter(bruno, brunoName)
	for _, p := range []*page{alice, bruno} {
		p.waitFor("joined", `document.getElementById('conn').dataset.status === 'open'`, 10*time.Second)
	}

	// Each sees the other's video playing.
	assertPlaying(t, alice)
	assertPlaying(t, bruno)
	t.Logf("media flowing both ways after %v", time.Since(began).Round(time.Millisecond))

	// Peer-provided text is shown as text.
	alice.waitFor("bruno's name on his tile", `document.querySelector('#grid .tile:not(.self) .name').textContent === `+js(brunoName), 5*time.Second)
	if n := eval[int](alice, `document.querySelectorAll('#grid img, #people img').length`); n != 0 {
		t.Errorf("a name was parsed as HTML: %d <img> in the page", n)
	}

	// Active-speaker highlight: the fake microphone beeps; the analyser on
	// the remote stream must notice.
	alice.waitFor("bruno highlighted as speaking", `!!document.querySelector('#grid .tile:not(.self).speaking')`, 10*time.Second)

	// Chat from the desktop shows up on the phone, with an unread badge.
	const text = "Point de situation à 14 h : <b>RAS</b> sur la digue"
	alice.do("send a chat message", 10*time.Second,
		chromedp.Click(chromedp.CSS("#ctl-chat")),
		chromedp.SendKeys(chromedp.CSS("#chat-input"), text),
		chromedp.Click(chromedp.CSS("#chat-send")),
	)
	hasText := `[...document.querySelectorAll('#chat-log .msg .text')].some((e) => e.textContent === ` + js(text) + `)`
	bruno.waitFor("alice's chat message", hasText+` && document.getElementById('unread').textContent === '1'`, 10*time.Second)
	alice.waitFor("her own message, echoed", `!!document.querySelector('#chat-log .msg.mine') && `+hasText, 5*time.Second)

	// Bruno mutes and raises his hand: Alice's tile and list show it.
	bruno.do("mute and raise hand", 5*time.Second, chromedp.Click(chromedp.CSS("#ctl-mic")), chromedp.Click(chromedp.CSS("#ctl-hand")))
	alice.waitFor("bruno muted with his hand up",
		`(() => { const t = document.querySelector('#grid .tile:not(.self)'); const li = document.querySelector('#people li:not(:first-child)');
		  return t.classList.contains('hand-up') && !t.querySelector('.mic-off').hasAttribute('hidden')
		    && !li.querySelector('.hand').hasAttribute('hidden') && !li.querySelector('.mic-off').hasAttribute('hidden'); })()`, 5*time.Second)

	// The narrow layout: both tiles visible, inside the viewport, stacked,
	// nothing scrolls sideways, the controls fit.
	l := eval[layout](bruno, measureLayout)
	checkPhoneLayout(t, l)
	screenshot(t, bruno, dir, "room-phone.png")
	screenshot(t, alice, dir, "room-desktop.png")
	alice.do("open the participant list", 5*time.Second, chromedp.Click(chromedp.CSS("#tab-people")))
	screenshot(t, alice, dir, "room-desktop-people.png")
	bruno.do("open the chat on the phone", 5*time.Second, chromedp.Click(chromedp.CSS("#ctl-chat")))
	bruno.waitFor("the chat panel", `!document.getElementById('side').hidden && document.getElementById('unread').hidden`, 5*time.Second)
	screenshot(t, bruno, dir, "room-phone-chat.png")
	bruno.do("close the chat", 5*time.Second, chromedp.Click(chromedp.CSS("#side-close")))

	checkResume(t, srv, alice, bruno)

	// Alice shares her screen in place of her camera.
	alice.do("share the screen", 5*time.Second, chromedp.Click(chromedp.CSS("#ctl-screen")))
	bruno.waitFor("alice's screen share", `document.querySelector('#grid .tile:not(.self)').classList.contains('screen')`, 10*time.Second)
	assertPlaying(t, bruno)

	// A third person: the room holds two.
	carla := openPage(t, browser, "carla (third)")
	join(carla, srv.link(t, "carla"), "Carla")
	carla.waitFor("the room-full message", `!document.getElementById('view-final').hidden && document.getElementById('view-final').dataset.code === '4502'`, 10*time.Second)
	if got := eval[string](carla, `document.getElementById('final-title').textContent`); got != "Salle complète" {
		t.Errorf("room full title: %q", got)
	}
	screenshot(t, carla, dir, "room-full.png")

	// Without a link: the site root is the staff login; a room path with
	// neither a key nor a session says to log in.
	carla.do("open the site root", 10*time.Second, chromedp.Navigate("http://"+srv.proxy.addr()+"/"))
	carla.waitFor("the login form", `!document.getElementById('view-login').hidden && document.getElementById('view-home').hidden`, 5*time.Second)
	carla.do("open a room without key", 10*time.Second, chromedp.Navigate("http://"+srv.proxy.addr()+"/r/autre"))
	carla.waitFor("the log-in-first page", `!document.getElementById('view-landing').hidden && document.getElementById('landing-title').textContent === 'Connexion nécessaire' && !document.getElementById('landing-login').hidden`, 5*time.Second)

	// The language switch: English on demand.
	alice.do("switch to English", 5*time.Second, chromedp.Click(chromedp.CSS(`[data-lang="en"]`)))
	if got := eval[string](alice, `document.documentElement.lang + ' / ' + document.querySelector('#ctl-leave .lbl').textContent + ' / ' + document.getElementById('chat-send').textContent`); got != "en / Leave / Send" {
		t.Errorf("English UI: got %q", got)
	}

	// Alice stops sharing and turns her camera off: Bruno sees her initials.
	alice.do("stop sharing, camera off", 5*time.Second, chromedp.Click(chromedp.CSS("#ctl-screen")), chromedp.Click(chromedp.CSS("#ctl-cam")))
	bruno.waitFor("alice's avatar instead of her video",
		`(() => { const t = document.querySelector('#grid .tile:not(.self)'); return !t.classList.contains('screen') && t.classList.contains('video-off')
		  && getComputedStyle(t.querySelector('.avatar')).display !== 'none' && t.querySelector('.avatar span').textContent === 'AM'; })()`, 5*time.Second)

	// Bruno leaves; Alice's grid drops his tile at once.
	bruno.do("leave", 5*time.Second, chromedp.Click(chromedp.CSS("#ctl-leave")))
	bruno.waitFor("the left page", `document.getElementById('view-final').dataset.code === '4505'`, 5*time.Second)
	alice.waitFor("bruno gone", `document.querySelectorAll('#grid .tile').length === 1 && document.querySelectorAll('#people li').length === 1`, 5*time.Second)
	for _, p := range []*page{alice, bruno, carla} {
		p.checkClean()
	}
	t.Logf("total %v", time.Since(began).Round(time.Millisecond))
}

func checkPhoneLayout(t *testing.T, l layout) {
	t.Helper()
	if l.VW != 390 {
		t.Errorf("phone viewport width %v, want 390", l.VW)
	}
	if l.ScrollW > l.VW {
		t.Errorf("page scrolls sideways: scrollWidth %v > %v", l.ScrollW, l.VW)
	}
	if len(l.Tiles) != 2 {
		t.Fatalf("phone grid has %d tiles, want 2", len(l.Tiles))
	}
	for i, tile := range l.Tiles {
		if tile.W < 0.8*l.VW || tile.H < 100 || tile.Left < 0 || tile.Right > l.VW || tile.Bottom > l.ControlsTop+1 {
			t.Errorf("tile %d badly placed on the phone: %+v (viewport %vx%v, controls at %v)", i, tile, l.VW, l.VH, l.ControlsTop)
		}
	}
	if l.Tiles[1].Top < l.Tiles[0].Bottom {
		t.Errorf("tiles not stacked on the phone: %+v", l.Tiles)
	}
	if l.ControlsBottom > l.VH+1 {
		t.Errorf("controls below the fold: bottom %v > %v", l.ControlsBottom, l.VH)
	}
	if l.LabelDisplay != "none" {
		t.Errorf("phone controls should be icon-only, label display %q", l.LabelDisplay)
	}
	t.Logf("phone layout: %d tiles of %.0fx%.0f in %vx%v", len(l.Tiles), l.Tiles[0].W, l.Tiles[0].H, l.VW, l.VH)
}

// checkResume cuts every signaling connection and keeps the server out of
// reach for a moment: both pages must show the reconnecting banner, resume
// their seats (same peer ids, nobody sees anyone leave) and redo the
// offer/answer with an ICE restart, while the video keeps playing.
func checkResume(t *testing.T, srv *testServer, alice, bruno *page) {
	t.Helper()
	began := time.Now()
	brunoID := eval[string](alice, `document.querySelector('#grid .tile:not(.self)').dataset.peer`)
	before := eval[int](alice, `+document.querySelector('#grid .tile:not(.self)').dataset.negotiations`)
	srv.proxy.setDown(true)
	if n := srv.proxy.cut(); n < 2 {
		t.Fatalf("cut %d connections, want at least the two WebSockets", n)
	}
	for _, p := range []*page{alice, bruno} {
		p.waitFor("the reconnecting banner", `!document.getElementById('banner').hidden && document.getElementById('conn').dataset.status === 'reconnecting'`, 5*time.Second)
	}
	srv.proxy.setDown(false)
	for _, p := range []*page{alice, bruno} {
		p.waitFor("the resumed session", `document.getElementById('conn').dataset.resumes === '1' && document.getElementById('conn').dataset.status === 'open' && document.getElementById('banner').hidden`, 15*time.Second)
	}
	alice.waitFor("a new offer/answer exchange (ICE restart) with bruno",
		`(() => { const t = document.querySelector('#grid .tile:not(.self)'); return !!t && t.dataset.peer === `+js(brunoID)+` && +t.dataset.negotiations > `+strconv.Itoa(before)+` && t.dataset.conn === 'connected'; })()`, 15*time.Second)
	assertPlaying(t, alice)
	assertPlaying(t, bruno)
	t.Logf("signaling outage healed in %v", time.Since(began).Round(time.Millisecond))
}

// TestSessionExpiredRejoins: the signaling server stays out of reach longer
// than the resume window. The seats are gone (4506 on resume), so each page
// joins afresh with its link, says so in the chat, and the two see each
// other again under new peer ids.
func TestSessionExpiredRejoins(t *testing.T) {
	began := time.Now()
	browser := newBrowser(t)
	srv := startServer(t, 2, time.Second)
	alice := openPage(t, browser, "alice")
	bruno := openPage(t, browser, "bruno")
	for _, p := range []*page{alice, bruno} {
		p.do("viewport", 5*time.Second, chromedp.EmulateViewport(800, 600))
	}
	join(alice, srv.link(t, "alice"), "Alice")
	join(bruno, srv.link(t, "bruno"), "Bruno")
	assertPlaying(t, alice)
	oldID := eval[string](alice, `document.querySelector('#grid .tile:not(.self)').dataset.peer`)

	srv.proxy.setDown(true)
	srv.proxy.cut()
	alice.waitFor("the reconnecting state", `document.getElementById('conn').dataset.status === 'reconnecting'`, 5*time.Second)
	// The outage lasts until the server has given both seats up.
	deadline := time.Now().Add(10 * time.Second)
	for len(srv.app.Rooms.Members(app.MainRoom)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("seats still held 10 s after the cut: %+v", srv.app.Rooms.Members(app.MainRoom))
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv.proxy.setDown(false)

	rejoined := `[...document.querySelectorAll('#chat-log .system')].some((e) => e.textContent.startsWith('La session précédente a expiré'))`
	for _, p := range []*page{alice, bruno} {
		p.waitFor("the fresh join", `document.getElementById('conn').dataset.status === 'open' && !document.getElementById('conn').dataset.resumes && `+rejoined, 20*time.Second)
	}
	alice.waitFor("bruno back under a new id", `(() => { const t = document.querySelector('#grid .tile:not(.self)'); return !!t && t.dataset.peer !== `+js(oldID)+`; })()`, 15*time.Second)
	assertPlaying(t, alice)
	assertPlaying(t, bruno)
	for _, p := range []*page{alice, bruno} {
		p.checkClean()
	}
	t.Logf("total %v", time.Since(began).Round(time.Millisecond))
}
