package declarations_test

import (
	"bytes"
	"context"
	"crisisroom/internal/testgeo"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"crisisroom/app"
	"crisisroom/declarations"
	"crisisroom/rooms"
)

// The real server, through its HTTP API: app.OpenBackends + app.New with the
// real Morbihan territory, served by httptest on loopback.

// sharedGeoDir is the reference territory in testdata/geo (internal/testgeo).
func sharedGeoDir(t *testing.T) string { return testgeo.Dir(t) }

// parisDay is today+offset in the deployment's time zone, the zone the
// server's "today" uses.
func parisDay(t *testing.T, offset int) string {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	return time.Now().In(loc).AddDate(0, 0, offset).Format(declarations.DateLayout)
}

type apiServer struct {
	url      string
	be       *app.Backends
	app      *app.App
	operator string // token of the room host link: an operator
}

func startAPI(t *testing.T) *apiServer {
	t.Helper()
	geo := sharedGeoDir(t)
	cfg := app.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Addr = "127.0.0.1:0"
	cfg.Territory = filepath.Join(geo, "communes-56-morbihan.geojson")
	cfg.CommunesCSV = filepath.Join(geo, "communes-56-morbihan-cog2021.csv")
	cfg.EventStart = parisDay(t, -30)
	ctx := context.Background()
	be, err := app.OpenBackends(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(ctx, cfg, be, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		be.Close()
		t.Fatal(err)
	}
	admin, _, err := a.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(a.Handler())
	t.Cleanup(func() {
		ts.Close() // waits for handlers in flight
		_ = a.Shutdown(context.Background())
		_ = be.Close()
	})
	return &apiServer{url: ts.URL, be: be, app: a, operator: tokenOf(t, admin)}
}

func tokenOf(t *testing.T, url string) string {
	t.Helper()
	_, tok, ok := strings.Cut(url, "#t=")
	if !ok || tok == "" {
		t.Fatalf("no token in %q", url)
	}
	return tok
}

// communeToken mints one declaration link for code.
func (s *apiServer) communeToken(t *testing.T, code string) string {
	t.Helper()
	ls, err := s.app.NewCommuneLinks(context.Background(), []string{code}, time.Hour)
	if err != nil || len(ls) != 1 {
		t.Fatalf("commune link for %s: %v", code, err)
	}
	return ls[0].Token
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("status %d, body %q: %v", a.status, a.body, err)
	}
}

// errorCode is the "error" field of an error answer.
func (a answer) errorCode(t *testing.T) string {
	t.Helper()
	var e struct{ Error, Message string }
	a.decode(t, &e)
	if e.Message == "" {
		t.Fatalf("error answer without a message: %s", a.body)
	}
	return e.Error
}

// do sends body (a string is sent as is, anything else as JSON).
func (s *apiServer) do(t *testing.T, method, path, token string, body any) answer {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: raw}
}

func newKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func body(commune, date, place string, count int, key string) map[string]any {
	return map[string]any{"commune": commune, "date": date, "place": place, "count": count, "note": "", "idempotency_key": key}
}

// declare posts a valid declaration and returns it.
func (s *apiServer) declare(t *testing.T, token string, b map[string]any) declarations.Declaration {
	t.Helper()
	a := s.do(t, "POST", "/api/v1/declarations", token, b)
	if a.status != http.StatusCreated {
		t.Fatalf("declare %v: status %d %s", b, a.status, a.body)
	}
	var d declarations.Declaration
	a.decode(t, &d)
	if d.ID == "" || d.Revision != 1 {
		t.Fatalf("stored declaration %+v", d)
	}
	return d
}

func (s *apiServer) state(t *testing.T, token, commune string) declarations.CommuneState {
	t.Helper()
	a := s.do(t, "GET", "/api/v1/aggregates?commune="+commune, token, nil)
	if a.status != http.StatusOK {
		t.Fatalf("aggregates %s: %d %s", commune, a.status, a.body)
	}
	var st declarations.CommuneState
	a.decode(t, &st)
	return st
}

