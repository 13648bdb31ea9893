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
