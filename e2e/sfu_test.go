package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"crisisroom/app"
	"crisisroom/rooms"
)

// sfuPageScript runs in every page before its own scripts: the fake
// camera is asked for small, slow video (seven pages share two cores),
// every RTCPeerConnection is kept in a list (to count what is open), and
// every remote tile's video is sampled every 150 ms to record its longest
// stall (a currentTime that does not move, or no new decoded frame).
const sfuPageScript = `(() => {
	const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
	navigator.mediaDevices.getUserMedia = (c) => gum(c && c.video ? { ...c, video: { width: 320, height: 180, frameRate: 10 } } : c);
	const PC = window.RTCPeerConnection;
	window.__pcs = [];
	window.RTCPeerConnection = class extends PC {
		constructor(...a) { super(...a); window.__pcs.push(this); }
	};
	window.__stall = {};  // longest time a tile's currentTime stood still, by peer (ms)
	window.__fstall = {}; // longest time without a new decoded frame, by peer (ms)
	window.__seen = {};
	window.__fwhere = {}; // what the tile showed at its longest frame gap (tests' diagnosis)
	window.__resetStalls = () => { window.__stall = {}; window.__fstall = {}; window.__fwhere = {}; };
	setInterval(() => {
		const now = performance.now();
		for (const tile of document.querySelectorAll('#grid .tile:not(.self)')) {
			const v = tile.querySelector('video:not(.next)');
			const id = tile.dataset.peer;
			if (!v || v.currentTime <= 0 || v.videoWidth === 0) continue; // not playing yet
			const q = v.getVideoPlaybackQuality().totalVideoFrames;
			const s = window.__seen[id];
			if (!s || s.v !== v) { window.__seen[id] = { v, t: v.currentTime, q, tAt: now, qAt: now }; continue; }
			if (s.t !== v.currentTime) { s.t = v.currentTime; s.tAt = now; }
			if (s.q !== q) { s.q = q; s.qAt = now; }
			window.__stall[id] = Math.max(window.__stall[id] || 0, Math.round(now - s.tAt));
			const gap = Math.round(now - s.qAt);
			if (gap > (window.__fstall[id] || 0)) {
				window.__fstall[id] = gap;
				window.__fwhere[id] = (tile.dataset.via || 'mesh') + (tile.querySelector('video.next') ? '+next' : '');
			}
		}
	}, 150);
})();`

// sfuPage opens a tab with sfuPageScript installed.
func sfuPage(t *testing.T, browser context.Context, name string) *page {
	t.Helper()
	p := openPage(t, browser, name)
	inject := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: sfuPageScript})
		return err
	})
	p.do("install the probes", 5*time.Second, inject)
	return p
}

// allPlaying: every other member's tile plays video (a size, a moving clock).
func allPlaying(n int) string {
	return fmt.Sprintf(`(() => {
		const tiles = [...document.querySelectorAll('#grid .tile:not(.self)')];
		return tiles.length === %d && tiles.every((t) => { const v = t.querySelector('video:not(.next)'); return v && v.videoWidth > 0 && v.currentTime > 0; });
	})()`, n)
}

// viaSFU: every remote tile shows its SFU stream and the page keeps only
// its two SFU connections open (the mesh links are closed).
func viaSFU(n int) string {
	return fmt.Sprintf(`(() => {
		const tiles = [...document.querySelectorAll('#grid .tile:not(.self)')];
		const open = window.__pcs.filter((pc) => pc.connectionState !== 'closed').length;
		return tiles.length === %d && tiles.every((t) => t.dataset.via === 'sfu') && open === 2;
	})()`, n)
}

type tileProbe struct {
	Peer            string
	Width           int
	T0, T1          float64
	Frames0, Frame1 int
}

