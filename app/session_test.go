package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"strconv"
	"strings"
	"testing"
	"time"

	"crisisroom/access"
	"crisisroom/internal/testsvc"
	"crisisroom/rooms"
)

// staff creates an account with a password.
func staff(t *testing.T, a *App, login, password string, admin bool, event string, role access.Role) access.User {
	t.Helper()
	ctx := context.Background()
	hash, err := access.HashPasswordParams(password, access.TestParams())
	if err != nil {
		t.Fatal(err)
	}
	u := access.User{ID: rooms.NewID(), Login: login, Name: strings.ToUpper(login[:1]) + login[1:], Admin: admin, PasswordHash: hash, CreatedAt: time.Now()}
	if err := a.be.Store.Access().CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if event != "" {
		if err := a.be.Store.Access().SetMembership(ctx, access.Membership{UserID: u.ID, Event: event, Role: role}); err != nil {
			t.Fatal(err)
		}
	}
	return u
}

type browser struct {
	t    *testing.T
	c    *http.Client
	base string
	csrf string
	ip   string // X-Forwarded-For, for servers that trust the test's proxy
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar}, base: base}
}

func (b *browser) call(method, path string, body any, csrf bool) (*http.Response, map[string]any) {
	b.t.Helper()
	var rd *strings.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = strings.NewReader(string(raw))
	} else {
		rd = strings.NewReader("")
	}
	req, _ := http.NewRequest(method, b.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if csrf && b.csrf != "" {
		req.Header.Set(CSRFHeader, b.csrf)
	}
	if b.ip != "" {
		req.Header.Set("X-Forwarded-For", b.ip)
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res, out
}

func (b *browser) login(login, password string) *http.Response {
	b.t.Helper()
	res, out := b.call(http.MethodPost, "/api/v1/session", map[string]string{"login": login, "password": password}, false)
	if res.StatusCode == http.StatusOK {
		b.csrf, _ = out["csrf"].(string)
	}
	return res
}

func TestSessionCookieAndCSRF(t *testing.T) {
	cfg := mapConfig(t, false)
	a, srv := startApp(t, cfg)
	staff(t, a, "alice", "correct horse battery", true, "", "")
	b := newBrowser(t, srv.URL)
	res := b.login("alice", "correct horse battery")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", res.StatusCode)
	}
	var ck *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == SessionCookie {
			ck = c
		}
	}
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.MaxAge <= 0 {
		t.Fatalf("session cookie = %+v, want HttpOnly, SameSite=Lax, Path=/, Max-Age", ck)
	}
	if ck.Secure {
		t.Errorf("cookie Secure over plain http on loopback: browsers would drop it")
	}
	if b.csrf == "" {
		t.Fatal("login gave no csrf token")
	}
	// Reads need no CSRF token; changes do.
	if res, _ := b.call(http.MethodGet, "/api/v1/tokens", nil, false); res.StatusCode != http.StatusOK {
		t.Fatalf("GET tokens with the session: %d", res.StatusCode)
	}
	body := map[string]any{"login": "bob", "name": "Bob", "password": "another long password"}
	if res, out := b.call(http.MethodPost, "/api/v1/users", body, false); res.StatusCode != http.StatusForbidden || out["error"] != "csrf" {
		t.Fatalf("POST users without CSRF: %d %v, want 403 csrf", res.StatusCode, out)
	}
	saved := b.csrf
	b.csrf = "wrong"
	if res, _ := b.call(http.MethodPost, "/api/v1/users", body, true); res.StatusCode != http.StatusForbidden {
		t.Fatalf("POST users with a wrong CSRF token: %d, want 403", res.StatusCode)
	}
	b.csrf = saved
	if res, _ := b.call(http.MethodPost, "/api/v1/users", body, true); res.StatusCode != http.StatusCreated {
		t.Fatalf("POST users with CSRF: %d, want 201", res.StatusCode)
	}
}

func TestSecureCookieBehindTLS(t *testing.T) {
	cfg := mapConfig(t, false)
	cfg.PublicURL = "https://crise.example.fr"
	a, srv := startApp(t, cfg)
	staff(t, a, "alice", "correct horse battery", false, "", "")
	res := newBrowser(t, srv.URL).login("alice", "correct horse battery")
	for _, c := range res.Cookies() {
		if c.Name == SessionCookie && !c.Secure {
			t.Fatalf("cookie not Secure although the public URL is https: %+v", c)
		}
	}
}

