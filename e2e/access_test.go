package e2e

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"crisisroom/access"
	"crisisroom/app"
	"crisisroom/mainlog"
	"crisisroom/rooms"
)

// TestGuestLobbyInBrowsers is the browser proof: an operator logs
// in, creates a guest link with a lobby in the room; a second browser
// opens it and waits; the operator admits it and it sees the room; the
// operator revokes the link and the guest's page says the session has
// ended (0.38 s measured from the click, through the DELETE, the socket and
// the page; 2 s allowed on a loaded machine).
func TestGuestLobbyInBrowsers(t *testing.T) {
	began := time.Now()
	srv := startMapServer(t) // with the territory: the home page manages commune links too
	ctx := context.Background()
	const password = "une phrase de passe assez longue"
	hash, err := access.HashPasswordParams(password, access.TestParams())
	if err != nil {
		t.Fatal(err)
	}
	u := access.User{ID: rooms.NewID(), Login: "chef", Name: "Chef de salle", PasswordHash: hash, CreatedAt: time.Now()}
	if err := srv.be.Store.Access().CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := srv.be.Store.Access().SetMembership(ctx, access.Membership{UserID: u.ID, Event: app.MainRoom, Role: access.Operator}); err != nil {
		t.Fatal(err)
	}
	browser := newBrowser(t)
	dir := artifactsDir(t)
	base := "http://" + srv.proxy.addr()

	// The operator logs in at the site root and enters the room with the
	// session (no link).
	op := openPage(t, browser, "operator")
	op.do("open the home page", 15*time.Second, chromedp.Navigate(base+"/"))
	op.waitFor("the login form", `!document.getElementById('view-login').hidden`, 10*time.Second)
	screenshot(t, op, dir, "home-login.png")
	op.do("log in", 10*time.Second, chromedp.SetValue(chromedp.CSS("#login"), "chef"),
		chromedp.SetValue(chromedp.CSS("#password"), password), chromedp.Click(chromedp.CSS("#login-submit")))
	op.waitFor("the user's events", `document.querySelectorAll('#events li').length > 0 && document.getElementById('hello').textContent.includes('Chef de salle')`, 10*time.Second)
	screenshot(t, op, dir, "home-events.png")

	// The operator mints a declaration link for Lorient (shown once) and
	// revokes it, as for a link sent to the wrong address: the API refuses
	// it at once.
	op.waitFor("the commune links card", `!document.getElementById('sec-communes').hidden`, 5*time.Second)
	op.do("look Lorient up", 10*time.Second, chromedp.SetValue(chromedp.CSS("#commune-code"), "56121"),
		chromedp.Click(chromedp.CSS(`#commune-form button[type="submit"]`)))
	op.waitFor("no link yet", `!document.getElementById('commune-actions').hidden && document.getElementById('commune-msg').textContent.includes('Aucun lien')`, 10*time.Second)
	op.do("create a link", 10*time.Second, chromedp.Click(chromedp.CSS("#commune-new")))
	op.waitFor("the new link, shown once", `document.getElementById('commune-url').value.includes('/d#t=') && document.querySelectorAll('#commune-links li[data-state="active"]').length === 1`, 10*time.Second)
	communeURL := eval[string](op, `document.getElementById('commune-url').value`)
	communeTok := communeURL[strings.Index(communeURL, "#t=")+3:]
	screenshot(t, op, dir, "home-commune-links.png")
	op.revokeTwoStep("revoke the commune link", `#commune-links li[data-state="active"] .revoke`)
	op.waitFor("the link revoked", `document.querySelectorAll('#commune-links li[data-state="revoked"]').length === 1`, 10*time.Second)
	if code, _ := srv.postDeclaration(t, communeTok, "56121", "domicile", 1); code != http.StatusUnauthorized {
		t.Errorf("a declaration with the revoked commune link: %d, want 401", code)
	}
	op.do("open the room", 15*time.Second, chromedp.Navigate(base+"/r/main"))
	op.waitFor("the pre-join view", `!document.getElementById('view-prejoin').hidden && document.getElementById('name').value === 'Chef de salle'`, 15*time.Second)
	op.do("join", 10*time.Second, chromedp.Click(chromedp.CSS("#join")))
	op.waitFor("in the room", `document.getElementById('conn').dataset.status === 'open' && !document.getElementById('view-room').hidden`, 15*time.Second)

	// A guest link with a lobby (checked by default), one hour.
	op.do("open the guest links panel", 10*time.Second, chromedp.Click(chromedp.CSS("#ctl-people")))
	op.waitFor("the guests button", `!document.getElementById('guests-open').hidden`, 5*time.Second)
	op.do("guests", 5*time.Second, chromedp.Click(chromedp.CSS("#guests-open")))
	op.waitFor("the guest link form", `!document.getElementById('guest-form').hidden && document.getElementById('guest-form').offsetParent !== null`, 5*time.Second)
	if !eval[bool](op, `document.getElementById('guest-lobby').checked`) {
		t.Errorf("the lobby is not checked by default")
	}
	op.do("create a guest link", 10*time.Second, chromedp.SetValue(chromedp.CSS("#guest-label"), "ARS astreinte"),
		chromedp.Click(chromedp.CSS(`input[name="guest-duration"][value="60"]`)), chromedp.Click(chromedp.CSS("#guest-create")))
	op.waitFor("the link's URL", `document.getElementById('guest-url').value.includes('/r/main#t=')`, 10*time.Second)
	link := eval[string](op, `document.getElementById('guest-url').value`)

	// The guest opens it, gives a name and waits in the lobby: nothing of
	// the room reaches it.
	guest := openPage(t, browser, "guest (ARS)")
	guest.do("open the guest link", 15*time.Second, chromedp.Navigate(link))
	guest.waitFor("the pre-join view", `!document.getElementById('view-prejoin').hidden`, 15*time.Second)
	guest.do("ask to enter", 10*time.Second, chromedp.SetValue(chromedp.CSS("#name"), "Dr Martin – ARS"), chromedp.Click(chromedp.CSS("#join")))
	guest.waitFor("the lobby", `!document.getElementById('view-lobby').hidden && document.getElementById('view-room').hidden`, 10*time.Second)
	screenshot(t, guest, dir, "guest-lobby.png")
	op.waitFor("the waiting guest", `[...document.querySelectorAll('#waiting li')].some((li) => li.textContent.includes('Dr Martin'))`, 10*time.Second)
	if n := eval[int](guest, `document.querySelectorAll('#grid .tile:not(.self)').length`); n != 0 {
		t.Errorf("the waiting guest sees %d participants", n)
	}
	if st := eval[string](guest, `document.getElementById('conn').dataset.status + '|' + document.getElementById('conn').textContent`); st != "waiting|En salle d’attente" {
		t.Errorf("the waiting guest's header says %q, want that it waits", st)
	}

	// Admitted: the guest is in the room and sees the operator.
	op.do("admit", 5*time.Second, chromedp.Click(chromedp.CSS("#waiting li .wait-admit")))
	guest.waitFor("the room", `!document.getElementById('view-room').hidden && document.getElementById('conn').dataset.status === 'open'`, 15*time.Second)
	guest.waitFor("the operator's tile", `document.querySelectorAll('#grid .tile:not(.self)').length === 1`, 15*time.Second)
	op.waitFor("the guest's tile", `document.querySelectorAll('#grid .tile:not(.self)').length === 1`, 15*time.Second)
	screenshot(t, guest, dir, "guest-admitted.png")

	// Revoked: the guest's page ends, for good.
	op.do("the guest links tab", 5*time.Second, chromedp.Click(chromedp.CSS("#tab-guests")))
	op.waitFor("the active link", `document.querySelector('#guest-list li[data-state="active"] .gl-revoke') !== null`, 10*time.Second)
	clicked := time.Now()
	op.revokeTwoStep("revoke the guest link", `#guest-list li[data-state="active"] .gl-revoke`)
	guest.waitFor("the ended page", `!document.getElementById('view-final').hidden && document.getElementById('view-final').dataset.code === '4508'`, 5*time.Second)
	kicked := time.Since(clicked)
	t.Logf("revocation → guest's page ended: %v (click to final page, through the DELETE and the socket)", kicked.Round(time.Millisecond))
	if kicked > 2*time.Second { // the server's part is milliseconds; the rest is the browser's polling
		t.Errorf("the guest was shown out after %v", kicked)
	}
	if title := eval[string](guest, `document.getElementById('final-title').textContent`); title != "Séance terminée" {
		t.Errorf("the ended page's title is %q, want the revocation's", title)
	}
	op.waitFor("the guest gone from the operator's grid", `document.querySelectorAll('#grid .tile:not(.self)').length === 0`, 10*time.Second)
	screenshot(t, guest, dir, "guest-revoked.png")

	// The admission is in the audit log and in the main courante.
	entries, err := srv.be.Store.Access().AuditLog(ctx, 50)
	if err != nil {
		t.Fatal(err)
	}
	var audited []string
	for _, e := range entries {
		audited = append(audited, e.Action)
	}
	for _, want := range []string{"login", "link_created", "guest_admitted", "link_revoked"} {
		if !slices.Contains(audited, want) {
			t.Errorf("audit log lacks %s: %v", want, audited)
		}
	}
	actor := mainlog.Actor{ID: "e2e", Label: "e2e", P: access.LinkPrincipal("e2e", "e2e", app.MainRoom, access.Operator, "", false)}
	log, err := srv.app.Mainlog.List(ctx, actor, app.MainRoom, mainlog.Query{}, false)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range log {
		if e.Kind == mainlog.KindSystem && strings.Contains(e.Text, "Dr Martin") {
			found = true
		}
	}
	if !found {
		t.Errorf("the main courante does not record the admission")
	}
	for _, p := range []*page{op, guest} {
		p.checkClean()
	}
	t.Logf("total %v", time.Since(began).Round(time.Millisecond))
}

