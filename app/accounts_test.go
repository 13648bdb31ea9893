package app

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"crisisroom/access"
	"crisisroom/protocol"
	"crisisroom/rooms"
)

// wsCloseCode reads ws until the server closes it and returns the close
// code, or fails the test if that takes longer than within.
func wsCloseCode(t *testing.T, ws *websocket.Conn, within time.Duration) int {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(within))
	for {
		_, _, err := ws.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		if err != nil {
			t.Fatalf("socket not closed within %s: %v", within, err)
		}
	}
}

// wsAlive fails the test unless ws still answers (a chat: echoed to a
// member).
func wsAlive(t *testing.T, ws *websocket.Conn) {
	t.Helper()
	wsRound(t, ws, []wsProbe{{"chat", protocol.TypeChat, protocol.Chat{Text: "toujours là"}}})
}

// apiToken stores a live API token for u.
func apiToken(t *testing.T, a *App, u access.User, role access.Role, event string) (string, access.Token) {
	t.Helper()
	plain, hash := rooms.NewSecret()
	tk := access.Token{ID: rooms.NewID(), Hash: hash, UserID: u.ID, Role: role, Event: event, Label: "script",
		CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	if err := a.be.Store.Access().CreateToken(context.Background(), tk); err != nil {
		t.Fatal(err)
	}
	return plain, tk
}

// loggedInAdmin creates the administrator "root" and logs it in.
func loggedInAdmin(t *testing.T, a *App, base string) (*browser, access.User) {
	t.Helper()
	root := staff(t, a, "root", "correct horse battery", true, "", "")
	admin := newBrowser(t, base)
	if res := admin.login("root", "correct horse battery"); res.StatusCode != http.StatusOK {
		t.Fatalf("admin login: %d", res.StatusCode)
	}
	return admin, root
}

// seated logs login in with a browser and seats it in the main room over
// a socket opened with its session.
func seated(t *testing.T, base, login string) (*browser, *websocket.Conn) {
	t.Helper()
	b := newBrowser(t, base)
	if res := b.login(login, "correct horse battery"); res.StatusCode != http.StatusOK {
		t.Fatalf("login %s: %d", login, res.StatusCode)
	}
	ws := wsDial(t, base, b.c.Jar)
	t.Cleanup(func() { ws.Close() })
	if !wsJoin(t, ws, "") {
		t.Fatalf("%s not seated", login)
	}
	return b, ws
}

// TestLogoutClosesThatSessionsSockets: ending one session (DELETE
// /api/v1/session) closes the sockets it opened; the same account's other
// session keeps its own.
func TestLogoutClosesThatSessionsSockets(t *testing.T) {
	a, srv := startApp(t, mapConfig(t, false))
	staff(t, a, "alice", "correct horse battery", false, MainRoom, access.Operator)
	phone, phoneWS := seated(t, srv.URL, "alice")
	_, laptopWS := seated(t, srv.URL, "alice")

	if res, _ := phone.call(http.MethodDelete, "/api/v1/session", nil, true); res.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	if code := wsCloseCode(t, phoneWS, time.Second); code != protocol.CloseRevoked {
		t.Fatalf("logged-out session's socket closed with %d, want %d", code, protocol.CloseRevoked)
	}
	wsAlive(t, laptopWS)
}

// TestTokenFollowsItsAccount: an API token is worth no more than its
// account's current role, from the next request on; the account's
// sockets close when its role is lowered.
func TestTokenFollowsItsAccount(t *testing.T) {
	cfg := mapConfig(t, true)
	cfg.RateIP, cfg.RateToken = 0, 0
	a, srv := startApp(t, cfg)
	admin, _ := loggedInAdmin(t, a, srv.URL)
	bob := staff(t, a, "bob", "correct horse battery", false, MainRoom, access.Operator)
	tok, _ := apiToken(t, a, bob, access.Operator, MainRoom)
	_, bobWS := seated(t, srv.URL, "bob")
	if got := do(t, http.MethodGet, srv.URL+"/api/v1/report", tok); got != http.StatusOK {
		t.Fatalf("operator token, operator account: report %d, want 200", got)
	}

	member := "/api/v1/users/" + bob.ID + "/events/" + MainRoom
	if res, _ := admin.call(http.MethodPut, member, map[string]string{"role": "participant"}, true); res.StatusCode != http.StatusNoContent {
		t.Fatalf("demote: %d", res.StatusCode)
	}
	demoted := time.Now()
	if got := do(t, http.MethodGet, srv.URL+"/api/v1/report", tok); got != http.StatusForbidden {
		t.Errorf("operator token of a participant: report %d, want 403", got)
	}
	if got := do(t, http.MethodGet, srv.URL+"/api/v1/declarations", tok); got != http.StatusOK {
		t.Errorf("operator token of a participant: declarations %d, want 200 (a participant's right)", got)
	}
	if d := time.Since(demoted); d > time.Second {
		t.Errorf("the token took %s to follow the demotion", d)
	}
	if code := wsCloseCode(t, bobWS, time.Second); code != protocol.CloseRevoked {
		t.Fatalf("demoted account's socket closed with %d, want %d", code, protocol.CloseRevoked)
	}

	if res, _ := admin.call(http.MethodPut, member, map[string]string{"role": ""}, true); res.StatusCode != http.StatusNoContent {
		t.Fatalf("remove: %d", res.StatusCode)
	}
	if got := do(t, http.MethodGet, srv.URL+"/api/v1/declarations", tok); got != http.StatusUnauthorized {
		t.Errorf("token of an account no longer a member: %d, want 401", got)
	}
}

// TestDisableAccount: disabling an account refuses its session and its
// tokens and closes its sockets at once, audited; an admin cannot disable
// their own account from the page.
func TestDisableAccount(t *testing.T) {
	a, srv := startApp(t, mapConfig(t, false))
	admin, root := loggedInAdmin(t, a, srv.URL)
	bob := staff(t, a, "bob", "correct horse battery", false, MainRoom, access.Operator)
	tok, tk := apiToken(t, a, bob, access.Operator, MainRoom)
	bobPage, bobWS := seated(t, srv.URL, "bob")
	if got := do(t, http.MethodGet, srv.URL+"/api/v1/session", tok); got != http.StatusOK {
		t.Fatalf("token before: %d", got)
	}

	res, out := admin.call(http.MethodPost, "/api/v1/users/"+bob.ID+"/disable", nil, true)
	if res.StatusCode != http.StatusOK || out["sessions"] != float64(1) {
		t.Fatalf("disable: %d %v, want 200 with 1 session ended", res.StatusCode, out)
	}
	if got := do(t, http.MethodGet, srv.URL+"/api/v1/session", tok); got != http.StatusUnauthorized {
		t.Errorf("token of a disabled account: %d, want 401", got)
	}
	if res, _ := bobPage.call(http.MethodGet, "/api/v1/session", nil, false); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("session of a disabled account: %d, want 401", res.StatusCode)
	}
	if code := wsCloseCode(t, bobWS, time.Second); code != protocol.CloseRevoked {
		t.Fatalf("disabled account's socket closed with %d, want %d", code, protocol.CloseRevoked)
	}
	if res := newBrowser(t, srv.URL).login("bob", "correct horse battery"); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("login to a disabled account: %d, want 401", res.StatusCode)
	}
	ctx := context.Background()
	if got, _ := a.be.Store.Access().TokenByHash(ctx, tk.Hash); got.RevokedAt.IsZero() {
		t.Error("the disabled account's token is not revoked")
	}
	log, _ := a.be.Store.Access().AuditLog(ctx, 10)
	found := false
	for _, e := range log {
		found = found || (e.Action == "user_disabled" && e.Target == "bob" && e.Actor == "Root")
	}
	if !found {
		t.Errorf("no user_disabled entry by Root for bob in %+v", log)
	}
	if res, _ := admin.call(http.MethodPost, "/api/v1/users/"+root.ID+"/disable", nil, true); res.StatusCode != http.StatusBadRequest {
		t.Errorf("disabling oneself: %d, want 400", res.StatusCode)
	}
	if res, _ := admin.call(http.MethodPost, "/api/v1/users/nobody/disable", nil, true); res.StatusCode != http.StatusNotFound {
		t.Errorf("disabling an unknown account: %d, want 404", res.StatusCode)
	}
}
