package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/term"

	"crisisroom/access"
	"crisisroom/app"
	"crisisroom/mainlog"
	"crisisroom/rooms"
)

const adminUsage = `usage:
  crisisroom admin create --login NAME [--name "Display Name"] [--admin=false] [--data DIR]
  crisisroom admin passwd --login NAME [--data DIR]
  crisisroom admin disable --login NAME [--data DIR]
  crisisroom admin enable --login NAME [--data DIR]
  crisisroom admin member --login NAME --event SLUG --role operator|participant|observer|none|inherit [--data DIR]
The password is read from the terminal without echo (asked twice), or else from the first line of standard input.`

// cliActor is who the audit log says acted from the terminal.
const cliActor = "cli"

// adminCmd manages staff accounts from the terminal: it is how the first
// administrator exists, and how one gets back in after losing a password.
type adminCmd struct {
	stdin io.Reader
	// params is the password hashing cost; zero: access.DefaultParams
	// (tests use a cheaper one).
	params access.Params
}

func (c adminCmd) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if c.params == (access.Params{}) {
		c.params = access.DefaultParams()
	}
	if len(args) == 0 || !slices.Contains([]string{"create", "passwd", "member", "disable", "enable"}, args[0]) {
		return fmt.Errorf("%s", adminUsage)
	}
	action := args[0]
	cfg := app.DefaultConfig()
	fs := flag.NewFlagSet("admin "+action, flag.ContinueOnError)
	fs.SetOutput(stderr)
	envErr := cfg.Bind(fs)
	loginFlag := fs.String("login", "", "the account's login")
	name := fs.String("name", "", "create: the name shown in rooms and audit trails (default: the login)")
	isAdmin := fs.Bool("admin", true, "create: administrator of every event (false: a staff account whose memberships say where it belongs)")
	event := fs.String("event", "", "member: the event's slug")
	roleFlag := fs.String("role", "", "member: operator, participant or observer; none takes the user out of the event and the events below it, inherit drops the event's own membership (the parent's role applies again)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("admin %s: unexpected argument %q", action, fs.Arg(0))
	}
	if err := envErr(); err != nil {
		return err
	}
	login, err := access.NormalizeLogin(*loginFlag)
	if err != nil {
		return fmt.Errorf("--login: %w", err)
	}
	var role access.Role
	if action == "member" {
		if role, err = memberRole(*roleFlag); err != nil {
			return err
		}
		if *event == "" {
			return fmt.Errorf("admin member: --event is required")
		}
	}
	store, err := app.OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	st := store.Access()
	switch action {
	case "create":
		if *name == "" {
			*name = login
		}
		return c.create(ctx, st, login, strings.TrimSpace(*name), *isAdmin, stdout, stderr)
	case "passwd":
		return c.passwd(ctx, st, login, stdout, stderr)
	case "disable", "enable":
		return adminDisable(ctx, st, login, action == "disable", stdout)
	}
	chain, err := eventChain(ctx, store.Mainlog(), *event)
	if err != nil {
		return err
	}
	if role == access.None && len(chain) == 1 {
		// Nothing above a root event to block: dropping the row says
		// the same and keeps the memberships list short.
		role = ""
	}
	return adminMember(ctx, st, login, *event, role, stdout)
}

// memberRole parses --role for a membership: admin is an account-wide
// right (admin create), guests and declarants come from links. "none" is
// what an administrator means by removing someone from a sub-event: a
// stored None, since a deleted membership would inherit the parent's
// role again; "inherit" is that deletion.
func memberRole(s string) (access.Role, error) {
	switch s {
	case "none":
		return access.None, nil
	case "inherit":
		return "", nil
	}
	r, ok := access.ParseRole(s)
	if !ok || (r != access.Operator && r != access.Participant && r != access.Observer) {
		return "", fmt.Errorf("--role %q: operator, participant, observer, none or inherit", s)
	}
	return r, nil
}

func (c adminCmd) create(ctx context.Context, st access.Store, login, name string, isAdmin bool, stdout, stderr io.Writer) error {
	// Refused before the password is asked for.
	if _, err := st.UserByLogin(ctx, login); err == nil {
		return fmt.Errorf("login %q already exists (crisisroom admin passwd resets its password)", login)
	} else if !errors.Is(err, access.ErrNotFound) {
		return err
	}
	hash, err := c.newPassword(stderr)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	u := access.User{ID: rooms.NewID(), Login: login, Name: name, Admin: isAdmin, PasswordHash: hash, CreatedAt: now}
	if err := st.CreateUser(ctx, u); errors.Is(err, access.ErrExists) {
		return fmt.Errorf("login %q already exists", login)
	} else if err != nil {
		return err
	}
	kind := "staff"
	if isAdmin {
		kind = "admin"
	}
	if err := st.Audit(ctx, access.AuditEntry{At: now, Actor: cliActor, Action: "user_created", Target: login, Detail: kind}); err != nil {
		return fmt.Errorf("account created, but the audit log failed: %w", err)
	}
	fmt.Fprintf(stdout, "%s account %q created (id %s)\n", kind, login, u.ID)
	return nil
}

