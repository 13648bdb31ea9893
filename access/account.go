package access

import (
	"fmt"
	"strings"
)

// MaxLoginLen bounds a login.
const MaxLoginLen = 64

// NormalizeLogin returns the stored form of a login: trimmed, lower-case
// ASCII letters, digits and . _ - @, starting with a letter or a digit.
// Logins are compared in this form, so "Alice" and "alice" are one account
// (ASCII only, so that no two spellings of one name fold differently in
// Go, SQLite and PostgreSQL).
func NormalizeLogin(s string) (string, error) {
	s = strings.TrimSpace(s)
	for i := range len(s) {
		if s[i] >= 0x80 {
			// Before lower-casing: Unicode would fold the Kelvin sign
			// to a k, making two spellings of one login.
			return "", fmt.Errorf("login %q: ASCII letters, digits and . _ - @ only", s)
		}
	}
	s = strings.ToLower(s)
	if s == "" || len(s) > MaxLoginLen {
		return "", fmt.Errorf("login %q: 1 to %d characters", s, MaxLoginLen)
	}
	for i, c := range s {
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || !strings.ContainsRune("._-@", c)) {
			return "", fmt.Errorf("login %q: letters, digits and . _ - @ only, starting with a letter or a digit", s)
		}
	}
	return s, nil
}

// rank orders the roles an account can hold; a token may carry its user's
// role or a lesser one.
var rank = map[Role]int{Observer: 1, Participant: 2, Operator: 3, Admin: 4}

// CheckTokenGrant says whether an API token of role may be made for u,
// whose memberships are ms, in the event chain (the event followed by its
// ancestors; empty for a token valid in every event). A token never
// carries more than its user holds: only an admin's token may be global
// or admin; guests and declarants come from links, not tokens. Refusals
// wrap ErrForbidden.
func CheckTokenGrant(u User, ms []Membership, role Role, chain []string) error {
	if _, ok := rank[role]; !ok {
		return fmt.Errorf("%w: a token's role is admin, operator, participant or observer, not %q (guests and declarants get links)", ErrForbidden, role)
	}
	if !u.DisabledAt.IsZero() {
		return fmt.Errorf("%w: account %s is disabled", ErrForbidden, u.Login)
	}
	p := UserPrincipal(u, ms)
	var held Role
	if len(chain) == 0 {
		held = p.Global
	} else {
		held, _ = p.RoleIn(chain)
	}
	if rank[held] < rank[role] {
		where := "every event"
		if len(chain) > 0 {
			where = "event " + chain[0]
		}
		if held == "" {
			return fmt.Errorf("%w: %s has no role in %s", ErrForbidden, u.Login, where)
		}
		return fmt.Errorf("%w: %s is %s in %s, a token cannot be %s", ErrForbidden, u.Login, held, where, role)
	}
	return nil
}

// UserPrincipal is a staff account's principal: global admin or not, and
// its role in each event it is a member of.
func UserPrincipal(u User, ms []Membership) *Principal {
	p := &Principal{Kind: KindSession, ID: u.ID, UserID: u.ID, Name: u.Name, Roles: map[string]Role{}}
	if u.Admin {
		p.Global = Admin
	}
	for _, m := range ms {
		p.Roles[m.Event] = m.Role
	}
	return p
}
