// Package accesstest is the conformance suite every access.Store must pass.
package accesstest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"crisisroom/access"
)

// t0 is to the millisecond: both stores keep times to the millisecond.
var t0 = time.Date(2026, 11, 26, 9, 0, 0, 123_000_000, time.UTC)

func user(id, login string) access.User {
	return access.User{ID: id, Login: login, Name: "Nom " + id, PasswordHash: "$argon2id$hash-of-" + id, CreatedAt: t0}
}

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// mustUsers creates users, failing the test on error.
func mustUsers(t *testing.T, st access.Store, us ...access.User) {
	t.Helper()
	for _, u := range us {
		if err := st.CreateUser(context.Background(), u); err != nil {
			t.Fatalf("create user %s: %v", u.Login, err)
		}
	}
}

// Run runs the suite; newStore returns a fresh, empty store per subtest.
func Run(t *testing.T, newStore func(t *testing.T) access.Store) {
	t.Run("Users", func(t *testing.T) { users(t, newStore(t)) })
	t.Run("Memberships", func(t *testing.T) { memberships(t, newStore(t)) })
	t.Run("Sessions", func(t *testing.T) { sessions(t, newStore(t)) })
	t.Run("Tokens", func(t *testing.T) { tokens(t, newStore(t)) })
	t.Run("Audit", func(t *testing.T) { audit(t, newStore(t)) })
}

func users(t *testing.T, st access.Store) {
	ctx := context.Background()
	alice := user("u1", "Alice")
	alice.Admin = true
	bob := user("u2", "bob")
	bob.DisabledAt = t0.Add(time.Hour)
	mustUsers(t, st, alice, bob)

	want := alice
	want.Login = "alice" // stored lower-case
	for _, login := range []string{"alice", "ALICE", "Alice"} {
		got, err := st.UserByLogin(ctx, login)
		if err != nil || got != want {
			t.Fatalf("UserByLogin(%q) = %+v, %v; want %+v", login, got, err, want)
		}
	}
	if got, err := st.UserByID(ctx, "u2"); err != nil || got != bob {
		t.Fatalf("UserByID(u2) = %+v, %v; want %+v (every field kept)", got, err, bob)
	}
	for name, err := range map[string]error{
		"duplicate login, other case": st.CreateUser(ctx, user("u3", "ALICE")),
		"duplicate login":             st.CreateUser(ctx, user("u4", "bob")),
		"duplicate id":                st.CreateUser(ctx, user("u1", "carol")),
	} {
		if !errors.Is(err, access.ErrExists) {
			t.Errorf("%s: %v, want ErrExists", name, err)
		}
	}
	if _, err := st.UserByLogin(ctx, "carol"); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("unknown login: %v", err)
	}
	if _, err := st.UserByID(ctx, "u9"); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}

	mustUsers(t, st, user("u0", "aaron"))
	list, err := st.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var logins []string
	for _, u := range list {
		logins = append(logins, u.Login)
	}
	if !slices.Equal(logins, []string{"aaron", "alice", "bob"}) || list[1] != want {
		t.Fatalf("Users = %+v, want aaron, alice, bob with their fields", list)
	}

	if err := st.SetPassword(ctx, "u1", "$argon2id$new"); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.UserByID(ctx, "u1"); got.PasswordHash != "$argon2id$new" {
		t.Fatalf("hash after SetPassword = %q", got.PasswordHash)
	}
	if got, _ := st.UserByID(ctx, "u2"); got.PasswordHash != bob.PasswordHash {
		t.Fatal("SetPassword changed another user")
	}
	if err := st.SetPassword(ctx, "u9", "x"); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("SetPassword of an unknown user: %v", err)
	}

	off := t0.Add(2 * time.Hour)
	if err := st.SetDisabled(ctx, "u1", off); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.UserByID(ctx, "u1"); !got.DisabledAt.Equal(off) {
		t.Fatalf("disabled_at after SetDisabled = %v, want %v", got.DisabledAt, off)
	}
	if err := st.SetDisabled(ctx, "u2", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.UserByID(ctx, "u2"); !got.DisabledAt.IsZero() {
		t.Fatalf("disabled_at after enabling = %v, want zero", got.DisabledAt)
	}
	if got, _ := st.UserByID(ctx, "u0"); !got.DisabledAt.IsZero() {
		t.Fatal("SetDisabled changed another user")
	}
	if err := st.SetDisabled(ctx, "u9", off); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("SetDisabled of an unknown user: %v", err)
	}
}

