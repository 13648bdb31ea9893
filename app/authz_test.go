package app

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"crisisroom/access"
	"crisisroom/rooms"
)

// expected is the authorization matrix as the issue states it, written out
// here independently of access's own tables: letters name the roles that
// may call each route. A admin, O operator, P participant, G guest,
// D declarant, V observer; "-" means anyone, even without a credential.
var expected = map[string]string{
	"POST /api/v1/session":            "-",
	"GET /api/v1/session":             "AOPGDV",
	"DELETE /api/v1/session":          "AOPGDV",
	"POST /api/v1/session/logout-all": "AOPGDV",

	"GET /api/v1/users":                    "A",
	"POST /api/v1/users":                   "A",
	"PUT /api/v1/users/{id}/events/{slug}": "A",
	"POST /api/v1/users/{id}/disable":      "A",
	"GET /api/v1/tokens":                   "A",
	"POST /api/v1/tokens":                  "A",
	"DELETE /api/v1/tokens/{id}":           "A",
	"GET /api/v1/audit":                    "A",

	"POST /api/v1/declarations":                 "AOD",
	"GET /api/v1/declarations":                  "AOPDV",
	"GET /api/v1/declarations/{id}":             "AOPDV",
	"POST /api/v1/declarations/{id}/amendments": "AOD",
	"GET /api/v1/aggregates":                    "AOPDV",
	"GET /api/v1/export.csv":                    "AO",
	"GET /api/v1/report":                        "AO",
	"GET /api/v1/me":                            "AOPGDV",
	"GET /api/v1/communes/{code}/links":         "AO",
	"POST /api/v1/communes/{code}/links":        "AO",
	"DELETE /api/v1/communes/{code}/links/{id}": "AO",

	"POST /api/v1/layers":        "AO",
	"GET /api/v1/layers":         "AOPV",
	"GET /api/v1/layers/{id}":    "AOPV",
	"DELETE /api/v1/layers/{id}": "AO",

	"GET /api/v1/events":                            "AOPV",
	"POST /api/v1/events":                           "A",
	"GET /api/v1/events/{slug}":                     "AOP",
	"POST /api/v1/events/{slug}/events":             "AO",
	"POST /api/v1/events/{slug}/links":              "AO",
	"GET /api/v1/events/{slug}/log":                 "AOP",
	"POST /api/v1/events/{slug}/log":                "AOP",
	"GET /api/v1/events/{slug}/log.csv":             "AOP",
	"GET /api/v1/events/{slug}/log/{id}":            "AOP",
	"GET /api/v1/events/{slug}/log/{id}/attachment": "AOP",
	"GET /api/v1/events/{slug}/board":               "AOP",
	"PUT /api/v1/events/{slug}/board":               "AO",
	"GET /api/v1/events/{slug}/board/history":       "AOP",
	"GET /api/v1/events/{slug}/tags":                "AOP",
	"PUT /api/v1/events/{slug}/tags":                "AO",
	"GET /api/v1/events/{slug}/guest-links":         "AO",
	"POST /api/v1/events/{slug}/guest-links":        "AO",
	"DELETE /api/v1/events/{slug}/guest-links/{id}": "AO",

	// append-only: readers get 405, the others 401/403
	"DELETE /api/v1/events/{slug}/log":                 "AOP",
	"PUT /api/v1/events/{slug}/log":                    "AOP",
	"PATCH /api/v1/events/{slug}/log":                  "AOP",
	"DELETE /api/v1/events/{slug}/log/{id}":            "AOP",
	"PUT /api/v1/events/{slug}/log/{id}":               "AOP",
	"PATCH /api/v1/events/{slug}/log/{id}":             "AOP",
	"POST /api/v1/events/{slug}/log/{id}":              "AOP",
	"DELETE /api/v1/events/{slug}/log/{id}/attachment": "AOP",
	"PUT /api/v1/events/{slug}/log/{id}/attachment":    "AOP",
	"PATCH /api/v1/events/{slug}/log/{id}/attachment":  "AOP",
	"POST /api/v1/events/{slug}/log/{id}/attachment":   "AOP",
}