// revokeTwoStep presses a two-step button twice (arm, confirm), as a
// person would, each press on the button in the page at that moment: a
// list drawn again in between (its refresh after a tab opens) gives back
// the button armed (confirm.js keys), so the second press confirms.
func (p *page) revokeTwoStep(what, sel string) {
	p.t.Helper()
	click := func(sel string) bool {
		return eval[bool](p, `(() => { const b = document.querySelector(`+"`"+sel+"`"+`); if (!b) return false; b.click(); return true; })()`)
	}
	if !click(sel) {
		p.t.Fatalf("%s: no %s", what, sel)
	}
	armed := sel + `[data-armed="true"]`
	p.waitFor(what+": armed", `document.querySelector(`+"`"+armed+"`"+`) !== null`, 5*time.Second)
	if !click(armed) {
		p.t.Fatalf("%s: the armed button is gone", what)
	}
}

// TestAdminHomeInBrowser: an administrator's home lists the accounts and
// the audit log, mints an API token (shown once) from the form and revokes
// it; the API refuses the token afterwards.
func TestAdminHomeInBrowser(t *testing.T) {
	srv := startServer(t, 6, 30*time.Second)
	const password = "une autre phrase de passe assez longue"
	hash, err := access.HashPasswordParams(password, access.TestParams())
	if err != nil {
		t.Fatal(err)
	}
	u := access.User{ID: rooms.NewID(), Login: "prefete", Name: "Préfète", Admin: true, PasswordHash: hash, CreatedAt: time.Now()}
	if err := srv.be.Store.Access().CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	browser := newBrowser(t)
	dir := artifactsDir(t)
	base := "http://" + srv.proxy.addr()
	p := openPage(t, browser, "admin")
	p.do("open the home page", 15*time.Second, chromedp.Navigate(base+"/"))
	p.waitFor("the login form", `!document.getElementById('view-login').hidden`, 10*time.Second)
	p.do("log in", 10*time.Second, chromedp.SetValue(chromedp.CSS("#login"), "prefete"),
		chromedp.SetValue(chromedp.CSS("#password"), password), chromedp.Click(chromedp.CSS("#login-submit")))
	p.waitFor("the admin's lists", `!document.getElementById('sec-tokens').hidden && document.querySelectorAll('#users li').length === 1 && document.querySelectorAll('#audit li').length >= 1`, 10*time.Second)
	p.waitFor("no token yet", `document.getElementById('tokens-msg').textContent === 'Aucun jeton.'`, 10*time.Second)

	p.do("mint a token", 10*time.Second, chromedp.SetValue(chromedp.CSS("#token-user"), "prefete"),
		chromedp.SetValue(chromedp.CSS("#token-role"), "observer"), chromedp.SetValue(chromedp.CSS("#token-label"), "tableau de bord"),
		chromedp.Click(chromedp.CSS(`#token-form button[type="submit"]`)))
	p.waitFor("the token, shown once", `!document.getElementById('token-result').hidden && document.getElementById('token-value').value.length >= 43 && document.querySelectorAll('#tokens li[data-state="active"]').length === 1`, 10*time.Second)
	token := eval[string](p, `document.getElementById('token-value').value`)
	if got := getStatus(t, base+"/api/v1/session", token); got != http.StatusOK {
		t.Fatalf("the new token: %d", got)
	}
	screenshot(t, p, dir, "home-admin.png")
	p.revokeTwoStep("revoke the token", `#tokens li[data-state="active"] .revoke`)
	p.waitFor("the token revoked", `document.querySelectorAll('#tokens li[data-state="revoked"]').length === 1 && document.getElementById('tokens-msg').textContent === 'Jeton révoqué.'`, 10*time.Second)
	if got := getStatus(t, base+"/api/v1/session", token); got != http.StatusUnauthorized {
		t.Fatalf("the revoked token: %d, want 401", got)
	}
	bob := disableInBrowser(t, p, srv.be.Store.Access(), base, dir)
	roleInBrowser(t, p, srv.be.Store.Access(), bob, dir)
	p.checkClean()
}

