package app

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"crisisroom/access"
	"crisisroom/rooms"
)

// The gate's proof: every request is answered as access.Decide says for
// the route the router actually ran. The route is read from the router
// itself (the chi context the request was served with), not guessed from
// the path, so the test sees what an attacker's request really reached.

// walkMethods are the methods every route is tried with.
var walkMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions}

// gateProbe serves requests in process and says which route each reached.
type gateProbe struct {
	t     testing.TB
	a     *App
	creds map[byte]string // A O P G D V as in credentials, X a host link of another event
}

func newGateProbe(t testing.TB) *gateProbe {
	cfg := mapConfig(t, true)
	cfg.RateIP, cfg.RateToken = 0, 0 // thousands of calls from one address
	a, _ := startApp(t, cfg)
	return &gateProbe{t: t, a: a, creds: gateCredentials(t, a)}
}

// gateCredentials adds to credentials a host link of another event, whose
// role must not reach the main event.
func gateCredentials(t testing.TB, a *App) map[byte]string {
	ctx := context.Background()
	creds := credentials(t, a)
	if err := a.Mainlog.EnsureRoot(ctx, "other", "Autre événement"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.be.Store.CreateRoom(ctx, rooms.RoomInfo{Name: "other", Title: "Autre", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	plain, _, err := rooms.CreateLink(ctx, a.be.Store, "other", rooms.RoleHost, "other host", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	creds['X'] = plain
	return creds
}

// gateOutcome is one answer and the route it came from.
type gateOutcome struct {
	status  int
	body    []byte
	method  string // as routed: HEAD served by GET is GET
	pattern string // "" when no route matched (404, 405)
	api     bool   // the API router answered (else the pages' router)
	params  map[string]string
}

// serve sends one request with the credential (a bearer token, or none).
func (g *gateProbe) serve(method, target, token string) gateOutcome {
	req := httptest.NewRequest(method, "http://crisis.test"+target, strings.NewReader("{}"))
	return g.serveReq(req, token)
}

func (g *gateProbe) serveReq(req *http.Request, token string) gateOutcome {
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	// A route context of our own: the router fills it in as it routes,
	// and it outlives the request for us to read.
	root := g.a.Handler().(chi.Routes)
	rctx := chi.NewRouteContext()
	rctx.Routes = root
	req = req.WithContext(context.WithValue(req.Context(), chi.RouteCtxKey, rctx))
	rec := httptest.NewRecorder()
	g.a.Handler().ServeHTTP(rec, req)
	o := gateOutcome{status: rec.Code, body: rec.Body.Bytes(), method: rctx.RouteMethod, params: map[string]string{}}
	if o.method == "" {
		o.method = req.Method
	}
	p := rctx.RoutePattern()
	o.api = strings.HasPrefix(p, "/api/v1/")
	if o.api && !strings.HasSuffix(p, "*") {
		o.pattern = p
	}
	for i, k := range rctx.URLParams.Keys {
		o.params[k] = rctx.URLParams.Values[i]
	}
	return o
}

// principal is what the token stands for now (a logout-all or a
// revocation during the walk changes it: asked before each request).
func (g *gateProbe) principal(token string) *access.Principal {
	if token == "" {
		return nil
	}
	p, err := g.a.bearerPrincipal(context.Background(), token)
	if err != nil && !errors.Is(err, access.ErrUnauthenticated) {
		g.t.Fatal(err)
	}
	return p
}

// check says what is wrong with an gateOutcome for principal p, "" if nothing.
func (g *gateProbe) check(p *access.Principal, o gateOutcome) string {
	if o.status >= 500 {
		return "server error " + string(o.body)
	}
	var e struct{ Error string }
	_ = json.Unmarshal(o.body, &e)
	if !o.api {
		return "" // the pages and their files: public, not the gate's
	}
	if o.pattern == "" { // no route: the router's own 404 or 405, to anyone
		if o.status != http.StatusNotFound && o.status != http.StatusMethodNotAllowed {
			return "no route matched, yet answered " + http.StatusText(o.status) + " " + string(o.body)
		}
		if e.Error != "not_found" && e.Error != "method_not_allowed" {
			return "no API route matched, yet answered " + string(o.body)
		}
		return ""
	}
	rule, ok := access.RouteRule(o.method, o.pattern)
	if !ok {
		return "matched " + o.method + " " + o.pattern + ", which has no rule"
	}
	var chain []string
	switch rule.Scope {
	case access.ScopeEvent:
		chain = g.a.EventChain(o.params["slug"])
	case access.ScopeTerritory:
		chain = []string{access.MainEvent}
	}
	err := access.Decide(p, rule.Action, chain)
	switch {
	case err == nil && (o.status == http.StatusUnauthorized || o.status == http.StatusForbidden):
		return "allowed by Decide on " + o.pattern + ", refused " + string(o.body)
	case errors.Is(err, access.ErrUnauthenticated) && (o.status != http.StatusUnauthorized || e.Error != "unauthenticated"):
		return "nobody on " + o.pattern + ": want 401 unauthenticated, got " + http.StatusText(o.status) + " " + string(o.body)
	case err != nil && !errors.Is(err, access.ErrUnauthenticated) && (o.status != http.StatusForbidden || e.Error != "forbidden"):
		return "denied by Decide on " + o.pattern + ": want 403 forbidden, got " + http.StatusText(o.status) + " " + string(o.body)
	}
	return ""
}

// pathVariants are the forms an attacker tries for one path: the path
// itself, a trailing slash, doubled slashes, encoded slashes, dot
// segments, another case, and an encoded letter.
func pathVariants(p string) []string {
	rest := strings.TrimPrefix(p, "/api/v1/")
	out := []string{p, p + "/", "/api/v1//" + rest, "/" + p, "/api/v1/./" + rest,
		"/api/v1/x/../" + rest, "/API/v1/" + rest, "/api/v1/" + strings.ToUpper(rest[:1]) + rest[1:]}
	if i := strings.LastIndexByte(p, '/'); i > len("/api/v1") {
		out = append(out, p[:i]+"%2F"+p[i+1:], p[:i]+"//"+p[i+1:])
	}
	if i := strings.IndexByte(rest, '/'); i > 0 {
		out = append(out, "/api/v1/"+rest[:i]+"%2F"+rest[i+1:])
	}
	if strings.Contains(p, "/main") {
		out = append(out, strings.Replace(p, "/main", "/%6Dain", 1), strings.Replace(p, "/main", "/other%2F..%2Fmain", 1),
			strings.Replace(p, "/main", "/other/../main", 1), strings.Replace(p, "/main", "/other", 1))
	}
	return out
}

// walkPaths are the concrete paths of every route the router has.
func walkPaths(t *testing.T, a *App) []string {
	var out []string
	fill := strings.NewReplacer("{slug}", MainRoom, "{id}", "nope", "{code}", "56001")
	for _, rt := range registeredRoutes(t, a) {
		_, pattern, _ := strings.Cut(rt, " ")
		out = append(out, fill.Replace(pattern))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestGateWalk: every route of the router × every method × every kind of
// credential × every path variant is answered as access.Decide says for
// the route that matched; never a body or a length the caller may not see
// (HEAD included: the recorder keeps what the handler wrote).
func TestGateWalk(t *testing.T) {
	g := newGateProbe(t)
	forged, _ := rooms.NewSecret()
	tokens := map[string]string{"none": "", "forged": forged}
	for _, c := range []byte("AOPGDVX") {
		tokens[string(c)] = g.creds[c]
	}
	var targets []string
	for _, p := range walkPaths(t, g.a) {
		targets = append(targets, pathVariants(p)...)
	}
	slices.Sort(targets)
	targets = slices.Compact(targets)
	n, allowed, matched := 0, 0, 0
	start := time.Now()
	for _, target := range targets {
		for _, m := range walkMethods {
			for name, tok := range tokens {
				p := g.principal(tok)
				o := g.serve(m, target, tok)
				n++
				if o.pattern != "" {
					matched++
				}
				if o.status < 300 {
					allowed++
				}
				if msg := g.check(p, o); msg != "" {
					t.Errorf("%s %s as %s: %s", m, target, name, msg)
				}
			}
		}
	}
	t.Logf("%d requests (%d paths × %d methods × %d credentials) in %v: %d reached a route, %d answered 2xx",
		n, len(targets), len(walkMethods), len(tokens), time.Since(start).Round(time.Millisecond), matched, allowed)
	if matched == 0 || allowed == 0 {
		t.Fatal("the walk reached no route or was never allowed: it proves nothing")
	}
}

// TestGateHeadIsDecidedAsGet: HEAD on an admin-only route is the GET's
// decision, not a way to learn the body's length (the review's finding).
func TestGateHeadIsDecidedAsGet(t *testing.T) {
	g := newGateProbe(t)
	for _, c := range []byte("GDX") {
		o := g.serve(http.MethodHead, "/api/v1/users", g.creds[c])
		if o.status != http.StatusForbidden || o.method != http.MethodGet || o.pattern != "/api/v1/users" {
			t.Errorf("HEAD /api/v1/users as %c: %d via %s %q, want 403 via GET /api/v1/users", c, o.status, o.method, o.pattern)
		}
	}
	if o := g.serve(http.MethodHead, "/api/v1/users", g.creds['A']); o.status != http.StatusOK {
		t.Errorf("HEAD /api/v1/users as admin: %d", o.status)
	}
}

// TestGateRefusesRouteWithoutRule: a route registered behind authorize
// without a rule is refused at its call, and checkRules stops the server
// from starting with it.
func TestGateRefusesRouteWithoutRule(t *testing.T) {
	g := newGateProbe(t)
	gt := g.a.newGate()
	api := chi.NewRouter()
	api.Use(gt.identify)
	api.With(gt.authorize).Get("/forgotten", func(w http.ResponseWriter, _ *http.Request) {
		t.Error("handler of a route without a rule ran")
	})
	root := chi.NewRouter()
	root.Mount("/api/v1", api)
	req := httptest.NewRequest(http.MethodGet, "/api/v1/forgotten", nil)
	req.Header.Set("Authorization", "Bearer "+g.creds['A'])
	rec := httptest.NewRecorder()
	root.ServeHTTP(rec, req)
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("route without a rule: %d %s, want 500", rec.Code, rec.Body)
	}
	if err := checkRules(api, "/api/v1"); err == nil || !strings.Contains(err.Error(), "GET /api/v1/forgotten") {
		t.Errorf("checkRules: %v, want it to name GET /api/v1/forgotten", err)
	}
	if err := checkRules(g.a.Handler().(chi.Routes), ""); err == nil {
		t.Error("checkRules passed the whole server's pages, which have no API rule: it checks nothing")
	}
}

// TestGateMethodNotAllowed: a method a route does not serve is 405 with
// its Allow header, before any handler, for anyone.
func TestGateMethodNotAllowed(t *testing.T) {
	g := newGateProbe(t)
	for _, tok := range []string{"", g.creds['A']} {
		req := httptest.NewRequest(http.MethodPatch, "/api/v1/users", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		rec := httptest.NewRecorder()
		g.a.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD, POST" {
			t.Errorf("PATCH /api/v1/users: %d Allow %q, want 405 Allow \"GET, HEAD, POST\"", rec.Code, rec.Header().Get("Allow"))
		}
	}
}

// validMethod: an HTTP token, as a server would accept in a request line.
func validMethod(m string) bool {
	if m == "" || len(m) > 16 {
		return false
	}
	for _, c := range m {
		if c > 127 || !strings.ContainsRune("!#$%&'*+-.^_`|~", c) && !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// FuzzGate: random methods and paths, with a few credentials. Never a
// server error, never an answer the matrix forbids.
func FuzzGate(f *testing.F) {
	g := newGateProbe(f)
	f.Add("GET", "/api/v1/users", byte('G'))
	f.Add("HEAD", "/api/v1/audit", byte('D'))
	f.Add("GET", "/api/v1/events/main%2F..%2Fother/log", byte('X'))
	f.Add("DELETE", "/api/v1/events/main/log/x", byte('V'))
	f.Add("POST", "/api/v1//tokens", byte(0))
	f.Add("GET", "/api/v1/events/other/board", byte('P'))
	f.Fuzz(func(t *testing.T, method, target string, who byte) {
		g := &gateProbe{t: t, a: g.a, creds: g.creds}
		if !validMethod(method) || !strings.HasPrefix(target, "/") {
			t.Skip()
		}
		u, err := url.ParseRequestURI(target)
		if err != nil {
			t.Skip()
		}
		req := &http.Request{Method: method, URL: u, RequestURI: target, Host: "crisis.test",
			Header: http.Header{}, Body: http.NoBody, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			RemoteAddr: "192.0.2.1:1234"}
		var tok string // who past the letters: no credential
		if i := int(who % 8); i < 7 {
			tok = g.creds["AOPGDVX"[i]]
		}
		if msg := g.check(g.principal(tok), g.serveReq(req, tok)); msg != "" {
			t.Errorf("%s %q with credential %d: %s", method, target, who%8, msg)
		}
	})
}