func TestAPIUnauthenticated(t *testing.T) {
	s := startAPI(t)
	ctx := context.Background()
	day := parisDay(t, -1)
	good := body("56121", day, "ehpad", 2, newKey(t))

	// An expired commune link, stored as NewCommuneLinks would have.
	expired, hash := rooms.NewSecret()
	past := time.Now().Add(-2 * time.Hour)
	if err := s.be.Store.CreateLink(ctx, rooms.Link{ID: rooms.NewID(), Hash: hash, Kind: app.KindCommune, Scope: "56121",
		Role: app.RoleDeclarant, Label: "expired", CreatedAt: past, ExpiresAt: past.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// A revoked one, which worked before its revocation.
	revoked := s.communeToken(t, "56121")
	s.declare(t, revoked, body("56121", day, "domicile", 1, newKey(t)))
	l, err := s.be.Store.LinkByHash(ctx, rooms.HashSecret(revoked))
	if err != nil {
		t.Fatal(err)
	}
	// Revoked as the product does (the server remembers links it has just
	// seen for a second; a revocation through the rooms manager evicts
	// them at once).
	if err := s.app.Rooms.RevokeLink(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	forged, _ := rooms.NewSecret()
	tokens := map[string]string{"none": "", "forged": forged, "expired": expired, "revoked": revoked,
		"too long": strings.Repeat("a", 300)}
	endpoints := []struct{ method, path string }{
		{"POST", "/api/v1/declarations"}, {"GET", "/api/v1/declarations"}, {"GET", "/api/v1/declarations/x"},
		{"POST", "/api/v1/declarations/x/amendments"}, {"GET", "/api/v1/aggregates?commune=56121"},
		{"GET", "/api/v1/export.csv"}, {"GET", "/api/v1/report"}, {"GET", "/api/v1/me"},
	}
	for name, tok := range tokens {
		for _, e := range endpoints {
			var b any
			if e.method == "POST" {
				b = good
			}
			a := s.do(t, e.method, e.path, tok, b)
			if a.status != http.StatusUnauthorized || a.errorCode(t) != "unauthenticated" {
				t.Errorf("%s token, %s %s: %d %s", name, e.method, e.path, a.status, a.body)
			}
			if !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s token, %s %s: WWW-Authenticate %q", name, e.method, e.path, a.header.Get("WWW-Authenticate"))
			}
		}
	}
	// Another scheme than Bearer is no token at all.
	req, _ := http.NewRequest("GET", s.url+"/api/v1/me", nil)
	req.Header.Set("Authorization", "Basic "+s.operator)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("Basic scheme: %d", resp.StatusCode)
	}
	// Nothing the refused requests carried was counted.
	if st := s.state(t, s.operator, "56121"); st.Total != 1 {
		t.Fatalf("total after refused requests = %d, want 1 (the one made before revocation)", st.Total)
	}
}

func TestAPIForbidden(t *testing.T) {
	s := startAPI(t)
	day := parisDay(t, -1)
	lorient := s.communeToken(t, "56121")
	vannes := s.communeToken(t, "56260")
	participant, err := s.app.NewRoomLink(context.Background(), app.MainRoom, rooms.RoleParticipant, "invité", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	theirs := s.declare(t, vannes, body("56260", day, "hopital", 3, newKey(t)))
	two := 2
	cases := []struct {
		name, method, path, token string
		body                      any
		want                      int
	}{
		{"declare for another commune", "POST", "/api/v1/declarations", lorient, body("56260", day, "ehpad", 5, newKey(t)), 403},
		{"another commune's aggregates", "GET", "/api/v1/aggregates?commune=56260", lorient, nil, 403},
		{"another commune's list", "GET", "/api/v1/declarations?commune=56260", lorient, nil, 403},
		{"amend another commune's", "POST", "/api/v1/declarations/" + theirs.ID + "/amendments", lorient,
			map[string]any{"count": two, "reason": "tentative"}, 403},
		{"read another commune's id", "GET", "/api/v1/declarations/" + theirs.ID, lorient, nil, 404},
		{"export as declarant", "GET", "/api/v1/export.csv", lorient, nil, 403},
		{"report as declarant", "GET", "/api/v1/report", lorient, nil, 403},
		{"participant declares", "POST", "/api/v1/declarations", tokenOf(t, participant), body("56121", day, "ehpad", 1, newKey(t)), 403},
	}
	for _, c := range cases {
		a := s.do(t, c.method, c.path, c.token, c.body)
		if a.status != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, a.status, a.body, c.want)
			continue
		}
		want := map[int]string{403: "forbidden", 404: "not_found"}[c.want]
		if got := a.errorCode(t); got != want {
			t.Errorf("%s: error %q, want %q", c.name, got, want)
		}
	}
	// Nothing changed: Vannes still has its 3, unamended; Lorient nothing.
	if st := s.state(t, s.operator, "56260"); st.Total != 3 || st.ByPlace["hopital"] != 3 || st.Version != 1 {
		t.Fatalf("Vannes after refused requests: %+v", st)
	}
	if st := s.state(t, s.operator, "56121"); st.Total != 0 {
		t.Fatalf("Lorient after refused requests: total %d", st.Total)
	}
	// The declarant does see its own commune.
	if st := s.state(t, vannes, ""); st.Code != "56260" || st.Total != 3 {
		t.Fatalf("declarant's own aggregates: %+v", st)
	}
}