// probeTiles measures every remote tile over 1 s.
func probeTiles(p *page) []tileProbe {
	p.t.Helper()
	return eval[[]tileProbe](p, `(async () => {
		const vids = () => [...document.querySelectorAll('#grid .tile:not(.self)')].map((t) => [t.dataset.peer, t.querySelector('video:not(.next)')]);
		const a = vids().map(([id, v]) => ({ Peer: id, T0: v.currentTime, Frames0: v.getVideoPlaybackQuality().totalVideoFrames }));
		await new Promise((r) => setTimeout(r, 1000));
		const b = vids();
		return a.map((x, i) => ({ ...x, Width: b[i][1].videoWidth, T1: b[i][1].currentTime, Frame1: b[i][1].getVideoPlaybackQuality().totalVideoFrames }));
	})()`)
}

// TestRoomMovesToSFU: in a room in "auto" mode with a mesh of at most
// four, six desktop pages and a phone join one by one; from the fifth the
// room goes through the server's SFU without any reload, every page plays
// every other's video, and the four that were in the mesh show no tile
// frozen for more than a second across the switch. When five leave, the
// two left go back to the mesh, again without a frozen tile.
func TestRoomMovesToSFU(t *testing.T) {
	began := time.Now()
	browser := newBrowser(t)
	srv := startServer(t, 8, 30*time.Second, func(c *app.Config) {
		c.RoomMode = "auto"
		c.MeshMax = 4
		c.SFUUDP = "127.0.0.1:0"
		c.SFUTCP = ""
	})
	dir := artifactsDir(t)
	const total = 7
	pages := make([]*page, total)
	for i := range pages {
		name := fmt.Sprintf("p%d (desktop)", i+1)
		if i == total-1 {
			name = "p7 (phone)"
		}
		pages[i] = sfuPage(t, browser, name)
		if i == total-1 {
			pages[i].do("phone viewport", 5*time.Second, chromedp.EmulateViewport(390, 844,
				chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait))
		} else {
			pages[i].do("desktop viewport", 5*time.Second, chromedp.EmulateViewport(1366, 768))
		}
	}
	t.Logf("browser ready after %v", time.Since(began).Round(time.Millisecond))

	// The mesh: four pages, each playing the others.
	for i := 0; i < 4; i++ {
		role := rooms.RoleParticipant
		if i == 0 {
			role = rooms.RoleHost // p1 chooses the mode at the end
		}
		join(pages[i], srv.linkAs(t, fmt.Sprintf("p%d", i+1), role), fmt.Sprintf("Membre %d", i+1))
		pages[i].waitFor("joined", `document.getElementById('conn').dataset.status === 'open'`, 10*time.Second)
	}
	for i := 0; i < 4; i++ {
		pages[i].waitFor("the mesh's three videos", allPlaying(3), 30*time.Second)
		if m := eval[string](pages[i], `document.getElementById('mode-badge').dataset.mode`); m != "mesh" {
			t.Fatalf("%s: mode badge %q before the fifth, want mesh", pages[i].name, m)
		}
	}
	t.Logf("mesh of four playing after %v", time.Since(began).Round(time.Millisecond))
	screenshot(t, pages[0], dir, "sfu-mesh-desktop.png")

	// The fifth turns the room to the SFU.
	for i := 0; i < 4; i++ {
		eval[bool](pages[i], `(window.__resetStalls(), true)`)
	}
	prejoin(pages[4], srv.link(t, "p5"))
	switchAt := time.Now()
	enter(pages[4], "Membre 5")
	pages[0].waitFor("the SFU badge", `document.getElementById('mode-badge').dataset.mode === 'sfu'`, 15*time.Second)
	toMode := time.Since(switchAt)
	for i := 0; i < 5; i++ {
		pages[i].waitFor("every tile through the SFU", viaSFU(4), 40*time.Second)
	}
	flipped := time.Since(switchAt)
	t.Logf("the fifth joined: mode sfu after %v, every tile of the five through the SFU after %v",
		toMode.Round(time.Millisecond), flipped.Round(time.Millisecond))
	// Stalls across the switch, for the four that were in the mesh.
	for i := 0; i < 4; i++ {
		st := eval[map[string]int](pages[i], `window.__stall`)
		fst := eval[map[string]int](pages[i], `window.__fstall`)
		longest, frames := 0, 0
		for _, ms := range st {
			longest = max(longest, ms)
		}
		for _, ms := range fst {
			frames = max(frames, ms)
		}
		t.Logf("%s: across the switch, longest currentTime stall %d ms, longest gap between decoded frames %d ms (per tile: %v / %v, during %v)",
			pages[i].name, longest, frames, st, fst, eval[map[string]string](pages[i], `window.__fwhere`))
		if longest > 1000 || frames > 1000 {
			t.Errorf("%s: a tile froze across the switch (%d ms clock, %d ms frames; at most 1000)", pages[i].name, longest, frames)
		}
	}

	// The sixth and the phone join an SFU room: no mesh at all.
	join(pages[5], srv.link(t, "p6"), "Membre 6")
	join(pages[6], srv.link(t, "p7"), "Membre 7 (téléphone)")
	for i := 0; i < total; i++ {
		pages[i].waitFor("every other member through the SFU", viaSFU(total-1)+` && `+allPlaying(total-1), 40*time.Second)
	}
	for _, p := range pages[4:] {
		if n := eval[int](p, `document.querySelectorAll('#grid .tile[data-negotiations]').length`); n != 0 {
			t.Errorf("%s: joined an SFU room yet negotiated %d mesh links", p.name, n)
		}
		if n := eval[int](p, `window.__pcs.length`); n != 2 {
			t.Errorf("%s: %d peer connections made, want 2 (up and down)", p.name, n)
		}
	}
	for _, p := range pages {
		for _, v := range probeTiles(p) {
			if v.Width <= 0 || v.T1 <= v.T0 || v.Frame1 <= v.Frames0 {
				t.Errorf("%s: %s's video not playing: %+v", p.name, v.Peer, v)
			}
		}
	}
	t.Logf("all seven play every other's video after %v", time.Since(began).Round(time.Millisecond))
	// Seven tiles fit the desktop page side by side, none over another.
	l := eval[layout](pages[0], measureLayout)
	for i, a := range l.Tiles {
		if a.Bottom > l.ControlsTop+1 || a.Right > l.VW {
			t.Errorf("desktop: tile %d out of the grid: %+v (controls at %.0f)", i, a, l.ControlsTop)
		}
		for _, b := range l.Tiles[i+1:] {
			if a.Left < b.Right-1 && b.Left < a.Right-1 && a.Top < b.Bottom-1 && b.Top < a.Bottom-1 {
				t.Errorf("desktop: tiles overlap: %+v and %+v", a, b)
			}
		}
	}
	screenshot(t, pages[0], dir, "sfu-desktop-1366x768.png")
	screenshot(t, pages[6], dir, "sfu-phone-390x844.png")

	// The signaling socket drops and comes back within the resume window:
	// the SFU connections (media goes through TURN, not this proxy) stay,
	// and no page opens a new one.
	outage := time.Now()
	srv.proxy.setDown(true)
	srv.proxy.cut()
	time.Sleep(500 * time.Millisecond)
	srv.proxy.setDown(false)
	for _, p := range pages {
		p.waitFor("the resumed session, the SFU kept", `document.getElementById('conn').dataset.resumes === '1' && document.getElementById('conn').dataset.status === 'open'
			&& window.__pcs.filter((pc) => pc.connectionState !== 'closed').length === 2 && document.getElementById('mode-badge').dataset.mode === 'sfu'`, 20*time.Second)
	}
	for _, p := range pages {
		p.waitFor("every video still playing", allPlaying(total-1), 10*time.Second)
		if n := eval[int](p, `window.__pcs.length`); p != pages[0] && n > 6 {
			t.Errorf("%s: %d peer connections made by now", p.name, n)
		}
	}
	t.Logf("signaling outage in SFU mode healed in %v, SFU connections kept", time.Since(outage).Round(time.Millisecond))

	// Five leave; at two the room goes back to the mesh (10 s later):
	// the lower id offers, the tiles swap back, the SFU connections close.
	for _, p := range pages[2:] {
		p.do("leave", 5*time.Second, chromedp.Click(chromedp.CSS("#ctl-leave")))
	}
	for _, p := range pages[:2] {
		p.waitFor("the others gone", `document.querySelectorAll('#grid .tile:not(.self)').length === 1`, 10*time.Second)
		eval[bool](p, `(window.__resetStalls(), true)`)
	}
	backAt := time.Now()
	for _, p := range pages[:2] {
		p.waitFor("the P2P badge", `document.getElementById('mode-badge').dataset.mode === 'mesh'`, 25*time.Second)
	}
	toMesh := time.Since(backAt)
	for _, p := range pages[:2] {
		p.waitFor("the tile back on the mesh, the SFU closed", `(() => {
			const t = document.querySelector('#grid .tile:not(.self)');
			return t.dataset.via === 'mesh' && window.__pcs.filter((pc) => pc.connectionState !== 'closed').length === 1;
		})()`, 15*time.Second)
	}
	t.Logf("two left: mode mesh after %v, the tiles on the mesh and the SFU closed after %v",
		toMesh.Round(time.Millisecond), time.Since(backAt).Round(time.Millisecond))
	for _, p := range pages[:2] {
		st := eval[map[string]int](p, `window.__stall`)
		fst := eval[map[string]int](p, `window.__fstall`)
		t.Logf("%s: back to the mesh, stalls (clock / frames): %v / %v", p.name, st, fst)
		for id, ms := range fst {
			if ms > 1000 || st[id] > 1000 {
				t.Errorf("%s: %s's tile froze %d ms going back to the mesh", p.name, id, max(ms, st[id]))
			}
		}
		assertPlaying(t, p)
	}
	screenshot(t, pages[0], dir, "sfu-back-to-mesh-desktop.png")
	hostChoosesMode(t, pages[0], pages[1], dir)
	for _, p := range pages[:2] {
		p.checkClean()
	}
}