// roleInBrowser: the administrator gives an account a role in the
// standing event from the form, then takes its access away ("none");
// the store follows each step. Screenshots at 390×844 and 1366×768.
func roleInBrowser(t *testing.T, p *page, st access.Store, userID, dir string) {
	t.Helper()
	set := func(role, msg string) {
		t.Helper()
		p.do("set the role "+role, 5*time.Second, chromedp.SetValue(chromedp.CSS("#role-user"), userID),
			chromedp.SetValue(chromedp.CSS("#role-event"), access.MainEvent), chromedp.SetValue(chromedp.CSS("#role-role"), role),
			chromedp.Click(chromedp.CSS(`#role-form button[type="submit"]`)))
		p.waitFor("the role's message", `document.getElementById('role-msg').textContent === '`+msg+`'`, 10*time.Second)
	}
	set("observer", "Rôle enregistré.")
	if ms, _ := st.Memberships(context.Background(), userID); len(ms) != 1 || ms[0].Role != access.Observer {
		t.Fatalf("memberships after observer: %+v", ms)
	}
	p.do("show the form", 5*time.Second, chromedp.ScrollIntoView(chromedp.CSS("#role-form")))
	screenshot(t, p, dir, "home-role-set-390.png")
	set("none", "Accès retiré.")
	if ms, _ := st.Memberships(context.Background(), userID); len(ms) != 0 {
		t.Fatalf("memberships after none on the standing event: %+v, want none", ms)
	}
	p.do("wide viewport", 5*time.Second, chromedp.EmulateViewport(1366, 768))
	p.do("show the form", 5*time.Second, chromedp.ScrollIntoView(chromedp.CSS("#role-form")))
	screenshot(t, p, dir, "home-role-removed-1366.png")
}