func TestAPIValidation(t *testing.T) {
	s := startAPI(t)
	tok := s.communeToken(t, "56121")
	day := parisDay(t, -1)
	cases := []struct {
		name  string
		edit  func(b map[string]any)
		codes []string
	}{
		{"unknown commune", func(b map[string]any) { b["commune"] = "56999" }, []string{"unknown_commune"}},
		{"commune of another département", func(b map[string]any) { b["commune"] = "75056" }, []string{"unknown_commune"}},
		{"empty commune", func(b map[string]any) { b["commune"] = "" }, []string{"unknown_commune"}},
		{"bad date", func(b map[string]any) { b["date"] = "26/11/2026" }, []string{"bad_date"}},
		{"impossible date", func(b map[string]any) { b["date"] = "2026-02-30" }, []string{"bad_date"}},
		{"future date", func(b map[string]any) { b["date"] = parisDay(t, 2) }, []string{"date_in_future"}},
		{"before the event", func(b map[string]any) { b["date"] = parisDay(t, -31) }, []string{"date_before_event"}},
		{"unknown place", func(b map[string]any) { b["place"] = "rue" }, []string{"unknown_place"}},
		{"place in capitals", func(b map[string]any) { b["place"] = "EHPAD" }, []string{"unknown_place"}},
		{"zero", func(b map[string]any) { b["count"] = 0 }, []string{"count_out_of_range"}},
		{"negative", func(b map[string]any) { b["count"] = -4 }, []string{"count_out_of_range"}},
		{"above max", func(b map[string]any) { b["count"] = 201 }, []string{"count_out_of_range"}},
		{"note too long", func(b map[string]any) { b["note"] = strings.Repeat("é", declarations.MaxNoteRunes+1) }, []string{"note_too_long"}},
		{"short key", func(b map[string]any) { b["idempotency_key"] = "abc" }, []string{"bad_idempotency_key"}},
		{"key with spaces", func(b map[string]any) { b["idempotency_key"] = "not a good key" }, []string{"bad_idempotency_key"}},
		{"everything wrong", func(b map[string]any) {
			b["commune"], b["date"], b["place"], b["count"], b["idempotency_key"] = "x", "", "", 0, ""
		}, []string{"unknown_commune", "bad_date", "unknown_place", "count_out_of_range", "bad_idempotency_key"}},
	}
	for _, c := range cases {
		b := body("56121", day, "ehpad", 2, newKey(t))
		c.edit(b)
		a := s.do(t, "POST", "/api/v1/declarations", tok, b)
		checkInvalid(t, c.name, a, c.codes)
	}
	// A note of exactly the limit, in accented letters, is fine.
	ok := body("56121", day, "ehpad", 200, newKey(t))
	ok["note"] = strings.Repeat("é", declarations.MaxNoteRunes)
	d := s.declare(t, tok, ok)

	one, minus, future, rue := 1, -1, parisDay(t, 2), "rue"
	amendments := []struct {
		name  string
		body  map[string]any
		codes []string
	}{
		{"no reason", map[string]any{"count": one}, []string{"reason_required"}},
		{"blank reason", map[string]any{"count": one, "reason": "   "}, []string{"reason_required"}},
		{"nothing to change", map[string]any{"reason": "rien"}, []string{"nothing_to_change"}},
		{"negative count", map[string]any{"count": minus, "reason": "x"}, []string{"count_out_of_range"}},
		{"future date", map[string]any{"date": future, "reason": "x"}, []string{"date_in_future"}},
		{"unknown place", map[string]any{"place": rue, "reason": "x"}, []string{"unknown_place"}},
		{"empty", map[string]any{}, []string{"reason_required", "nothing_to_change"}},
	}
	for _, c := range amendments {
		a := s.do(t, "POST", "/api/v1/declarations/"+d.ID+"/amendments", tok, c.body)
		checkInvalid(t, "amendment: "+c.name, a, c.codes)
	}
	if st := s.state(t, tok, "56121"); st.Total != 200 || st.Version != 1 {
		t.Fatalf("after refused inputs: total %d version %d, want 200 and 1", st.Total, st.Version)
	}
}

