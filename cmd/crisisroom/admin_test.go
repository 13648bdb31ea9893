package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"crisisroom/access"
	"crisisroom/mainlog"
	"crisisroom/store/sqlite"
)

// openStore opens the data dir's database as the server would, after a
// command has closed it.
func openStore(t *testing.T, dir string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(dir, "crisisroom.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// runAdmin runs `crisisroom admin ARGS --data dir` with stdin, hashing
// at the test cost (TestAdminCreate checks the default one).
func runAdmin(t *testing.T, dir, stdin string, args ...string) (string, error) {
	t.Helper()
	return runAdminParams(t, dir, stdin, access.TestParams(), args...)
}

func runAdminParams(t *testing.T, dir, stdin string, p access.Params, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := adminCmd{stdin: strings.NewReader(stdin), params: p}.run(context.Background(), append(args, "--data", dir), &stdout, &stderr)
	return stdout.String(), err
}

// lastAudit returns the newest audit entry.
func lastAudit(t *testing.T, st access.Store) access.AuditEntry {
	t.Helper()
	log, err := st.AuditLog(context.Background(), 1)
	if err != nil || len(log) != 1 {
		t.Fatalf("audit log: %+v, %v", log, err)
	}
	return log[0]
}

func TestAdminCreate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// The real command's cost (zero params: the default).
	out, err := runAdminParams(t, dir, "correct horse battery\n", access.Params{}, "create", "--login", " Alice ", "--name", "Alice Martin")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `admin account "alice" created`) {
		t.Fatalf("stdout = %q", out)
	}
	// A staff account, from a script whose last line has no newline.
	if _, err := runAdmin(t, dir, "  spaces count too  ", "create", "--login", "bob", "--admin=false"); err != nil {
		t.Fatal(err)
	}

	for name, c := range map[string]struct {
		stdin string
		args  []string
		want  string
	}{
		"login taken":    {"another good password\n", []string{"create", "--login", "ALICE"}, "already exists"},
		"short password": {"short\n", []string{"create", "--login", "carol"}, "at least 12 characters"},
		"no password":    {"", []string{"create", "--login", "carol"}, "no password on standard input"},
		"empty line":     {"\nsecond line is not read\n", []string{"create", "--login", "carol"}, "no password"},
		"bad login":      {"correct horse battery\n", []string{"create", "--login", "carol martin"}, "--login"},
		"no login":       {"correct horse battery\n", []string{"create"}, "--login"},
		"no action":      {"", nil, "usage"},
		"stray argument": {"correct horse battery\n", []string{"create", "--login", "carol", "extra"}, "unexpected argument"},
	} {
		if _, err := runAdmin(t, dir, c.stdin, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.want)
		}
	}

	st := openStore(t, dir).Access()
	u, err := st.UserByLogin(ctx, "alice")
	if err != nil || !u.Admin || u.Name != "Alice Martin" || u.ID == "" || time.Since(u.CreatedAt) > time.Minute {
		t.Fatalf("alice = %+v, %v", u, err)
	}
	if ok, err := access.CheckPassword(u.PasswordHash, "correct horse battery"); !ok || err != nil {
		t.Fatalf("alice's password does not check: %v, %v", ok, err)
	}
	if !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q: not the default argon2id cost", u.PasswordHash)
	}
	bob, err := st.UserByLogin(ctx, "bob")
	if err != nil || bob.Admin || bob.Name != "bob" {
		t.Fatalf("bob = %+v, %v", bob, err)
	}
	if ok, _ := access.CheckPassword(bob.PasswordHash, "  spaces count too  "); !ok {
		t.Fatal("bob's password lost its spaces")
	}
	if _, err := st.UserByLogin(ctx, "carol"); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("a refused carol was created: %v", err)
	}
	if users, _ := st.Users(ctx); len(users) != 2 {
		t.Fatalf("%d accounts, want 2", len(users))
	}
	if e := lastAudit(t, st); e.Actor != "cli" || e.Action != "user_created" || e.Target != "bob" || e.Detail != "staff" {
		t.Fatalf("audit = %+v", e)
	}
}