// hostChoosesMode: the host of a two-member mesh moves the room to the SFU
// from the people panel, then gives it back to the automatic rule (a mesh
// at two); a participant has no such control.
func hostChoosesMode(t *testing.T, host, member *page, dir string) {
	t.Helper()
	if eval[bool](member, `!document.getElementById('mode-choice-box').hidden`) {
		t.Error("a participant sees the host's mode choice")
	}
	host.do("open the people panel", 5*time.Second, chromedp.Click(chromedp.CSS("#ctl-people")))
	host.waitFor("the mode choice", `!document.getElementById('mode-choice-box').hidden`, 5*time.Second)
	for _, c := range []struct{ choice, mode string }{{"sfu", "sfu"}, {"auto", "mesh"}} {
		host.do("choose "+c.choice, 5*time.Second, chromedp.SetValue(chromedp.CSS("#mode-choice"), c.choice))
		eval[bool](host, `document.getElementById('mode-choice').dispatchEvent(new Event('change'))`)
		for _, p := range []*page{host, member} {
			p.waitFor("the "+c.mode+" badge", `document.getElementById('mode-badge').dataset.mode === '`+c.mode+`'`, 10*time.Second)
			p.waitFor("the other's tile on the "+c.mode, `document.querySelector('#grid .tile:not(.self)').dataset.via === '`+c.mode+`'`, 20*time.Second)
		}
		if c.mode == "sfu" {
			screenshot(t, host, dir, "sfu-host-mode-choice-1366x768.png")
		}
	}
	host.do("phone viewport", 5*time.Second, chromedp.EmulateViewport(390, 844,
		chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait))
	host.do("show the choice", 5*time.Second, chromedp.ScrollIntoView(chromedp.CSS("#mode-choice-box")))
	screenshot(t, host, dir, "sfu-host-mode-choice-390x844.png")
	assertPlaying(t, host)
}
