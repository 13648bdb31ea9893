package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"crisisroom/access"
	"crisisroom/rooms"
)

// TestCommuneLinksAPI: an operator lists a commune's links, mints one
// (shown once), and revokes it; the server refuses it on the very next
// declaration (no link memory in the way); the audit log has both.
func TestCommuneLinksAPI(t *testing.T) {
	cfg := mapConfig(t, true)
	a, srv := startApp(t, cfg)
	ctx := context.Background()
	st := a.be.Store.Access()
	u := access.User{ID: rooms.NewID(), Login: "prefecture", Name: "Préfecture", Admin: true, PasswordHash: "x", CreatedAt: time.Now()}
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	admin, hash := rooms.NewSecret()
	if err := st.CreateToken(ctx, access.Token{ID: rooms.NewID(), Hash: hash, UserID: u.ID, Role: access.Admin,
		CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	call := func(method, path, token, body string, out any) int {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if out != nil && json.Unmarshal(b, out) != nil {
			t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b)
		}
		return res.StatusCode
	}
	const base = "/api/v1/communes/56001/links"
	var list []linkView
	if code := call(http.MethodGet, base, admin, "", &list); code != http.StatusOK || len(list) != 0 {
		t.Fatalf("no link yet: %d %+v", code, list)
	}
	var minted CommuneLink
	if code := call(http.MethodPost, base, admin, "{}", &minted); code != http.StatusCreated || minted.Code != "56001" ||
		!strings.HasSuffix(minted.URL, "/d#t="+minted.Token) || len(minted.Token) < 43 {
		t.Fatalf("mint: %d %+v", code, minted)
	}
	declare := func() int {
		day := time.Now().In(a.Decl.Rules().Location).Format("2006-01-02")
		return call(http.MethodPost, "/api/v1/declarations", minted.Token,
			fmt.Sprintf(`{"commune":"56001","date":%q,"place":"hopital","count":1,"note":"","idempotency_key":"k-%d"}`, day, time.Now().UnixNano()), nil)
	}
	if code := declare(); code != http.StatusCreated {
		t.Fatalf("the new link declares: %d", code)
	}
	if code := call(http.MethodGet, base, admin, "", &list); code != http.StatusOK || len(list) != 1 || list[0].State != "active" || list[0].RevokedAt != nil {
		t.Fatalf("after minting: %d %+v", code, list)
	}
	id := list[0].ID

	// Not this commune's link, an unknown commune: 404.
	other, err := a.NewCommuneLinks(ctx, []string{"56002"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := a.be.Store.LinkByHash(ctx, rooms.HashSecret(other[0].Token))
	if err != nil {
		t.Fatal(err)
	}
	if code := call(http.MethodDelete, base+"/"+l2.ID, admin, "", nil); code != http.StatusNotFound {
		t.Fatalf("revoking another commune's link here: %d", code)
	}
	if code := call(http.MethodGet, "/api/v1/communes/99999/links", admin, "", nil); code != http.StatusNotFound {
		t.Fatalf("unknown commune: %d", code)
	}

	if code := call(http.MethodDelete, base+"/"+id, admin, "", nil); code != http.StatusNoContent {
		t.Fatalf("revoke: %d", code)
	}
	if code := declare(); code != http.StatusUnauthorized {
		t.Fatalf("the revoked link's next declaration: %d, want 401 at once", code)
	}
	if code := call(http.MethodGet, base, admin, "", &list); code != http.StatusOK || len(list) != 1 || list[0].State != "revoked" || list[0].RevokedAt == nil {
		t.Fatalf("after revoking: %d %+v", code, list)
	}
	es, err := st.AuditLog(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range es {
		if e.Target == "56001" && strings.HasPrefix(e.Actor, "Préfecture") {
			actions = append(actions, e.Action)
		}
	}
	if strings.Join(actions, ",") != "link_revoked,link_created" {
		t.Fatalf("audit of 56001's links by the préfecture: %v", actions)
	}
}