func memberships(t *testing.T, st access.Store) {
	ctx := context.Background()
	mustUsers(t, st, user("u1", "alice"), user("u2", "bob"))
	for _, m := range []access.Membership{
		{UserID: "u1", Event: "main", Role: access.Participant},
		{UserID: "u1", Event: "main-tactique", Role: access.Observer},
		{UserID: "u2", Event: "main", Role: access.Observer},
		{UserID: "u1", Event: "main", Role: access.Operator}, // upsert
	} {
		if err := st.SetMembership(ctx, m); err != nil {
			t.Fatalf("SetMembership(%+v): %v", m, err)
		}
	}
	got, err := st.Memberships(ctx, "u1")
	want := []access.Membership{{UserID: "u1", Event: "main", Role: access.Operator}, {UserID: "u1", Event: "main-tactique", Role: access.Observer}}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("Memberships(u1) = %+v, %v; want %+v", got, err, want)
	}
	got, err = st.EventMembers(ctx, "main")
	want = []access.Membership{{UserID: "u1", Event: "main", Role: access.Operator}, {UserID: "u2", Event: "main", Role: access.Observer}}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("EventMembers(main) = %+v, %v; want %+v", got, err, want)
	}
	if got, err := st.EventMembers(ctx, "nobody-here"); err != nil || len(got) != 0 {
		t.Fatalf("EventMembers of an empty event = %+v, %v", got, err)
	}

	// An empty role removes; removing what is not there is no error.
	if err := st.SetMembership(ctx, access.Membership{UserID: "u1", Event: "main"}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetMembership(ctx, access.Membership{UserID: "u1", Event: "main"}); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
	got, err = st.Memberships(ctx, "u1")
	if err != nil || !slices.Equal(got, []access.Membership{{UserID: "u1", Event: "main-tactique", Role: access.Observer}}) {
		t.Fatalf("after removal: %+v, %v", got, err)
	}
	if got, _ := st.EventMembers(ctx, "main"); len(got) != 1 || got[0].UserID != "u2" {
		t.Fatalf("EventMembers after removal: %+v", got)
	}
	// None is kept, not deleted: it is what stops a parent's role from
	// reaching a sub-event the user was taken out of.
	out := access.Membership{UserID: "u1", Event: "main-tactique", Role: access.None}
	if err := st.SetMembership(ctx, out); err != nil {
		t.Fatalf("SetMembership(none): %v", err)
	}
	if got, err := st.Memberships(ctx, "u1"); err != nil || !slices.Equal(got, []access.Membership{out}) {
		t.Fatalf("after none: %+v, %v; want %+v", got, err, out)
	}
	if got, err := st.EventMembers(ctx, "main-tactique"); err != nil || !slices.Equal(got, []access.Membership{out}) {
		t.Fatalf("EventMembers after none: %+v, %v", got, err)
	}
	if err := st.SetMembership(ctx, access.Membership{UserID: "u9", Event: "main", Role: access.Observer}); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("membership of an unknown user: %v", err)
	}
	if got, err := st.Memberships(ctx, "u9"); err != nil || len(got) != 0 {
		t.Fatalf("memberships of an unknown user: %+v, %v", got, err)
	}
}