// passwd resets a password and ends the account's sessions and API
// tokens (app.EndAccess): a reset is what one does when a password may be
// known to someone else, and a token minted by that someone must not
// outlive it.
func (c adminCmd) passwd(ctx context.Context, st access.Store, login string, stdout, stderr io.Writer) error {
	u, err := st.UserByLogin(ctx, login)
	if errors.Is(err, access.ErrNotFound) {
		return fmt.Errorf("no account %q", login)
	} else if err != nil {
		return err
	}
	hash, err := c.newPassword(stderr)
	if err != nil {
		return err
	}
	if err := st.SetPassword(ctx, u.ID, hash); err != nil {
		return err
	}
	now := time.Now().UTC()
	ended, err := app.EndAccess(ctx, st, u.ID, now)
	if err != nil {
		return fmt.Errorf("password changed, but ending the sessions and tokens failed: %w", err)
	}
	what := fmt.Sprintf("%d sessions ended, %d tokens revoked", ended.Sessions, len(ended.Tokens))
	if err := st.Audit(ctx, access.AuditEntry{At: now, Actor: cliActor, Action: "password_reset", Target: login, Detail: what}); err != nil {
		return fmt.Errorf("password changed, but the audit log failed: %w", err)
	}
	fmt.Fprintf(stdout, "password of %q changed; %s\n", login, what)
	return nil
}

// adminDisable disables an account and ends its sessions and tokens
// (app.DisableAccount), or enables it again: its password works again,
// its old sessions and tokens stay ended. A running server refuses them
// from their next request; the sockets it already holds open are only
// closed when done through the API (POST /api/v1/users/{id}/disable):
// this process cannot reach them.
func adminDisable(ctx context.Context, st access.Store, login string, disable bool, stdout io.Writer) error {
	u, err := st.UserByLogin(ctx, login)
	if errors.Is(err, access.ErrNotFound) {
		return fmt.Errorf("no account %q", login)
	} else if err != nil {
		return err
	}
	now := time.Now().UTC()
	e := access.AuditEntry{At: now, Actor: cliActor, Action: "user_enabled", Target: login}
	if disable {
		ended, err := app.DisableAccount(ctx, st, u.ID, now)
		if err != nil {
			return err
		}
		e.Action, e.Detail = "user_disabled", fmt.Sprintf("%d sessions ended, %d tokens revoked", ended.Sessions, len(ended.Tokens))
	} else if err := st.SetDisabled(ctx, u.ID, time.Time{}); err != nil {
		return err
	}
	if err := st.Audit(ctx, e); err != nil {
		return fmt.Errorf("account %s, but the audit log failed: %w", strings.TrimPrefix(e.Action, "user_"), err)
	}
	if disable {
		fmt.Fprintf(stdout, "%q disabled; %s\n", login, e.Detail)
	} else {
		fmt.Fprintf(stdout, "%q enabled (its former sessions and tokens stay ended)\n", login)
	}
	return nil
}

func adminMember(ctx context.Context, st access.Store, login, event string, role access.Role, stdout io.Writer) error {
	u, err := st.UserByLogin(ctx, login)
	if errors.Is(err, access.ErrNotFound) {
		return fmt.Errorf("no account %q", login)
	} else if err != nil {
		return err
	}
	if err := st.SetMembership(ctx, access.Membership{UserID: u.ID, Event: event, Role: role}); err != nil {
		return err
	}
	e := access.AuditEntry{At: time.Now().UTC(), Actor: cliActor, Action: "membership_set", Target: login,
		Detail: fmt.Sprintf("event=%s role=%s", event, role)}
	if role == "" {
		e.Action, e.Detail = "membership_removed", "event="+event
	}
	if err := st.Audit(ctx, e); err != nil {
		return fmt.Errorf("membership changed, but the audit log failed: %w", err)
	}
	switch role {
	case "":
		fmt.Fprintf(stdout, "%q is no longer a member of %s\n", login, event)
	case access.None:
		fmt.Fprintf(stdout, "%q is out of %s and the events below it, whatever they hold above\n", login, event)
	default:
		fmt.Fprintf(stdout, "%q is %s in %s\n", login, role, event)
	}
	return nil
}

// newPassword reads, validates and hashes a new password.
func (c adminCmd) newPassword(stderr io.Writer) (string, error) {
	pw, err := readPassword(c.stdin, stderr)
	if err != nil {
		return "", err
	}
	if err := access.ValidatePassword(pw); err != nil {
		return "", err
	}
	return access.HashPasswordParams(pw, c.params)
}

// readPassword reads a password from the terminal without echo, twice, or
// from the first line of a non-terminal stdin (scripts, tests).
func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		ask := func(prompt string) (string, error) {
			fmt.Fprint(stderr, prompt)
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(stderr)
			return string(b), err
		}
		pw, err := ask(fmt.Sprintf("Password (at least %d characters): ", access.MinPasswordLen))
		if err != nil {
			return "", err
		}
		if err := access.ValidatePassword(pw); err != nil {
			return "", err
		}
		again, err := ask("Password again: ")
		if err != nil {
			return "", err
		}
		if again != pw {
			return "", errors.New("the two passwords differ")
		}
		return pw, nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	// Only the line's end is cut: spaces may be part of a password.
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", errors.New("no password on standard input (give it as the first line)")
	}
	return line, nil
}

// eventChain is an event's slug followed by its ancestors'. The standing
// event is accepted before the server has created it (a fresh install is
// set up before its first start); any other must exist.
func eventChain(ctx context.Context, ml mainlog.Store, slug string) ([]string, error) {
	evs, err := ml.Events(ctx)
	if err != nil {
		return nil, err
	}
	parent := map[string]string{}
	for _, e := range evs {
		parent[e.Slug] = e.Parent
	}
	if _, ok := parent[slug]; !ok {
		if slug == access.MainEvent {
			return []string{slug}, nil
		}
		return nil, fmt.Errorf("unknown event %q", slug)
	}
	chain := []string{slug}
	for p := parent[slug]; p != "" && len(chain) <= len(evs); p = parent[p] {
		chain = append(chain, p)
	}
	return chain, nil
}
