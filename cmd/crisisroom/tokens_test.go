package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"crisisroom/access"
	"crisisroom/mainlog"
	"crisisroom/rooms"
)

func TestTokens(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := runAdmin(t, dir, "correct horse battery\n", "create", "--login", "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := runAdmin(t, dir, "correct horse battery\n", "create", "--login", "op", "--admin=false"); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dir)
	st := s.Access()
	at := time.Now().UTC()
	for _, e := range []mainlog.Event{
		{Slug: "main", Title: "Crise", Kind: "strategique", Room: "main", CreatedAt: at, Tags: mainlog.DefaultTags()},
		{Slug: "main-tac", Parent: "main", Title: "Tactique", Kind: "tactique", Room: "main-tac", CreatedAt: at, Tags: mainlog.DefaultTags()},
		{Slug: "other", Title: "Autre", Kind: "strategique", Room: "other", CreatedAt: at, Tags: mainlog.DefaultTags()},
	} {
		if err := s.Mainlog().CreateEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := runAdmin(t, dir, "", "member", "--login", "op", "--event", "main", "--role", "operator"); err != nil {
		t.Fatal(err)
	}
	tokensCmd := func(args ...string) (string, string, error) {
		var stdout, stderr bytes.Buffer
		err := run(ctx, append(append([]string{"tokens"}, args...), "--data", dir), &stdout, &stderr)
		return stdout.String(), stderr.String(), err
	}

	// An admin's observer token for one event, default lifetime.
	out, msg, err := tokensCmd("create", "--user", "Alice", "--role", "observer", "--event", "main", "--label", "tableau de bord")
	if err != nil {
		t.Fatal(err)
	}
	plain := strings.TrimSuffix(out, "\n")
	if raw, err := base64.RawURLEncoding.DecodeString(plain); err != nil || len(raw) != rooms.TokenBytes || strings.Contains(plain, "\n") {
		t.Fatalf("stdout %q is not one 256-bit base64url token", out)
	}
	if !strings.Contains(msg, "shown this once") {
		t.Fatalf("stderr = %q", msg)
	}
	tok, err := st.TokenByHash(ctx, rooms.HashSecret(plain))
	if err != nil {
		t.Fatalf("the printed token's hash is not stored: %v", err)
	}
	alice, _ := st.UserByLogin(ctx, "alice")
	if tok.UserID != alice.ID || tok.Role != access.Observer || tok.Event != "main" || tok.Label != "tableau de bord" ||
		!tok.RevokedAt.IsZero() || tok.ExpiresAt.Sub(tok.CreatedAt) != 24*time.Hour || time.Since(tok.CreatedAt) > time.Minute {
		t.Fatalf("stored token = %+v", tok)
	}
	if e := lastAudit(t, st); e.Actor != "cli" || e.Action != "token_created" || e.Target != tok.ID || strings.Contains(e.Detail, plain) {
		t.Fatalf("audit = %+v (and it must not hold the secret)", e)
	}

	// A global admin token; an operator's token in its event and, by
	// inheritance, in a sub-event.
	for _, args := range [][]string{
		{"--user", "alice", "--role", "admin", "--expires", "8760h"},
		{"--user", "op", "--role", "operator", "--event", "main", "--expires", "2h"},
		{"--user", "op", "--role", "participant", "--event", "main-tac"},
	} {
		if _, _, err := tokensCmd(append([]string{"create"}, args...)...); err != nil {
			t.Fatalf("create %v: %v", args, err)
		}
	}

	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"unknown user":           {[]string{"--user", "nobody", "--role", "observer", "--event", "main"}, "no such account"},
		"bad role":               {[]string{"--user", "alice", "--role", "root"}, "--role"},
		"guest token":            {[]string{"--user", "alice", "--role", "guest", "--event", "main"}, "links"},
		"declarant token":        {[]string{"--user", "alice", "--role", "declarant", "--event", "main"}, "links"},
		"operator goes admin":    {[]string{"--user", "op", "--role", "admin", "--event", "main"}, "cannot be admin"},
		"operator goes global":   {[]string{"--user", "op", "--role", "observer"}, "no role in every event"},
		"operator elsewhere":     {[]string{"--user", "op", "--role", "observer", "--event", "other"}, "no role in event other"},
		"unknown event":          {[]string{"--user", "alice", "--role", "observer", "--event", "nowhere"}, "unknown event"},
		"no expiry":              {[]string{"--user", "alice", "--role", "observer", "--expires", "0s"}, "--expires"},
		"expiry over a year":     {[]string{"--user", "alice", "--role", "observer", "--expires", "8761h"}, "--expires"},
		"label with a newline":   {[]string{"--user", "alice", "--role", "observer", "--label", "a\nb"}, "--label"},
		"stray argument":         {[]string{"--user", "alice", "--role", "observer", "extra"}, "unexpected argument"},
		"no user given (no one)": {[]string{"--role", "observer"}, "no such account"},
	} {
		if _, _, err := tokensCmd(append([]string{"create"}, c.args...)...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.want)
		}
	}
	if list, _ := st.Tokens(ctx); len(list) != 4 {
		t.Fatalf("%d tokens stored, want 4 (refusals store nothing)", len(list))
	}

	out, _, err = tokensCmd("list")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "ID") {
		t.Fatalf("list = %q, want a header and 4 tokens", out)
	}
	if l := lines[1]; !strings.Contains(l, tok.ID) || !strings.Contains(l, "alice") || !strings.Contains(l, "observer") ||
		!strings.Contains(l, "main") || !strings.Contains(l, "active") || !strings.Contains(l, "tableau de bord") {
		t.Fatalf("first token's line = %q", l)
	}
	if strings.Contains(out, plain) {
		t.Fatal("list shows a secret")
	}

	if out, _, err := tokensCmd("revoke", tok.ID); err != nil || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke: %q, %v", out, err)
	}
	if got, _ := st.TokenByHash(ctx, rooms.HashSecret(plain)); got.RevokedAt.IsZero() {
		t.Fatal("token not revoked in the store")
	}
	if e := lastAudit(t, st); e.Action != "token_revoked" || e.Target != tok.ID {
		t.Fatalf("audit = %+v", e)
	}
	if out, _, _ := tokensCmd("list"); !strings.Contains(strings.Split(out, "\n")[1], "revoked") {
		t.Fatalf("list after revoke = %q", out)
	}
	if _, _, err := tokensCmd("revoke", "nope"); err == nil || !strings.Contains(err.Error(), "no token") {
		t.Fatalf("revoke unknown: %v", err)
	}
	if _, _, err := tokensCmd("revoke"); err == nil {
		t.Fatal("revoke without an ID succeeded")
	}
	if _, _, err := tokensCmd("mint"); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Fatalf("unknown action: %v", err)
	}
	if _, err := st.TokenByHash(ctx, []byte("x")); !errors.Is(err, access.ErrNotFound) {
		t.Fatal(err)
	}
}