func checkInvalid(t *testing.T, name string, a answer, codes []string) {
	t.Helper()
	if a.status != http.StatusUnprocessableEntity {
		t.Errorf("%s: status %d %s, want 422", name, a.status, a.body)
		return
	}
	var e struct {
		Error  string
		Errors []declarations.FieldError
	}
	a.decode(t, &e)
	var got []string
	for _, f := range e.Errors {
		if f.Field == "" || f.Message == "" || f.English == "" {
			t.Errorf("%s: incomplete field error %+v", name, f)
		}
		got = append(got, f.Code)
	}
	sort.Strings(got)
	want := append([]string(nil), codes...)
	sort.Strings(want)
	if e.Error != "invalid" || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s: error %q codes %v, want invalid %v", name, e.Error, got, want)
	}
}

func TestAPIMalformedAndOversizeBodies(t *testing.T) {
	s := startAPI(t)
	tok := s.communeToken(t, "56121")
	day := parisDay(t, -1)
	valid, _ := json.Marshal(body("56121", day, "ehpad", 2, newKey(t)))
	v := string(valid)
	bad := map[string]string{
		"empty":                "",
		"truncated":            `{"commune":"56121","date":`,
		"not an object":        `["56121"]`,
		"string count":         strings.Replace(v, `"count":2`, `"count":"2"`, 1),
		"fractional count":     strings.Replace(v, `"count":2`, `"count":2.5`, 1),
		"unknown field":        strings.Replace(v, `{`, `{"nom_du_defunt":"X",`, 1),
		"second object":        v + v,
		"trailing garbage":     v + ` x`,
		"trailing bracket":     v + `}`,
		"comment":              v + ` // fin`,
		"single quotes":        `{'commune':'56121'}`,
		"huge number":          strings.Replace(v, `"count":2`, `"count":1e400`, 1),
		"truncated, bad UTF-8": "{\"commune\":\"56121\xff\"",
	}
	for name, b := range bad {
		for _, path := range []string{"/api/v1/declarations", "/api/v1/declarations/x/amendments"} {
			a := s.do(t, "POST", path, tok, b)
			if a.status != http.StatusBadRequest || a.errorCode(t) != "bad_json" {
				t.Errorf("%s on %s: %d %s, want 400 bad_json", name, path, a.status, a.body)
			}
		}
	}
	// Over 16 KiB: a note far too long, and a valid object padded after it.
	big := body("56121", day, "ehpad", 2, newKey(t))
	big["note"] = strings.Repeat("x", declarations.MaxBodyBytes)
	padded := v + strings.Repeat(" ", declarations.MaxBodyBytes)
	for name, b := range map[string]any{"long note": big, "padding": padded} {
		a := s.do(t, "POST", "/api/v1/declarations", tok, b)
		if a.status != http.StatusRequestEntityTooLarge || a.errorCode(t) != "too_large" {
			t.Errorf("%s: %d %s, want 413 too_large", name, a.status, a.body)
		}
	}
	// Trailing whitespace within the limit is fine, and the key was not
	// used up by any refused request.
	a := s.do(t, "POST", "/api/v1/declarations", tok, v+"\r\n\t ")
	if a.status != http.StatusCreated {
		t.Fatalf("valid body with trailing newline: %d %s", a.status, a.body)
	}
	if st := s.state(t, tok, "56121"); st.Total != 2 {
		t.Fatalf("total %d, want 2", st.Total)
	}
}