func sessions(t *testing.T, st access.Store) {
	ctx := context.Background()
	mustUsers(t, st, user("u1", "alice"), user("u2", "bob"))
	sess := func(n int, uid string, expires time.Time) access.Session {
		return access.Session{Hash: hash(fmt.Sprint("cookie", n)), UserID: uid, CSRF: fmt.Sprint("csrf", n), CreatedAt: t0,
			ExpiresAt: expires, IP: "192.0.2.1", UserAgent: "Firefox/140"}
	}
	later := t0.Add(12 * time.Hour)
	all := []access.Session{sess(1, "u1", later), sess(2, "u1", later), sess(3, "u1", t0.Add(time.Minute)), sess(4, "u2", later)}
	for _, s := range all {
		if err := st.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.SessionByHash(ctx, all[0].Hash)
	if err != nil || !equalSession(got, all[0]) {
		t.Fatalf("SessionByHash = %+v, %v; want %+v", got, err, all[0])
	}
	if _, err := st.SessionByHash(ctx, hash("nope")); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("unknown session: %v", err)
	}
	if err := st.CreateSession(ctx, sess(9, "u9", later)); err == nil {
		t.Fatal("a session of an unknown user was stored")
	}

	if err := st.DeleteSession(ctx, all[0].Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SessionByHash(ctx, all[0].Hash); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("deleted session: %v", err)
	}
	if err := st.DeleteSession(ctx, all[0].Hash); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}

	// Expired sessions are dropped, and only they.
	if n, err := st.DeleteExpiredSessions(ctx, t0.Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredSessions = %d, %v; want 1", n, err)
	}
	if _, err := st.SessionByHash(ctx, all[2].Hash); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("expired session still there: %v", err)
	}
	if err := st.CreateSession(ctx, sess(3, "u1", later)); err != nil {
		t.Fatal(err)
	}

	// Logout everywhere: alice's two sessions, not bob's.
	if n, err := st.DeleteUserSessions(ctx, "u1"); err != nil || n != 2 {
		t.Fatalf("DeleteUserSessions(u1) = %d, %v; want 2", n, err)
	}
	for _, s := range all[1:3] {
		if _, err := st.SessionByHash(ctx, s.Hash); !errors.Is(err, access.ErrNotFound) {
			t.Fatalf("alice's session survived logout everywhere: %v", err)
		}
	}
	if _, err := st.SessionByHash(ctx, all[3].Hash); err != nil {
		t.Fatalf("bob's session after alice logged out: %v", err)
	}
	if n, err := st.DeleteUserSessions(ctx, "u1"); err != nil || n != 0 {
		t.Fatalf("DeleteUserSessions again = %d, %v; want 0", n, err)
	}
}

func equalSession(a, b access.Session) bool {
	return bytes.Equal(a.Hash, b.Hash) && a.UserID == b.UserID && a.CSRF == b.CSRF && a.CreatedAt.Equal(b.CreatedAt) &&
		a.ExpiresAt.Equal(b.ExpiresAt) && a.IP == b.IP && a.UserAgent == b.UserAgent &&
		a.CreatedAt.Location() == time.UTC && a.ExpiresAt.Location() == time.UTC
}

func equalToken(a, b access.Token) bool {
	return a.ID == b.ID && bytes.Equal(a.Hash, b.Hash) && a.UserID == b.UserID && a.Role == b.Role && a.Event == b.Event &&
		a.Label == b.Label && a.CreatedAt.Equal(b.CreatedAt) && a.ExpiresAt.Equal(b.ExpiresAt) && a.RevokedAt.Equal(b.RevokedAt) &&
		a.CreatedAt.Location() == time.UTC && a.ExpiresAt.Location() == time.UTC
}

