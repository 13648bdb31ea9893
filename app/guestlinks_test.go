package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gorilla/websocket"

	"crisisroom/access"
	"crisisroom/protocol"
	"crisisroom/rooms"
)

// glEnv serves the guest links' routes behind a stand-in for the gate that
// makes every caller the operator "Préfète", and the WebSocket endpoint.
type glEnv struct {
	t   *testing.T
	a   *App
	srv *httptest.Server
}

func glStart(t *testing.T) *glEnv {
	t.Helper()
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	be, err := OpenBackends(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	a, err := New(ctx, cfg, be, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := be.Store.CreateRoom(ctx, rooms.RoomInfo{Name: "other", Title: "Autre", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	op := &access.Principal{Kind: access.KindSession, ID: "u-op", UserID: "u-op", Name: "Préfète", Roles: map[string]access.Role{"main": access.Operator}}
	r := chi.NewRouter()
	r.Get("/ws", a.sig.ServeHTTP)
	r.Route("/api/v1", func(r chi.Router) {
		r.Use(func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				next.ServeHTTP(w, req.WithContext(access.WithPrincipal(req.Context(), op)))
			})
		})
		a.mountGuestLinks(r)
	})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.Shutdown(ctx)
	})
	return &glEnv{t: t, a: a, srv: srv}
}