// TestAdminPasswd: a reset changes the password and ends every session.
func TestAdminPasswd(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := runAdmin(t, dir, "correct horse battery\n", "create", "--login", "alice"); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dir)
	st := s.Access()
	u, _ := st.UserByLogin(ctx, "alice")
	for _, h := range []string{"a", "b"} {
		if err := st.CreateSession(ctx, access.Session{Hash: []byte(h), UserID: u.ID, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	out, err := runAdmin(t, dir, "battery staple horse\n", "passwd", "--login", "Alice")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "2 sessions ended") {
		t.Fatalf("stdout = %q", out)
	}
	u, _ = st.UserByLogin(ctx, "alice")
	if ok, _ := access.CheckPassword(u.PasswordHash, "battery staple horse"); !ok {
		t.Fatal("new password does not check")
	}
	if ok, _ := access.CheckPassword(u.PasswordHash, "correct horse battery"); ok {
		t.Fatal("old password still checks")
	}
	if _, err := st.SessionByHash(ctx, []byte("a")); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("session survived the reset: %v", err)
	}
	if e := lastAudit(t, st); e.Action != "password_reset" || e.Target != "alice" || e.Actor != "cli" {
		t.Fatalf("audit = %+v", e)
	}
	if _, err := runAdmin(t, dir, "battery staple horse\n", "passwd", "--login", "nobody"); err == nil || !strings.Contains(err.Error(), "no account") {
		t.Fatalf("unknown login: %v", err)
	}
	if _, err := runAdmin(t, dir, "short\n", "passwd", "--login", "alice"); !errors.Is(err, access.ErrPasswordTooShort) {
		t.Fatalf("short password: %v", err)
	}
}

// TestAdminMember goes through run, as the binary does.
func TestAdminMember(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := runAdmin(t, dir, "correct horse battery\n", "create", "--login", "op", "--admin=false"); err != nil {
		t.Fatal(err)
	}
	member := func(args ...string) (string, error) {
		var stdout, stderr bytes.Buffer
		err := run(ctx, append([]string{"admin", "member", "--data", dir}, args...), &stdout, &stderr)
		return stdout.String(), err
	}
	// The standing event is accepted before the server first created it.
	if out, err := member("--login", "op", "--event", "main", "--role", "operator"); err != nil || !strings.Contains(out, "operator in main") {
		t.Fatalf("member: %q, %v", out, err)
	}
	st := openStore(t, dir).Access()
	u, _ := st.UserByLogin(ctx, "op")
	if ms, err := st.Memberships(ctx, u.ID); err != nil || len(ms) != 1 || ms[0].Role != access.Operator || ms[0].Event != "main" {
		t.Fatalf("memberships = %+v, %v", ms, err)
	}
	if e := lastAudit(t, st); e.Action != "membership_set" || e.Detail != "event=main role=operator" {
		t.Fatalf("audit = %+v", e)
	}
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"admin is account-wide": {[]string{"--login", "op", "--event", "main", "--role", "admin"}, "--role"},
		"guests come by link":   {[]string{"--login", "op", "--event", "main", "--role", "guest"}, "--role"},
		"unknown event":         {[]string{"--login", "op", "--event", "nowhere", "--role", "observer"}, "unknown event"},
		"no event":              {[]string{"--login", "op", "--role", "observer"}, "--event"},
		"unknown login":         {[]string{"--login", "nobody", "--event", "main", "--role", "observer"}, "no account"},
	} {
		if _, err := member(c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.want)
		}
	}
	if _, err := member("--login", "op", "--event", "main", "--role", "none"); err != nil {
		t.Fatal(err)
	}
	if ms, _ := st.Memberships(ctx, u.ID); len(ms) != 0 {
		t.Fatalf("memberships after removal = %+v", ms)
	}
	if e := lastAudit(t, st); e.Action != "membership_removed" {
		t.Fatalf("audit = %+v", e)
	}
}

