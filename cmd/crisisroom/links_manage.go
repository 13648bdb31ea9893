package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"crisisroom/access"
	"crisisroom/app"
	"crisisroom/rooms"
)

// A commune's link that leaks (forwarded, posted) is revoked and replaced:
// `links list 56121` shows its links, `links revoke --commune 56121` ends
// them, `links communes 56121` mints the new one. A server running on the
// same data refuses a link revoked here within a second (it remembers the
// links it has just checked for that long; see app/linkcache.go), and
// ends the seats of a revoked room or guest link within 5 s
// (rooms.WatchRevocations).
const linksManageUsage = `usage:
  crisisroom links list SCOPE... [--data DIR]             the links of communes (codes) or rooms (names), never their secrets
  crisisroom links revoke ID... [--data DIR]              revokes links by id (as listed)
  crisisroom links revoke --commune CODE... [--data DIR]  revokes every live link of these communes`

// linksManage lists or revokes links ("list" or "revoke" in args[0]).
func linksManage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	action := args[0]
	cfg := app.DefaultConfig()
	fs := flag.NewFlagSet("links "+action, flag.ContinueOnError)
	fs.SetOutput(stderr)
	envErr := cfg.Bind(fs)
	commune := fs.Bool("commune", false, "revoke: the arguments are commune codes, all of whose live links are revoked")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	if err := envErr(); err != nil {
		return err
	}
	if len(pos) == 0 {
		return fmt.Errorf("%s", linksManageUsage)
	}
	store, err := app.OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	now := time.Now().UTC()
	if action == "list" {
		return listLinks(ctx, store, pos, now, stdout)
	}
	ids := pos
	if *commune {
		if ids, err = liveCommuneLinks(ctx, store, pos, now); err != nil {
			return err
		}
		if len(ids) == 0 {
			return fmt.Errorf("no live link for %v", pos)
		}
	}
	for _, id := range ids {
		if err := store.RevokeLink(ctx, id, now); errors.Is(err, rooms.ErrNotFound) {
			return fmt.Errorf("no link %q (crisisroom links list SCOPE shows them)", id)
		} else if err != nil {
			return err
		}
		if err := store.Access().Audit(ctx, access.AuditEntry{At: now, Actor: cliActor, Action: "link_revoked", Target: id}); err != nil {
			return fmt.Errorf("link %s revoked, but the audit log failed: %w", id, err)
		}
		fmt.Fprintf(stdout, "link %s revoked\n", id)
	}
	return nil
}

func listLinks(ctx context.Context, st rooms.Store, scopes []string, now time.Time, stdout io.Writer) error {
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tKIND\tSCOPE\tROLE\tSTATE\tCREATED\tEXPIRES\tLABEL")
	for _, scope := range scopes {
		ls, err := st.Links(ctx, scope)
		if err != nil {
			return err
		}
		for _, l := range ls {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.ID, l.Kind, l.Scope, l.Role, l.State(now),
				l.CreatedAt.UTC().Format(time.RFC3339), l.ExpiresAt.UTC().Format(time.RFC3339), l.Label)
		}
	}
	return w.Flush()
}

// liveCommuneLinks returns the ids of the communes' links that still work.
func liveCommuneLinks(ctx context.Context, st rooms.Store, codes []string, now time.Time) ([]string, error) {
	var ids []string
	for _, code := range codes {
		ls, err := st.Links(ctx, code)
		if err != nil {
			return nil, err
		}
		for _, l := range ls {
			if l.Kind == app.KindCommune && l.State(now) == "active" {
				ids = append(ids, l.ID)
			}
		}
	}
	return ids, nil
}
