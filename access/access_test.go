package access

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestDecide(t *testing.T) {
	admin := &Principal{Kind: KindSession, ID: "u1", Global: Admin}
	op := &Principal{Kind: KindSession, ID: "u2", Roles: map[string]Role{"main": Operator}}
	subOnly := &Principal{Kind: KindSession, ID: "u3", Roles: map[string]Role{"crue": Participant}}
	mixed := &Principal{Kind: KindSession, ID: "u4", Roles: map[string]Role{"main": Participant, "crue": Operator}}
	removed := &Principal{Kind: KindSession, ID: "u6", Roles: map[string]Role{"main": Operator, "crue": None}}
	adminRemoved := &Principal{Kind: KindSession, ID: "u7", Global: Admin, Roles: map[string]Role{"crue": None}}
	adminMember := &Principal{Kind: KindSession, ID: "u5", Global: Admin, Roles: map[string]Role{"main": Participant}}
	watcher := LinkPrincipal("l1", "ARS", "main", Guest, "", true)
	guest := LinkPrincipal("l2", "SDIS", "main", Guest, "", false)
	mayor := LinkPrincipal("l3", "Mairie", "", Declarant, "56121", false)
	sub := []string{"crue", "main"} // the sub-event "crue" below "main"
	cases := []struct {
		name  string
		p     *Principal
		act   Action
		chain []string
		want  error
	}{
		{"nobody, public", nil, Public, nil, nil},
		{"nobody, authenticated", nil, Authenticated, nil, ErrUnauthenticated},
		{"nobody, log", nil, LogRead, []string{"main"}, ErrUnauthenticated},
		{"admin anywhere", admin, LogManage, []string{"other"}, nil},
		{"admin users", admin, UsersManage, nil, nil},
		{"an admin's membership does not demote it", adminMember, RoomAdmit, []string{"main"}, nil},
		{"operator users", op, UsersManage, nil, ErrForbidden},
		{"operator inherits into a sub-event", op, LogManage, sub, nil},
		{"operator of main, another event", op, LogRead, []string{"other"}, ErrForbidden},
		{"sub-event member, main", subOnly, LogRead, []string{"main"}, ErrForbidden},
		{"sub-event member, its event", subOnly, LogWrite, sub, nil},
		{"direct membership wins over inherited", mixed, LogManage, sub, nil},
		{"participant of main manages nothing", mixed, LogManage, []string{"main"}, ErrForbidden},
		{"removed from a sub-event: nothing inherited", removed, LogRead, sub, ErrForbidden},
		{"removed from a sub-event: nothing below it", removed, MapWatch, []string{"crue-nord", "crue", "main"}, ErrForbidden},
		{"removed from a sub-event, still in its parent", removed, LogManage, []string{"main"}, nil},
		{"removed from a sub-event, listing from the parent", removed, EventsList, nil, nil},
		{"an admin is never removed", adminRemoved, LogManage, sub, nil},
		{"watch-only guest joins", watcher, RoomJoin, []string{"main"}, nil},
		{"watch-only guest sends no camera", watcher, RoomSend, []string{"main"}, ErrForbidden},
		{"watch-only guest draws nothing", watcher, RoomAnnotate, []string{"main"}, ErrForbidden},
		{"guest sends camera", guest, RoomSend, []string{"main"}, nil},
		{"guest reads no log", guest, LogRead, []string{"main"}, ErrForbidden},
		{"guest admits nobody", guest, RoomAdmit, []string{"main"}, ErrForbidden},
		{"declarant declares", mayor, DeclDeclare, []string{MainEvent}, nil},
		{"declarant exports nothing", mayor, DeclRead, []string{MainEvent}, ErrForbidden},
		{"declarant joins no room", mayor, RoomJoin, []string{"main"}, ErrForbidden},
		{"events list from any membership", subOnly, EventsList, nil, nil},
		{"unknown action", admin, Action("nuke"), nil, ErrForbidden},
	}
	for _, c := range cases {
		if got := Decide(c.p, c.act, c.chain); !errors.Is(got, c.want) && got != c.want {
			t.Errorf("%s: Decide = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestRoleInNone: a None membership reads as no role at all, for every
// caller that shows or compares roles.
func TestRoleInNone(t *testing.T) {
	p := &Principal{Kind: KindSession, ID: "u1", Roles: map[string]Role{"main": Participant, "crue": None}}
	if r, ok := p.RoleIn([]string{"crue", "main"}); ok || r != "" {
		t.Fatalf("RoleIn(crue) = %q, %v; want no role", r, ok)
	}
	if r, ok := p.RoleIn([]string{"main"}); !ok || r != Participant {
		t.Fatalf("RoleIn(main) = %q, %v", r, ok)
	}
	if _, ok := ParseRole(string(None)); ok {
		t.Fatal("none parsed as a role one may act as")
	}
}

func TestParseRole(t *testing.T) {
	if r, ok := ParseRole("host"); !ok || r != Operator {
		t.Fatalf("host = %q %v", r, ok)
	}
	for _, r := range Roles {
		if got, ok := ParseRole(string(r)); !ok || got != r {
			t.Fatalf("%s = %q %v", r, got, ok)
		}
	}
	if _, ok := ParseRole("root"); ok {
		t.Fatal("root accepted")
	}
}

// Every action a route or message names is in the matrix (or is Public
// or Authenticated): a typo would silently deny.
func TestTablesNameKnownActions(t *testing.T) {
	known := func(a Action) bool { _, ok := matrix[a]; return ok || a == Public || a == Authenticated }
	for k, r := range routes {
		if !known(r.Action) {
			t.Errorf("route %s: unknown action %s", k, r.Action)
		}
	}
	for k, a := range messages {
		if !known(a) {
			t.Errorf("message %s: unknown action %s", k, a)
		}
	}
}

// docs/access.md shows the matrix and the route table as the code has
// them. CRISISROOM_UPDATE_DOCS=1 rewrites the generated parts.
func TestDocsMatchCode(t *testing.T) {
	const path = "../docs/access.md"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for _, part := range []struct{ name, body string }{{"matrix", MatrixMarkdown()}, {"routes", RoutesMarkdown()}} {
		begin, end := "<!-- begin "+part.name+" (generated) -->\n", "<!-- end "+part.name+" -->"
		i, j := strings.Index(doc, begin), strings.Index(doc, end)
		if i < 0 || j < i {
			t.Fatalf("%s: markers for %s missing", path, part.name)
		}
		if doc[i+len(begin):j] != part.body {
			if os.Getenv("CRISISROOM_UPDATE_DOCS") == "1" {
				doc = doc[:i+len(begin)] + part.body + doc[j:]
				continue
			}
			t.Errorf("%s: the %s table differs from the code; run CRISISROOM_UPDATE_DOCS=1 go test ./access", path, part.name)
		}
	}
	if os.Getenv("CRISISROOM_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
