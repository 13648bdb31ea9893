package access

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNormalizeLogin(t *testing.T) {
	for in, want := range map[string]string{
		"alice":                      "alice",
		"  Alice.Martin ":            "alice.martin",
		"j-p_dupont@morbihan.gouv":   "j-p_dupont@morbihan.gouv",
		"007":                        "007",
		"":                           "",
		".alice":                     "",
		"alice martin":               "",
		"élodie":                     "",
		"alice;drop":                 "",
		strings.Repeat("a", 64):      strings.Repeat("a", 64),
		strings.Repeat("a", 65):      "",
		"ALICE\u212a":                "", // Kelvin sign: folds to k in Unicode, refused here
		"-alice":                     "",
		"bob@":                       "bob@",
		"x":                          "x",
		"Z":                          "z",
		"a.b":                        "a.b",
		"a..b":                       "a..b",
		"a\tb":                       "",
		"tab\t":                      "tab",
		"ok_1":                       "ok_1",
		"UPPER.CASE-Login@Domain.fr": "upper.case-login@domain.fr",
	} {
		got, err := NormalizeLogin(in)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("NormalizeLogin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestCheckTokenGrant(t *testing.T) {
	admin := User{Login: "root", Admin: true}
	op := User{Login: "op"}
	ms := []Membership{{Event: "main", Role: Operator}, {Event: "main-com", Role: Observer}, {Event: "main-out", Role: None}}
	for _, c := range []struct {
		name  string
		u     User
		role  Role
		chain []string
		ok    bool
	}{
		{"admin global admin", admin, Admin, nil, true},
		{"admin event observer", admin, Observer, []string{"x"}, true},
		{"admin cannot mint a guest", admin, Guest, nil, false},
		{"admin cannot mint a declarant", admin, Declarant, []string{"main"}, false},
		{"unknown role", admin, Role("root"), nil, false},
		{"operator in its event", op, Operator, []string{"main"}, true},
		{"operator lesser role", op, Participant, []string{"main"}, true},
		{"operator inherited in a sub-event", op, Operator, []string{"main-tac", "main"}, true},
		{"direct membership wins over inherited", op, Operator, []string{"main-com", "main"}, false},
		{"observer from direct membership", op, Observer, []string{"main-com", "main"}, true},
		{"operator cannot be admin", op, Admin, []string{"main"}, false},
		{"operator cannot go global", op, Operator, nil, false},
		{"no membership", op, Observer, []string{"other"}, false},
		{"removed from a sub-event", op, Observer, []string{"main-out", "main"}, false},
		{"a token cannot be none", admin, None, []string{"main"}, false},
		{"disabled admin", User{Login: "old", Admin: true, DisabledAt: time.Now()}, Observer, nil, false},
	} {
		err := CheckTokenGrant(c.u, ms, c.role, c.chain)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrForbidden)) {
			t.Errorf("%s: %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

// TestTokenPrincipal: a token is worth the lesser of its own role and its
// user's current one, event by event, and nothing once that is nothing.
func TestTokenPrincipal(t *testing.T) {
	chains := map[string][]string{"flood": {"flood"}, "flood-east": {"flood-east", "flood"}, "fire": {"fire"}}
	chainOf := func(ev string) []string { return chains[ev] }
	bob := User{ID: "u2", Login: "bob", Name: "Bob"}
	op := Token{ID: "t1", UserID: "u2", Role: Operator, Event: "flood", Label: "script"}
	in := func(p *Principal, ev string) Role { r, _ := p.RoleIn(chainOf(ev)); return r }

	p, ok := TokenPrincipal(op, bob, []Membership{{"u2", "flood", Operator}, {"u2", "flood-east", Observer}}, chainOf)
	if !ok || in(p, "flood") != Operator || in(p, "flood-east") != Observer || in(p, "fire") != "" {
		t.Fatalf("operator token of an operator: %+v, %v; want operator in flood, observer in flood-east (her own role there), nothing in fire", p, ok)
	}
	if p.Kind != KindToken || p.ID != "t1" || p.UserID != "u2" {
		t.Fatalf("principal %+v: want the token's kind and id, the user's id", p)
	}
	if p, ok := TokenPrincipal(op, bob, []Membership{{"u2", "flood", Participant}}, chainOf); !ok || in(p, "flood") != Participant || in(p, "flood-east") != Participant {
		t.Fatalf("after a demotion to participant: %+v, %v; want participant", p, ok)
	}
	if p, ok := TokenPrincipal(op, bob, []Membership{{"u2", "fire", Operator}}, chainOf); ok {
		t.Fatalf("after the membership's removal: %+v; want nothing", p)
	}
	obs := op
	obs.Role = Observer
	if p, ok := TokenPrincipal(obs, bob, []Membership{{"u2", "flood", Operator}}, chainOf); !ok || in(p, "flood") != Observer {
		t.Fatalf("observer token of an operator: %+v, %v; want observer (never more than minted)", p, ok)
	}
	admin := bob
	admin.Admin = true
	global := Token{ID: "t2", UserID: "u2", Role: Operator}
	if p, ok := TokenPrincipal(global, admin, nil, chainOf); !ok || p.Global != Operator {
		t.Fatalf("global operator token of an admin: %+v, %v; want global operator", p, ok)
	}
	if p, ok := TokenPrincipal(global, bob, []Membership{{"u2", "flood", Operator}}, chainOf); ok {
		t.Fatalf("global token of a former admin: %+v; want nothing", p)
	}
	admin.DisabledAt = time.Unix(1, 0)
	if p, ok := TokenPrincipal(global, admin, nil, chainOf); ok {
		t.Fatalf("token of a disabled account: %+v; want nothing", p)
	}
}

func TestPrincipalKeys(t *testing.T) {
	p := UserPrincipal(User{ID: "u1"}, nil)
	p.Session = SessionID([]byte("0123456789abcdef"))
	if got := p.Keys(); len(got) != 2 || got[0] != "session:u1" || got[1] != "login:"+p.Session || len(p.Session) != 24 {
		t.Fatalf("session keys = %v", got)
	}
	tok := &Principal{Kind: KindToken, ID: "t1"}
	if got := tok.Keys(); len(got) != 1 || got[0] != "token:t1" {
		t.Fatalf("token keys = %v", got)
	}
}