// registeredRoutes lists "METHOD pattern" of every route the server registers
// under /api/v1.
func registeredRoutes(t *testing.T, a *App) []string {
	t.Helper()
	var out []string
	err := chi.Walk(a.Handler().(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if strings.HasPrefix(route, "/api/v1/") && !strings.HasSuffix(route, "/*") {
			out = append(out, method+" "+route)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// credentials mints one bearer credential per role.
func credentials(t testing.TB, a *App) map[byte]string {
	t.Helper()
	ctx := context.Background()
	st := a.be.Store.Access()
	token := func(login string, admin bool, role access.Role, event string) string {
		u := access.User{ID: rooms.NewID(), Login: login, Name: login, Admin: admin, PasswordHash: "x", CreatedAt: time.Now()}
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		if event != "" { // a token is worth no more than its user's role
			if err := st.SetMembership(ctx, access.Membership{UserID: u.ID, Event: event, Role: role}); err != nil {
				t.Fatal(err)
			}
		}
		plain, hash := rooms.NewSecret()
		if err := st.CreateToken(ctx, access.Token{ID: rooms.NewID(), Hash: hash, UserID: u.ID, Role: role, Event: event,
			CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		return plain
	}
	link := func(kind, role string) string {
		plain, hash := rooms.NewSecret()
		l := rooms.Link{ID: rooms.NewID(), Hash: hash, Kind: kind, Scope: MainRoom, Role: role, Label: "test " + role,
			CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), MaxUses: 10}
		if err := a.be.Store.CreateLink(ctx, l); err != nil {
			t.Fatal(err)
		}
		return plain
	}
	communes, err := a.NewCommuneLinks(ctx, []string{"56001"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return map[byte]string{
		'A': token("root", true, access.Admin, ""),
		'O': link(rooms.KindRoom, rooms.RoleHost),
		'P': link(rooms.KindRoom, rooms.RoleParticipant),
		'G': link(rooms.KindGuest, string(access.Guest)),
		'D': communes[0].Token,
		'V': token("analyst", false, access.Observer, access.MainEvent),
	}
}

func do(t *testing.T, method, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestAuthorizationMatrix: every role × every API route is allowed or
// denied as the table says; a route without an entry (here or in
// access) fails the test; without a credential, or with a forged
// one, every non-public route answers 401.
func TestAuthorizationMatrix(t *testing.T) {
	cfg := mapConfig(t, true)
	cfg.RateIP, cfg.RateToken = 0, 0 // this test makes a few hundred calls from one address
	a, srv := startApp(t, cfg)
	routes := registeredRoutes(t, a)
	for _, rt := range routes {
		if _, ok := expected[rt]; !ok {
			t.Errorf("route %s has no entry in the test's matrix", rt)
		}
		method, pattern, _ := strings.Cut(rt, " ")
		if _, ok := access.RouteRule(method, pattern); !ok {
			t.Errorf("route %s has no rule in access", rt)
		}
	}
	for rt := range expected {
		if !slices.Contains(routes, rt) {
			t.Errorf("matrix entry %s: no such route", rt)
		}
	}
	for _, rt := range access.RouteKeys() {
		if !slices.Contains(routes, rt) {
			t.Errorf("access rule %s: no such route", rt)
		}
	}
	creds := credentials(t, a)
	forged, _ := rooms.NewSecret()
	for _, rt := range routes {
		want := expected[rt]
		method, pattern, _ := strings.Cut(rt, " ")
		url := srv.URL + strings.NewReplacer("{slug}", MainRoom, "{id}", "nope", "{code}", "56001").Replace(pattern)
		for _, tok := range []string{"", forged} {
			got := do(t, method, url, tok)
			if want == "-" && (got == http.StatusUnauthorized || got == http.StatusForbidden) {
				t.Errorf("%s (public) without a valid credential: %d", rt, got)
			}
			if want != "-" && got != http.StatusUnauthorized {
				t.Errorf("%s without a valid credential: %d, want 401", rt, got)
			}
		}
		for _, role := range []byte("AOPGDV") {
			got := do(t, method, url, creds[role])
			allowed := want == "-" || strings.IndexByte(want, role) >= 0
			switch {
			case allowed && (got == http.StatusUnauthorized || got == http.StatusForbidden):
				t.Errorf("%s as %c: %d, want allowed", rt, role, got)
			case !allowed && got != http.StatusForbidden:
				t.Errorf("%s as %c: %d, want 403", rt, role, got)
			}
		}
	}
}

// TestDeclarantOtherCommune: a declarant's link declares for its own
// commune only.
func TestDeclarantOtherCommune(t *testing.T) {
	cfg := mapConfig(t, true)
	a, srv := startApp(t, cfg)
	links, err := a.NewCommuneLinks(context.Background(), []string{"56001"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	day := time.Now().Format("2006-01-02")
	body := `{"commune":"56002","date":"` + day + `","place":"ehpad","count":1,"idempotency_key":"k-other-1"}`
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/declarations", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+links[0].Token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("declarant of 56001 declaring for 56002: %d, want 403", res.StatusCode)
	}
}