// TestLogoutEverywhere: logging out everywhere ends the sessions of every
// device; logging out ends one.
func TestLogoutEverywhere(t *testing.T) {
	a, srv := startApp(t, mapConfig(t, false))
	staff(t, a, "alice", "correct horse battery", false, MainRoom, access.Operator)
	phone, laptop, tablet := newBrowser(t, srv.URL), newBrowser(t, srv.URL), newBrowser(t, srv.URL)
	for _, b := range []*browser{phone, laptop, tablet} {
		if res := b.login("alice", "correct horse battery"); res.StatusCode != http.StatusOK {
			t.Fatalf("login: %d", res.StatusCode)
		}
	}
	if res, _ := tablet.call(http.MethodDelete, "/api/v1/session", nil, true); res.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	if res, _ := tablet.call(http.MethodGet, "/api/v1/session", nil, false); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after logout: %d, want 401", res.StatusCode)
	}
	if res, _ := phone.call(http.MethodGet, "/api/v1/session", nil, false); res.StatusCode != http.StatusOK {
		t.Fatalf("other device after one logout: %d, want 200", res.StatusCode)
	}
	res, out := laptop.call(http.MethodPost, "/api/v1/session/logout-all", nil, true)
	if res.StatusCode != http.StatusOK || out["ended"] != float64(2) {
		t.Fatalf("logout-all: %d %v, want 200 ended=2", res.StatusCode, out)
	}
	for _, b := range []*browser{phone, laptop} {
		if res, _ := b.call(http.MethodGet, "/api/v1/events", nil, false); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("after logout-all: %d, want 401", res.StatusCode)
		}
	}
}

// TestLoginBruteForce: 1,000 wrong passwords from one address are
// throttled; the real user still logs in from another address, at once.
func TestLoginBruteForce(t *testing.T) {
	cfg := mapConfig(t, false)
	cfg.TrustedProxies = []string{"127.0.0.1/32", "::1/128"} // the test plays the proxy that names the client
	cfg.RateIP = 0                                           // the login limiter is what is tested here
	a, srv := startApp(t, cfg)
	staff(t, a, "alice", "correct horse battery", false, MainRoom, access.Operator)
	attacker := newBrowser(t, srv.URL)
	attacker.ip = "203.0.113.66"
	var refused, wrong int
	for i := range 1000 {
		res := attacker.login("alice", fmt.Sprintf("guess-%04d-xxxxxx", i))
		switch res.StatusCode {
		case http.StatusTooManyRequests:
			refused++
			if res.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
			// The pair's budget refills one attempt a minute: never more.
			if n, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || n < 1 || n > 60 {
				t.Fatalf("Retry-After %q, want 1 to 60 s", res.Header.Get("Retry-After"))
			}
		case http.StatusUnauthorized:
			wrong++
		default:
			t.Fatalf("wrong password %d: %d", i, res.StatusCode)
		}
	}
	t.Logf("1000 wrong passwords: %d checked, %d refused by the limiter", wrong, refused)
	if wrong > 50 {
		t.Fatalf("%d passwords were checked: the limiter let too many through", wrong)
	}
	user := newBrowser(t, srv.URL)
	user.ip = "198.51.100.7"
	if res := user.login("alice", "correct horse battery"); res.StatusCode != http.StatusOK {
		t.Fatalf("the real user from another address: %d, want 200", res.StatusCode)
	}
	// The attacker's address stays throttled, even with the right password.
	if res := attacker.login("alice", "correct horse battery"); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("attacker's address right after the flood: %d, want 429", res.StatusCode)
	}
	entries, err := a.be.Store.Access().AuditLog(context.Background(), 5)
	if err != nil || len(entries) == 0 {
		t.Fatalf("audit log: %v %v", entries, err)
	}
}