func TestAPIIdempotency(t *testing.T) {
	s := startAPI(t)
	day := parisDay(t, -1)
	tok := s.communeToken(t, "56121")
	key := newKey(t)
	first := s.declare(t, tok, body("56121", day, "ehpad", 2, key))
	// The same key and values again (a retry): the original, 200.
	retry := func(name string) {
		t.Helper()
		a := s.do(t, "POST", "/api/v1/declarations", tok, body("56121", day, "ehpad", 2, key))
		var d declarations.Declaration
		a.decode(t, &d)
		if a.status != http.StatusOK || d.ID != first.ID {
			t.Fatalf("%s: %d %+v, want 200 with %s", name, a.status, d, first.ID)
		}
	}
	retry("retry")
	// The same key with other values is not a retry: 422, nothing counted.
	noted := body("56121", day, "ehpad", 2, key)
	noted["note"] = "2 en plus"
	for name, b := range map[string]map[string]any{"other place and count": body("56121", day, "domicile", 9, key),
		"other count": body("56121", day, "ehpad", 3, key), "other date": body("56121", parisDay(t, -2), "ehpad", 2, key), "a note": noted} {
		a := s.do(t, "POST", "/api/v1/declarations", tok, b)
		if code := a.errorCode(t); a.status != http.StatusUnprocessableEntity || code != "idempotency_key_reused" {
			t.Fatalf("%s under the same key: %d %s, want 422 idempotency_key_reused", name, a.status, code)
		}
	}
	// After an amendment the retry still matches what was first sent.
	if a := s.do(t, "POST", "/api/v1/declarations/"+first.ID+"/amendments", tok, map[string]any{"count": 4, "reason": "recompté"}); a.status != http.StatusOK {
		t.Fatalf("amend: %d %s", a.status, a.body)
	}
	retry("retry after an amendment")
	if a := s.do(t, "POST", "/api/v1/declarations", tok, body("56121", day, "ehpad", 4, key)); a.status != http.StatusUnprocessableEntity {
		t.Fatalf("the amended values under the first key: %d, want 422 (they were not what was sent)", a.status)
	}
	// Keys belong to a link: another link of the same commune may reuse one.
	other := s.declare(t, s.communeToken(t, "56121"), body("56121", day, "ehpad", 1, key))
	if other.ID == first.ID {
		t.Fatal("two links share an idempotency key space")
	}
	if st := s.state(t, tok, "56121"); st.Total != 5 {
		t.Fatalf("total %d, want 5 (4 amended, 1 by the other link)", st.Total)
	}
}

type history struct {
	Declaration declarations.Declaration
	Revisions   []declarations.Revision
}

