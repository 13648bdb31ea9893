package access

import (
	"fmt"
	"slices"
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

// TokenPrincipal is what an API token may do now: in each event, the
// lesser of its own role and its user's current one there, so that a
// token never outlives the rights it was minted with. chainOf gives an
// event's chain (the event, then its ancestors). It is false when the
// token gives nothing any more: its user is disabled, or holds no role
// where the token applies (a global token of a user no longer admin).
func TokenPrincipal(t Token, u User, ms []Membership, chainOf func(string) []string) (*Principal, bool) {
	if !u.DisabledAt.IsZero() {
		return nil, false
	}
	up := UserPrincipal(u, ms)
	p := &Principal{Kind: KindToken, ID: t.ID, UserID: u.ID, Name: u.Name + " (jeton " + t.Label + ")", Roles: map[string]Role{}}
	if t.Event == "" {
		p.Global = Lesser(t.Role, up.Global)
		return p, p.Global != ""
	}
	held, _ := up.RoleIn(chainOf(t.Event))
	if p.Roles[t.Event] = Lesser(t.Role, held); p.Roles[t.Event] == "" {
		return nil, false
	}
	if u.Admin {
		return p, true // an admin is one in every sub-event too
	}
	// A sub-event where the user holds another role directly: the token
	// is capped there by that role (RoleIn finds the nearest), and shut
	// out where the user is (None).
	for _, m := range ms {
		if m.Event != t.Event && slices.Contains(chainOf(m.Event), t.Event) {
			if p.Roles[m.Event] = Lesser(t.Role, m.Role); p.Roles[m.Event] == "" {
				p.Roles[m.Event] = None
			}
		}
	}
	return p, true
}

// Lesser is the less powerful of two account roles, "" if either is not
// one (so Lesser(r, "") is "": no role at all is less than any).
func Lesser(a, b Role) Role {
	if rank[a] == 0 || rank[b] == 0 {
		return ""
	}
	if rank[a] <= rank[b] {
		return a
	}
	return b
}