// TestExpiredAndRevokedCredentials: 401 for each.
func TestExpiredAndRevokedCredentials(t *testing.T) {
	a, srv := startApp(t, mapConfig(t, true))
	ctx := context.Background()
	past := time.Now().Add(-time.Minute)
	mk := func(expires time.Time, revoke bool) string {
		plain, hash := rooms.NewSecret()
		l := rooms.Link{ID: rooms.NewID(), Hash: hash, Kind: rooms.KindRoom, Scope: MainRoom, Role: rooms.RoleHost,
			CreatedAt: past.Add(-time.Hour), ExpiresAt: expires}
		if err := a.be.Store.CreateLink(ctx, l); err != nil {
			t.Fatal(err)
		}
		if revoke {
			if err := a.be.Store.RevokeLink(ctx, l.ID, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		return plain
	}
	u := staff(t, a, "bot", "correct horse battery", false, MainRoom, access.Operator)
	tok := func(expires time.Time, revoke bool) string {
		plain, hash := rooms.NewSecret()
		tk := access.Token{ID: rooms.NewID(), Hash: hash, UserID: u.ID, Role: access.Operator, Event: MainRoom, CreatedAt: past.Add(-time.Hour), ExpiresAt: expires}
		if err := a.be.Store.Access().CreateToken(ctx, tk); err != nil {
			t.Fatal(err)
		}
		if revoke {
			if err := a.be.Store.Access().RevokeToken(ctx, tk.ID, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		return plain
	}
	future := time.Now().Add(time.Hour)
	for name, c := range map[string]string{
		"expired link": mk(past, false), "revoked link": mk(future, true),
		"expired token": tok(past, false), "revoked token": tok(future, true),
	} {
		if got := do(t, http.MethodGet, srv.URL+"/api/v1/report", c); got != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, got)
		}
	}
	if got := do(t, http.MethodGet, srv.URL+"/api/v1/report", tok(future, false)); got != http.StatusOK {
		t.Errorf("live operator token: %d, want 200", got)
	}
}

// TestAPIRateLimits: per address and per credential, with Retry-After.
func TestAPIRateLimits(t *testing.T) {
	cfg := mapConfig(t, true)
	cfg.RateIP, cfg.RateToken = 0, 5
	a, srv := startApp(t, cfg)
	links, err := a.NewCommuneLinks(context.Background(), []string{"56001", "56002"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if got := do(t, http.MethodGet, srv.URL+"/api/v1/me", links[0].Token); got != http.StatusOK {
			t.Fatalf("request %d: %d", i, got)
		}
	}
	if got := do(t, http.MethodGet, srv.URL+"/api/v1/me", links[0].Token); got != http.StatusTooManyRequests {
		t.Fatalf("6th request in a minute with one token: %d, want 429", got)
	}
	if got := do(t, http.MethodGet, srv.URL+"/api/v1/me", links[1].Token); got != http.StatusOK {
		t.Fatalf("another token from the same address: %d, want 200", got)
	}

	cfg = mapConfig(t, true)
	cfg.RateIP, cfg.RateToken = 3, 0
	_, srv = startApp(t, cfg)
	for range 3 {
		do(t, http.MethodGet, srv.URL+"/api/v1/me", "")
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/me", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Fatalf("4th request in a minute from one address: %d (Retry-After %q), want 429 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
	}
}

// TestLoginLimitsSharedInCluster: a brute force spread over two
// instances (a load balancer's round robin) gets one budget, not one per
// instance: the limiter's buckets are in Redis.
func TestLoginLimitsSharedInCluster(t *testing.T) {
	rd, pg := testsvc.StartRedis(t), testsvc.StartPostgres(t)
	cfg := DefaultConfig()
	cfg.DatabaseURL, cfg.RedisURL = pg.Schema(t), rd.URL
	cfg.TrustedProxies = []string{"127.0.0.1/32", "::1/128"} // the test plays the proxy that names the client
	cfg.RateIP = 0
	n1, n2 := clStart(t, cfg), clStart(t, cfg)
	staff(t, n1.a, "alice", "correct horse battery", false, MainRoom, access.Operator)
	var checked int
	for i := range 100 {
		n := n1
		if i%2 == 1 {
			n = n2
		}
		attacker := newBrowser(t, n.srv.URL)
		attacker.ip = "203.0.113.66"
		switch res := attacker.login("alice", fmt.Sprintf("guess-%04d-xxxxxx", i)); res.StatusCode {
		case http.StatusUnauthorized:
			checked++
		case http.StatusTooManyRequests:
		default:
			t.Fatalf("wrong password %d on %s: %d", i, n.name, res.StatusCode)
		}
	}
	if want := int(access.DefaultLoginLimits().PerPair.Burst); checked != want {
		t.Fatalf("%d of 100 wrong passwords through two instances were checked, want one budget of %d", checked, want)
	}
	user := newBrowser(t, n2.srv.URL)
	user.ip = "198.51.100.7"
	if res := user.login("alice", "correct horse battery"); res.StatusCode != http.StatusOK {
		t.Fatalf("the real user from another address: %d, want 200", res.StatusCode)
	}
}

// TestLoginUpgradesTheHash: a password hashed with other parameters than
// the server's is hashed again at its next good login, so that raising
// the cost reaches every account.
func TestLoginUpgradesTheHash(t *testing.T) {
	a, srv := startApp(t, mapConfig(t, false))
	u := staff(t, a, "alice", "correct horse battery", false, MainRoom, access.Operator) // cheap test parameters
	if !a.hasher.NeedsRehash(u.PasswordHash) {
		t.Fatal("the test's hash already has the server's parameters")
	}
	if res := newBrowser(t, srv.URL).login("alice", "correct horse battery"); res.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", res.StatusCode)
	}
	got, err := a.be.Store.Access().UserByID(context.Background(), u.ID)
	if err != nil || a.hasher.NeedsRehash(got.PasswordHash) {
		t.Fatalf("hash after the login %q, %v: want the server's parameters", got.PasswordHash, err)
	}
	if res := newBrowser(t, srv.URL).login("alice", "correct horse battery"); res.StatusCode != http.StatusOK {
		t.Fatalf("login with the upgraded hash: %d", res.StatusCode)
	}
}

// TestLoginCSRF: another site's page cannot log the victim into the
// attacker's account. A form post (text/plain, no preflight) and a JSON
// post carrying another Origin or Sec-Fetch-Site are refused and set no
// cookie; the server's own page (same Origin), the public URL's, and a
// client that is no browser (neither header) log in.
func TestLoginCSRF(t *testing.T) {
	cfg := mapConfig(t, false)
	cfg.PublicURL = "https://crise.example.fr"
	a, srv := startApp(t, cfg)
	staff(t, a, "mallory", "attacker's own password", false, "", "")
	body := `{"login":"mallory","password":"attacker's own password"}`
	for _, c := range []struct {
		name, ctype, origin, fetchSite string
		want                           int
	}{
		{"form post from another site", "text/plain", "https://evil.example", "cross-site", http.StatusUnsupportedMediaType},
		{"text/plain without origin", "text/plain", "", "", http.StatusUnsupportedMediaType},
		{"urlencoded form", "application/x-www-form-urlencoded", "", "", http.StatusUnsupportedMediaType},
		{"JSON from another origin", "application/json", "https://evil.example", "", http.StatusForbidden},
		{"JSON, null origin", "application/json", "null", "cross-site", http.StatusForbidden},
		{"JSON, cross-site fetch without Origin", "application/json", "", "cross-site", http.StatusForbidden},
		{"JSON, a sibling site", "application/json", "", "same-site", http.StatusForbidden},
		{"our own page", "application/json", srv.URL, "same-origin", http.StatusOK},
		{"the public URL's page", "application/json; charset=utf-8", "https://crise.example.fr", "same-origin", http.StatusOK},
		{"a script, no browser headers", "application/json", "", "", http.StatusOK},
	} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/session", strings.NewReader(body))
		req.Header.Set("Content-Type", c.ctype)
		if c.origin != "" {
			req.Header.Set("Origin", c.origin)
		}
		if c.fetchSite != "" {
			req.Header.Set("Sec-Fetch-Site", c.fetchSite)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.want {
			t.Errorf("%s: %d, want %d", c.name, res.StatusCode, c.want)
		}
		if got := res.Header.Get("Set-Cookie"); c.want != http.StatusOK && got != "" {
			t.Errorf("%s: refused yet set a cookie: %s", c.name, got)
		}
	}
}