func (e *glEnv) call(method, path, body string) (int, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

type glLink struct {
	guestLinkView
	URL   string `json:"url"`
	Token string `json:"token"`
}

func TestGuestLinksAPI(t *testing.T) {
	e := glStart(t)
	const base = "/api/v1/events/main/guest-links"

	for _, bad := range []struct{ body, want string }{
		{`{"label":"ARS"}`, "obligatoire"},
		{`{"expires_in_minutes":0}`, "Durée"},
		{`{"expires_in_minutes":43201}`, "Durée"},
		{`{"expires_in_minutes":60,"max_uses":0}`, "utilisations"},
		{`{"expires_in_minutes":60,"max_uses":1001}`, "utilisations"},
		{`{"expires_in_minutes":60,"label":"` + strings.Repeat("x", 101) + `"}`, "Libellé"},
		{`{"expires_in_minutes":60,"label":"a\u0007b"}`, "contrôle"},
		{`{"expires_in_minutes":60,"role":"host"}`, "JSON"},
		{`not json`, "JSON"},
	} {
		code, b := e.call(http.MethodPost, base, bad.body)
		var ans map[string]string
		_ = json.Unmarshal(b, &ans)
		if code != http.StatusBadRequest || ans["error"] != "invalid" || !strings.Contains(ans["message"], bad.want) {
			t.Errorf("%s: %d %s, want 400 invalid mentioning %q", bad.body, code, b, bad.want)
		}
	}
	// An oversize body: 413, saying the limit.
	code, b := e.call(http.MethodPost, base, `{"expires_in_minutes":60,"label":"`+strings.Repeat("x", 20<<10)+`"}`)
	var big map[string]string
	if json.Unmarshal(b, &big) != nil || code != http.StatusRequestEntityTooLarge || big["error"] != "too_large" || !strings.Contains(big["message"], "16384") {
		t.Errorf("oversize body: %d %s, want 413 too_large with the limit", code, b)
	}
	if code, _ := e.call(http.MethodPost, "/api/v1/events/nowhere/guest-links", `{"expires_in_minutes":60}`); code != http.StatusNotFound {
		t.Fatalf("unknown room: %d", code)
	}

	before := time.Now()
	code, b = e.call(http.MethodPost, base, `{"label":"ARS Bretagne","expires_in_minutes":90,"max_uses":2,"watch_only":true,"lobby":false}`)
	var l glLink
	if err := json.Unmarshal(b, &l); code != http.StatusCreated || err != nil {
		t.Fatalf("create: %d %s", code, b)
	}
	if l.ID == "" || l.Label != "ARS Bretagne" || l.MaxUses != 2 || l.Uses != 0 || !l.WatchOnly || l.Lobby || l.CreatedBy != "Préfète" ||
		l.RevokedAt != nil || l.State != "active" || l.ExpiresAt.Sub(l.CreatedAt) != 90*time.Minute || l.CreatedAt.Before(before.Add(-time.Second)) {
		t.Fatalf("created %s", b)
	}
	if len(l.Token) < 43 || l.URL != e.a.cfg.PublicBase()+"/r/main#t="+l.Token {
		t.Fatalf("url %q token %q", l.URL, l.Token)
	}
	code, b = e.call(http.MethodPost, base, `{"expires_in_minutes":5}`)
	var dflt glLink
	if err := json.Unmarshal(b, &dflt); code != http.StatusCreated || err != nil || dflt.MaxUses != defaultGuestUses || dflt.Label != defaultGuestLabel {
		t.Fatalf("defaults: %d %s", code, b)
	}
	if code, _ := e.call(http.MethodPost, "/api/v1/events/other/guest-links", `{"expires_in_minutes":5}`); code != http.StatusCreated {
		t.Fatalf("other room: %d", code)
	}

	// The list: this room's guest links only, newest first, never a token.
	code, b = e.call(http.MethodGet, base, "")
	var list []map[string]any
	if err := json.Unmarshal(b, &list); code != http.StatusOK || err != nil || len(list) != 2 || list[0]["id"] != dflt.ID || list[1]["id"] != l.ID {
		t.Fatalf("list: %d %s", code, b)
	}
	if bytes.Contains(b, []byte(l.Token)) || bytes.Contains(b, []byte(`"token"`)) || bytes.Contains(b, []byte(`"hash"`)) {
		t.Fatalf("the list shows a secret: %s", b)
	}
	for _, k := range []string{"id", "label", "created_at", "expires_at", "revoked_at", "max_uses", "uses", "watch_only", "lobby", "created_by", "state"} {
		if _, ok := list[1][k]; !ok {
			t.Fatalf("list entry lacks %q: %v", k, list[1])
		}
	}

	// A guest joins with it; revoking the link disconnects it.
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.srv.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, protocol.Encode(protocol.TypeJoin, "1", protocol.Join{Token: l.Token, Name: "Dr Martin"})); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, frame, err := ws.ReadMessage(); err != nil || !bytes.Contains(frame, []byte(`"joined"`)) {
		t.Fatalf("guest join: %s %v", frame, err)
	}

	bootstrap, _ := e.a.be.Store.Links(context.Background(), MainRoom)
	for _, id := range []string{"unknown", bootstrap[len(bootstrap)-1].ID} { // a room (host) link is not a guest link
		if code, _ := e.call(http.MethodDelete, base+"/"+id, ""); code != http.StatusNotFound {
			t.Fatalf("delete %s: %d, want 404", id, code)
		}
	}
	if code, _ := e.call(http.MethodDelete, "/api/v1/events/other/guest-links/"+l.ID, ""); code != http.StatusNotFound {
		t.Fatalf("delete through another room: %d, want 404", code)
	}
	start := time.Now()
	if code, b := e.call(http.MethodDelete, base+"/"+l.ID, ""); code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", code, b)
	}
	var closeCode int
	for {
		_, _, err := ws.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			closeCode = ce.Code
			break
		}
		if err != nil {
			t.Fatalf("guest socket: %v", err)
		}
	}
	t.Logf("DELETE to the guest's close frame: %s", time.Since(start))
	if closeCode != protocol.CloseRevoked {
		t.Fatalf("guest closed with %d, want %d", closeCode, protocol.CloseRevoked)
	}
	code, b = e.call(http.MethodGet, base, "")
	var after []guestLinkView
	if err := json.Unmarshal(b, &after); err != nil || code != http.StatusOK || after[1].State != "revoked" || after[1].RevokedAt == nil || after[1].Uses != 1 {
		t.Fatalf("after revocation: %d %s", code, b)
	}

	audit, err := e.a.be.Store.Access().AuditLog(context.Background(), 50)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, en := range audit {
		seen[en.Action+" "+en.Actor+" "+en.Target] = true
	}
	if !seen["link_created Préfète main"] || !seen["link_revoked Préfète main"] {
		t.Fatalf("audit %+v", audit)
	}
}