func TestAPIAmendmentFlow(t *testing.T) {
	s := startAPI(t)
	tok := s.communeToken(t, "56121")
	y, yy := parisDay(t, -1), parisDay(t, -2)
	d := s.declare(t, tok, body("56121", y, "ehpad", 3, newKey(t)))
	keep := s.declare(t, tok, body("56121", y, "domicile", 4, newKey(t)))

	one, hop := 1, "hopital"
	a := s.do(t, "POST", "/api/v1/declarations/"+d.ID+"/amendments", tok,
		map[string]any{"count": one, "place": hop, "reason": "erreur de saisie : un seul décès, à l'hôpital"})
	var amended declarations.Declaration
	a.decode(t, &amended)
	if a.status != http.StatusOK || amended.ID != d.ID || amended.Revision != 2 || amended.Count != 1 || amended.Place != hop || amended.Date != y {
		t.Fatalf("amendment: %d %+v", a.status, amended)
	}
	// An operator moves it to the day before.
	a = s.do(t, "POST", "/api/v1/declarations/"+d.ID+"/amendments", s.operator, map[string]any{"date": yy, "reason": "décès de la veille"})
	if a.status != http.StatusOK {
		t.Fatalf("operator amendment: %d %s", a.status, a.body)
	}
	a = s.do(t, "GET", "/api/v1/declarations/"+d.ID, tok, nil)
	var h history
	a.decode(t, &h)
	if a.status != http.StatusOK || len(h.Revisions) != 3 {
		t.Fatalf("history: %d %s", a.status, a.body)
	}
	r1, r2, r3 := h.Revisions[0], h.Revisions[1], h.Revisions[2]
	if r1.Revision != 1 || r1.Count != 3 || r1.Place != "ehpad" || r1.Date != y ||
		r2.Revision != 2 || r2.Count != 1 || r2.Place != hop || !strings.Contains(r2.Reason, "erreur de saisie") ||
		r3.Revision != 3 || r3.Date != yy || r3.Count != 1 || r3.Reason != "décès de la veille" {
		t.Fatalf("revisions: %+v", h.Revisions)
	}
	if r2.Actor != d.Declarant || r3.Actor == d.Declarant || r3.Actor == "" {
		t.Fatalf("revision actors: declarant %s, %s then %s", d.Declarant, r2.Actor, r3.Actor)
	}
	if h.Declaration.Revision != 3 || h.Declaration.Count != 1 || h.Declaration.Date != yy || h.Declaration.Place != hop {
		t.Fatalf("current values: %+v", h.Declaration)
	}
	st := s.state(t, tok, "56121")
	days := map[string]declarations.DayCounts{}
	for _, dc := range st.Days {
		days[dc.Date] = dc
	}
	if st.Total != 5 || st.ByPlace["ehpad"] != 0 || st.ByPlace["hopital"] != 1 || st.ByPlace["domicile"] != 4 ||
		days[y].Total != 4 || days[y].EHPAD != 0 || days[yy].Hopital != 1 || days[yy].Total != 1 || st.Version != 4 {
		t.Fatalf("aggregates after amendments: %+v", st)
	}
	// Cancelled (count 0), not deleted: it stays listed.
	zero := 0
	if a := s.do(t, "POST", "/api/v1/declarations/"+keep.ID+"/amendments", tok, map[string]any{"count": zero, "reason": "doublon"}); a.status != 200 {
		t.Fatalf("cancel: %d %s", a.status, a.body)
	}
	a = s.do(t, "GET", "/api/v1/declarations", tok, nil)
	var list struct {
		Commune      string
		Declarations []declarations.Declaration
	}
	a.decode(t, &list)
	if a.status != 200 || list.Commune != "56121" || len(list.Declarations) != 2 {
		t.Fatalf("list: %d %s", a.status, a.body)
	}
	if st := s.state(t, tok, "56121"); st.Total != 1 {
		t.Fatalf("total after cancellation %d, want 1", st.Total)
	}
	if a := s.do(t, "POST", "/api/v1/declarations/nope/amendments", s.operator, map[string]any{"count": one, "reason": "x"}); a.status != 404 {
		t.Fatalf("amend unknown id: %d %s", a.status, a.body)
	}
}