// disableInBrowser: the administrator disables another account from the
// accounts list (two steps); the API refuses that account's token at once.
// Screenshots of the list at 1366×768 and 390×844. It returns bob's ID.
func disableInBrowser(t *testing.T, p *page, st access.Store, base, dir string) string {
	t.Helper()
	ctx := context.Background()
	bob := access.User{ID: rooms.NewID(), Login: "bob", Name: "Bob Martin", PasswordHash: "x", CreatedAt: time.Now()}
	if err := st.CreateUser(ctx, bob); err != nil {
		t.Fatal(err)
	}
	if err := st.SetMembership(ctx, access.Membership{UserID: bob.ID, Event: access.MainEvent, Role: access.Operator}); err != nil {
		t.Fatal(err)
	}
	token, hash := rooms.NewSecret()
	if err := st.CreateToken(ctx, access.Token{ID: rooms.NewID(), Hash: hash, UserID: bob.ID, Role: access.Operator, Event: access.MainEvent,
		Label: "script", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if got := getStatus(t, base+"/api/v1/session", token); got != http.StatusOK {
		t.Fatalf("bob's token: %d", got)
	}
	p.do("wide viewport", 5*time.Second, chromedp.EmulateViewport(1366, 768))
	p.do("refresh the accounts", 5*time.Second, chromedp.Click(chromedp.CSS("#users-refresh")))
	row := `#users li[data-id="` + bob.ID + `"]`
	p.waitFor("bob listed, with a disable button", `document.querySelector('`+row+` .revoke') !== null && document.querySelectorAll('#users li .revoke').length === 1`, 10*time.Second)
	p.do("show the accounts", 5*time.Second, chromedp.ScrollIntoView(chromedp.CSS("#sec-users")))
	screenshot(t, p, dir, "home-users-1366.png")
	p.revokeTwoStep("disable bob", row+` .revoke`)
	p.waitFor("bob disabled", `document.querySelector('`+row+`[data-state="revoked"]') !== null && document.querySelector('`+row+` .revoke') === null && document.getElementById('users-msg').textContent.includes('désactivé')`, 10*time.Second)
	if got := getStatus(t, base+"/api/v1/session", token); got != http.StatusUnauthorized {
		t.Fatalf("the disabled account's token: %d, want 401", got)
	}
	p.do("show the accounts", 5*time.Second, chromedp.ScrollIntoView(chromedp.CSS("#sec-users")))
	screenshot(t, p, dir, "home-users-disabled-1366.png")
	p.do("phone viewport", 5*time.Second, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch))
	p.do("show the accounts", 5*time.Second, chromedp.ScrollIntoView(chromedp.CSS("#users")))
	screenshot(t, p, dir, "home-users-disabled-390.png")
	return bob.ID
}

// getStatus GETs url with token and returns the status.
func getStatus(t *testing.T, url, token string) int {
	t.Helper()
	res := bearerDo(t, http.MethodGet, url, token, nil)
	res.Body.Close()
	return res.StatusCode
}