// liveToken stores a live API token for login and returns it.
func liveToken(t *testing.T, st access.Store, login string) access.Token {
	t.Helper()
	ctx := context.Background()
	u, err := st.UserByLogin(ctx, login)
	if err != nil {
		t.Fatal(err)
	}
	tk := access.Token{ID: "t-" + login, Hash: []byte("hash-" + login), UserID: u.ID, Role: access.Admin,
		CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	if err := st.CreateToken(ctx, tk); err != nil {
		t.Fatal(err)
	}
	return tk
}

// TestAdminPasswdRevokesTokens: a reset is for a compromised account; a
// token its intruder minted must not outlive it.
func TestAdminPasswdRevokesTokens(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := runAdmin(t, dir, "correct horse battery\n", "create", "--login", "alice"); err != nil {
		t.Fatal(err)
	}
	st := openStore(t, dir).Access()
	tk := liveToken(t, st, "alice")
	out, err := runAdmin(t, dir, "battery staple horse\n", "passwd", "--login", "alice")
	if err != nil || !strings.Contains(out, "1 tokens revoked") {
		t.Fatalf("passwd: %q, %v", out, err)
	}
	if got, err := st.TokenByHash(ctx, tk.Hash); err != nil || got.RevokedAt.IsZero() {
		t.Fatalf("token after the reset: %+v, %v; want revoked", got, err)
	}
	if e := lastAudit(t, st); e.Action != "password_reset" || !strings.Contains(e.Detail, "1 tokens revoked") {
		t.Fatalf("audit = %+v", e)
	}
}

// TestAdminDisable: disable ends the account's sessions and tokens and
// refuses its password; enable gives the password back, not the rest.
func TestAdminDisable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := runAdmin(t, dir, "correct horse battery\n", "create", "--login", "alice"); err != nil {
		t.Fatal(err)
	}
	st := openStore(t, dir).Access()
	tk := liveToken(t, st, "alice")
	u, _ := st.UserByLogin(ctx, "alice")
	if err := st.CreateSession(ctx, access.Session{Hash: []byte("s"), UserID: u.ID, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	out, err := runAdmin(t, dir, "", "disable", "--login", "Alice")
	if err != nil || !strings.Contains(out, "1 sessions ended, 1 tokens revoked") {
		t.Fatalf("disable: %q, %v", out, err)
	}
	if u, _ := st.UserByLogin(ctx, "alice"); u.DisabledAt.IsZero() {
		t.Fatal("account not disabled")
	}
	if got, _ := st.TokenByHash(ctx, tk.Hash); got.RevokedAt.IsZero() {
		t.Fatal("token not revoked")
	}
	if _, err := st.SessionByHash(ctx, []byte("s")); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("session survived: %v", err)
	}
	if e := lastAudit(t, st); e.Action != "user_disabled" || e.Target != "alice" || e.Actor != "cli" {
		t.Fatalf("audit = %+v", e)
	}
	if _, err := runAdmin(t, dir, "", "enable", "--login", "alice"); err != nil {
		t.Fatal(err)
	}
	if u, _ := st.UserByLogin(ctx, "alice"); !u.DisabledAt.IsZero() {
		t.Fatal("account still disabled")
	}
	if e := lastAudit(t, st); e.Action != "user_enabled" {
		t.Fatalf("audit = %+v", e)
	}
	if _, err := runAdmin(t, dir, "", "disable", "--login", "nobody"); err == nil || !strings.Contains(err.Error(), "no account") {
		t.Fatalf("unknown login: %v", err)
	}
}

// TestAdminMemberNoneInSubEvent: taking a member of the parent out of a
// sub-event stores a None membership, since deleting the row would let
// the parent's role through again; inherit deletes it.
func TestAdminMemberNoneInSubEvent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := runAdmin(t, dir, "correct horse battery\n", "create", "--login", "op", "--admin=false"); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dir)
	if err := s.Mainlog().CreateEvent(ctx, mainlog.Event{Slug: "crue", Parent: "main", Title: "Crue", Kind: mainlog.EventKinds[0],
		Room: "crue", CreatedAt: time.Now().UTC(), CreatedBy: "test"}); err != nil {
		t.Fatal(err)
	}
	member := func(args ...string) {
		t.Helper()
		if _, err := runAdmin(t, dir, "", append([]string{"member", "--login", "op"}, args...)...); err != nil {
			t.Fatalf("member %v: %v", args, err)
		}
	}
	member("--event", "main", "--role", "participant")
	member("--event", "crue", "--role", "none")
	st := s.Access()
	u, _ := st.UserByLogin(ctx, "op")
	ms, err := st.Memberships(ctx, u.ID)
	if err != nil || len(ms) != 2 || ms[0].Event != "crue" || ms[0].Role != access.None {
		t.Fatalf("memberships = %+v, %v; want none in crue", ms, err)
	}
	if err := access.Decide(access.UserPrincipal(u, ms), access.LogRead, []string{"crue", "main"}); err == nil {
		t.Fatal("taken out of crue, still reads its log")
	}
	member("--event", "crue", "--role", "inherit")
	if ms, _ := st.Memberships(ctx, u.ID); len(ms) != 1 || ms[0].Event != "main" {
		t.Fatalf("memberships after inherit = %+v", ms)
	}
}