func tokens(t *testing.T, st access.Store) {
	ctx := context.Background()
	mustUsers(t, st, user("u1", "alice"))
	tok := func(id string, at time.Time, event string) access.Token {
		return access.Token{ID: id, Hash: hash("secret-" + id), UserID: "u1", Role: access.Observer, Event: event,
			Label: "tableau de bord " + id, CreatedAt: at, ExpiresAt: at.Add(24 * time.Hour)}
	}
	a, b := tok("t2", t0, "main"), tok("t1", t0.Add(time.Second), "")
	for _, x := range []access.Token{a, b} {
		if err := st.CreateToken(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CreateToken(ctx, tok("t1", t0, "")); !errors.Is(err, access.ErrExists) {
		t.Fatalf("duplicate token id: %v, want ErrExists", err)
	}
	bad := tok("t3", t0, "")
	bad.UserID = "u9"
	if err := st.CreateToken(ctx, bad); err == nil {
		t.Fatal("a token of an unknown user was stored")
	}
	got, err := st.TokenByHash(ctx, a.Hash)
	if err != nil || !equalToken(got, a) {
		t.Fatalf("TokenByHash = %+v, %v; want %+v", got, err, a)
	}
	if _, err := st.TokenByHash(ctx, hash("nope")); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
	list, err := st.Tokens(ctx)
	if err != nil || len(list) != 2 || !equalToken(list[0], a) || !equalToken(list[1], b) {
		t.Fatalf("Tokens = %+v, %v; want t2 then t1 (oldest first)", list, err)
	}

	at := t0.Add(time.Hour)
	if err := st.RevokeToken(ctx, "t2", at); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeToken(ctx, "t2", at.Add(time.Hour)); err != nil {
		t.Fatalf("revoking twice: %v", err)
	}
	got, err = st.TokenByHash(ctx, a.Hash)
	if err != nil || !got.RevokedAt.Equal(at) {
		t.Fatalf("revoked token = %+v, %v; want revoked at %v (the first time)", got, err, at)
	}
	if got, _ := st.TokenByHash(ctx, b.Hash); !got.RevokedAt.IsZero() {
		t.Fatal("revoking t2 revoked t1")
	}
	if err := st.RevokeToken(ctx, "nope", at); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("revoking an unknown token: %v", err)
	}
	if list, _ := st.Tokens(ctx); len(list) != 2 || list[0].RevokedAt.IsZero() {
		t.Fatalf("Tokens after revocation = %+v (revoked ones are still listed)", list)
	}
}

func audit(t *testing.T, st access.Store) {
	ctx := context.Background()
	if got, err := st.AuditLog(ctx, 10); err != nil || len(got) != 0 {
		t.Fatalf("empty log = %+v, %v", got, err)
	}
	var appended []access.AuditEntry
	for i := range 5 {
		e := access.AuditEntry{At: t0.Add(time.Duration(i) * time.Second), Actor: "alice", Action: "login",
			Target: fmt.Sprint("target", i), IP: "192.0.2.1", Detail: fmt.Sprint("détail ", i)}
		if i == 3 {
			e.At = t0 // out of time order: the log keeps append order
			e.Action, e.Target, e.IP, e.Detail = "login_failed", "", "", ""
		}
		if err := st.Audit(ctx, e); err != nil {
			t.Fatal(err)
		}
		appended = append(appended, e)
	}
	got, err := st.AuditLog(ctx, 3)
	if err != nil || len(got) != 3 {
		t.Fatalf("AuditLog(3) = %+v, %v", got, err)
	}
	for i, e := range got {
		w := appended[4-i]
		if e.Actor != w.Actor || e.Action != w.Action || e.Target != w.Target || e.IP != w.IP || e.Detail != w.Detail ||
			!e.At.Equal(w.At) || e.At.Location() != time.UTC {
			t.Fatalf("entry %d = %+v, want %+v (newest first)", i, e, w)
		}
		if i > 0 && e.ID >= got[i-1].ID {
			t.Fatalf("IDs not decreasing: %d then %d", got[i-1].ID, e.ID)
		}
	}
	if all, err := st.AuditLog(ctx, 0); err != nil || len(all) != 5 || all[4].Target != "target0" {
		t.Fatalf("AuditLog(0) = %d entries, %v; want all 5", len(all), err)
	}
	if all, err := st.AuditLog(ctx, 100); err != nil || len(all) != 5 {
		t.Fatalf("AuditLog(100) = %d entries, %v", len(all), err)
	}
}