func TestAPIExportCSV(t *testing.T) {
	s := startAPI(t)
	y, yy := parisDay(t, -1), parisDay(t, -2)
	beganne, etel := s.communeToken(t, "56011"), s.communeToken(t, "56055")
	s.declare(t, beganne, body("56011", y, "ehpad", 2, newKey(t)))
	s.declare(t, beganne, body("56011", y, "ehpad", 1, newKey(t)))
	s.declare(t, beganne, body("56011", yy, "domicile", 1, newKey(t)))
	s.declare(t, etel, body("56055", y, "autre", 5, newKey(t)))

	a := s.do(t, "GET", "/api/v1/export.csv", s.operator, nil)
	if a.status != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(a.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("export: %d %v", a.status, a.header)
	}
	if !bytes.HasPrefix(a.body, []byte("\ufeff")) {
		t.Fatalf("no BOM: %q", a.body[:10])
	}
	lines := strings.Split(strings.TrimSuffix(string(a.body[3:]), "\r\n"), "\r\n")
	if lines[0] != "code_insee;commune;date;lieu;deces" {
		t.Fatalf("header %q", lines[0])
	}
	want := []string{
		"56011;Béganne;" + yy + ";domicile;1", "56011;Béganne;" + yy + ";ehpad;0", "56011;Béganne;" + yy + ";hopital;0", "56011;Béganne;" + yy + ";autre;0",
		"56011;Béganne;" + y + ";domicile;0", "56011;Béganne;" + y + ";ehpad;3", "56011;Béganne;" + y + ";hopital;0", "56011;Béganne;" + y + ";autre;0",
		"56055;Étel;" + y + ";domicile;0", "56055;Étel;" + y + ";ehpad;0", "56055;Étel;" + y + ";hopital;0", "56055;Étel;" + y + ";autre;5",
	}
	if got := strings.Join(lines[1:], "\n"); got != strings.Join(want, "\n") {
		t.Fatalf("rows:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func TestAPIReportAndAggregates(t *testing.T) {
	s := startAPI(t)
	y, yy := parisDay(t, -1), parisDay(t, -2)
	lorient, vannes := s.communeToken(t, "56121"), s.communeToken(t, "56260")
	s.declare(t, lorient, body("56121", y, "hopital", 4, newKey(t)))
	s.declare(t, lorient, body("56121", y, "ehpad", 2, newKey(t)))
	s.declare(t, lorient, body("56121", yy, "ehpad", 1, newKey(t)))
	s.declare(t, vannes, body("56260", yy, "domicile", 3, newKey(t)))

	a := s.do(t, "GET", "/api/v1/report?date="+y, s.operator, nil)
	var rep declarations.Report
	a.decode(t, &rep)
	if a.status != 200 || rep.Date != y {
		t.Fatalf("report: %d %s", a.status, a.body)
	}
	dep := rep.Departement
	if dep.Total != 6 || dep.Previous != 4 || dep.Change != 2 || dep.ByPlace["hopital"] != 4 || dep.ByPlace["ehpad"] != 2 || dep.Last7 != 10 {
		t.Fatalf("département line: %+v", dep)
	}
	lines := map[string]declarations.ReportLine{}
	for _, l := range rep.Communes {
		lines[l.Code] = l
	}
	if l := lines["56121"]; len(rep.Communes) != 2 || l.Name != "Lorient" || l.Total != 6 || l.Previous != 1 {
		t.Fatalf("commune lines: %+v", rep.Communes)
	}
	if l := lines["56260"]; l.Total != 0 || l.Previous != 3 || l.Change != -3 {
		t.Fatalf("Vannes line: %+v", l)
	}
	if len(rep.NotDeclared) != 249 { // 250 communes, only Lorient declared that day
		t.Fatalf("%d communes not declared, want 249", len(rep.NotDeclared))
	}
	for _, l := range rep.NotDeclared {
		if l.Code == "56121" {
			t.Fatal("Lorient listed as not declared")
		}
	}
	// The default day is yesterday; a malformed one is refused.
	a = s.do(t, "GET", "/api/v1/report", s.operator, nil)
	a.decode(t, &rep)
	if a.status != 200 || rep.Date != y || rep.Departement.Total != 6 {
		t.Fatalf("default report: %d date %s total %d", a.status, rep.Date, rep.Departement.Total)
	}
	if a := s.do(t, "GET", "/api/v1/report?date=hier", s.operator, nil); a.status != 400 {
		t.Fatalf("bad date: %d", a.status)
	}

	// Aggregates: one commune, then the whole département with every commune.
	st := s.state(t, s.operator, "56121")
	if st.Total != 7 || st.ByPlace["ehpad"] != 3 || st.ByPlace["hopital"] != 4 || len(st.Days) != 2 || st.Population != 57246 {
		t.Fatalf("Lorient: %+v", st)
	}
	a = s.do(t, "GET", "/api/v1/aggregates", s.operator, nil)
	var all struct {
		declarations.CommuneState
		Communes []declarations.CommuneState
	}
	a.decode(t, &all)
	if a.status != 200 || all.Total != 10 || len(all.Communes) != 250 || all.Population != 759684 {
		t.Fatalf("département: %d total %d communes %d population %d", a.status, all.Total, len(all.Communes), all.Population)
	}
	if a := s.do(t, "GET", "/api/v1/aggregates?commune=56999", s.operator, nil); a.status != 404 {
		t.Fatalf("unknown commune: %d", a.status)
	}
	// The declarant's view of itself.
	before := parisDay(t, 0)
	a = s.do(t, "GET", "/api/v1/me", lorient, nil)
	var me struct {
		Label       string
		Commune     string
		CommuneName string `json:"commune_name"`
		Operator    bool
		Today       string
	}
	a.decode(t, &me)
	if a.status != 200 || me.Commune != "56121" || me.CommuneName != "Lorient" || me.Operator ||
		(me.Today != before && me.Today != parisDay(t, 0)) {
		t.Fatalf("me: %d %s", a.status, a.body)
	}
}
