package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"crisisroom/access"
	"crisisroom/app"
)

const tokensUsage = `usage:
  crisisroom tokens create --user LOGIN --role ROLE [--event SLUG] [--expires 24h] [--label TEXT] [--data DIR]
  crisisroom tokens list [--data DIR]
  crisisroom tokens revoke ID [--data DIR]`

// Token lifetimes: expiry is mandatory, a forgotten token must die.
const (
	defaultTokenTTL = 24 * time.Hour
	maxTokenTTL     = 365 * 24 * time.Hour
)

// tokens manages API tokens (Authorization: Bearer) from the terminal.
func tokens(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "create" && args[0] != "list" && args[0] != "revoke") {
		return fmt.Errorf("%s", tokensUsage)
	}
	action := args[0]
	cfg := app.DefaultConfig()
	fs := flag.NewFlagSet("tokens "+action, flag.ContinueOnError)
	fs.SetOutput(stderr)
	envErr := cfg.Bind(fs)
	userFlag := fs.String("user", "", "create: login of the account the token acts for")
	roleFlag := fs.String("role", "", "create: admin, operator, participant or observer (at most the account's own role)")
	event := fs.String("event", "", "create: the event the role holds in (and its sub-events); empty: every event (admins only)")
	ttl := fs.Duration("expires", defaultTokenTTL, "create: lifetime of the token, at most 8760h")
	label := fs.String("label", "", "create: what the token is for, shown in lists and audit trails")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	if err := envErr(); err != nil {
		return err
	}
	switch {
	case action == "revoke" && len(pos) != 1:
		return fmt.Errorf("tokens revoke: name one token ID (crisisroom tokens list shows them)")
	case action != "revoke" && len(pos) > 0:
		return fmt.Errorf("tokens %s: unexpected argument %q", action, pos[0])
	}
	var role access.Role
	if action == "create" {
		var ok bool
		if role, ok = access.ParseRole(*roleFlag); !ok {
			return fmt.Errorf("--role %q: admin, operator, participant or observer", *roleFlag)
		}
		if *ttl <= 0 || *ttl > maxTokenTTL {
			return fmt.Errorf("--expires %s: more than 0 and at most %s", *ttl, maxTokenTTL)
		}
		if len(*label) > 200 || strings.ContainsFunc(*label, unicode.IsControl) {
			return fmt.Errorf("--label: at most 200 bytes, no control characters")
		}
	}
	store, err := app.OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	st := store.Access()
	switch action {
	case "list":
		return listTokens(ctx, st, stdout)
	case "revoke":
		if err := st.RevokeToken(ctx, pos[0], time.Now().UTC()); errors.Is(err, access.ErrNotFound) {
			return fmt.Errorf("no token %q", pos[0])
		} else if err != nil {
			return err
		}
		if err := st.Audit(ctx, access.AuditEntry{At: time.Now().UTC(), Actor: cliActor, Action: "token_revoked", Target: pos[0]}); err != nil {
			return fmt.Errorf("token revoked, but the audit log failed: %w", err)
		}
		fmt.Fprintf(stdout, "token %s revoked\n", pos[0])
		return nil
	}

	login, err := access.NormalizeLogin(*userFlag)
	if err != nil {
		return fmt.Errorf("--user %q: no such account", *userFlag)
	}
	u, err := st.UserByLogin(ctx, login)
	if errors.Is(err, access.ErrNotFound) {
		return fmt.Errorf("--user %q: no such account", *userFlag)
	} else if err != nil {
		return err
	}
	var chain []string
	if *event != "" {
		if chain, err = eventChain(ctx, store.Mainlog(), *event); err != nil {
			return err
		}
	}
	plain, t, err := app.MintToken(ctx, st, app.TokenGrant{User: u, Role: role, Event: *event, Chain: chain, Label: *label, TTL: *ttl},
		cliActor, "", time.Now())
	if err != nil {
		return err
	}
	// The token alone on stdout, for scripts; the rest on stderr.
	fmt.Fprintln(stdout, plain)
	fmt.Fprintf(stderr, "token %s for %s: %s in %s until %s. It is shown this once; send it as `Authorization: Bearer TOKEN`.\n",
		t.ID, u.Login, role, eventName(t.Event), t.ExpiresAt.Format(time.RFC3339))
	return nil
}

func eventName(e string) string {
	if e == "" {
		return "every event"
	}
	return e
}

// listTokens prints every token, live or not, without their secrets
// (which are not kept).
func listTokens(ctx context.Context, st access.Store, stdout io.Writer) error {
	ts, err := st.Tokens(ctx)
	if err != nil {
		return err
	}
	us, err := st.Users(ctx)
	if err != nil {
		return err
	}
	logins := map[string]string{}
	for _, u := range us {
		logins[u.ID] = u.Login
	}
	now := time.Now()
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tUSER\tROLE\tEVENT\tEXPIRES\tSTATE\tLABEL")
	for _, t := range ts {
		state := "active"
		switch {
		case !t.RevokedAt.IsZero():
			state = "revoked " + t.RevokedAt.Format(time.RFC3339)
		case !now.Before(t.ExpiresAt):
			state = "expired"
		}
		ev := t.Event
		if ev == "" {
			ev = "*"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, logins[t.UserID], t.Role, ev, t.ExpiresAt.Format(time.RFC3339), state, t.Label)
	}
	return w.Flush()
}
