package main

import (
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"crisisroom/app"
	"crisisroom/rooms"
)

// parseInterspersed parses flags that may come after positional arguments
// (`links communes 56121 56003 --format csv`), which package flag alone
// does not allow.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

const linksUsage = `usage:
  crisisroom links room NAME [--role participant|host] [--ttl 720h] [--data DIR]
  crisisroom links communes [--all | CODE...] [--format csv|text] [--ttl 2160h] --territory FILE [--communes CSV] [--data DIR]`

// links prints fresh links; their secrets are shown this once.
func links(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "list" || args[0] == "revoke") {
		return linksManage(ctx, args, stdout, stderr)
	}
	if len(args) == 0 || (args[0] != "room" && args[0] != "communes") {
		return fmt.Errorf("%s\n%s", linksUsage, strings.TrimPrefix(linksManageUsage, "usage:\n"))
	}
	kind := args[0]
	cfg := app.DefaultConfig()
	fs := flag.NewFlagSet("links "+kind, flag.ContinueOnError)
	fs.SetOutput(stderr)
	envErr := cfg.Bind(fs)
	role := fs.String("role", rooms.RoleParticipant, "room links: role granted, participant or host")
	label := fs.String("label", "", "room links: a note on who the link is for")
	ttl := fs.Duration("ttl", 0, "lifetime of the link (default 720h for rooms, 2160h for communes)")
	all := fs.Bool("all", false, "commune links: one per commune of the territory")
	format := fs.String("format", "text", "commune links: csv (code;nom;url;token) or text")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	if err := envErr(); err != nil {
		return err
	}
	be, err := app.OpenBackends(ctx, cfg)
	if err != nil {
		return err
	}
	defer be.Close()
	a, err := app.New(ctx, cfg, be, newLogger(io.Discard, cfg.LogLevel))
	if err != nil {
		return err
	}
	defer a.Shutdown(context.Background())
	if _, _, err := a.Bootstrap(ctx); err != nil {
		return err
	}
	if kind == "room" {
		if len(pos) != 1 {
			return fmt.Errorf("links room: name one room, e.g. `crisisroom links room main`")
		}
		if *role != rooms.RoleParticipant && *role != rooms.RoleHost {
			return fmt.Errorf("--role %q: participant or host", *role)
		}
		if *ttl == 0 {
			*ttl = 30 * 24 * time.Hour
		}
		u, err := a.NewRoomLink(ctx, pos[0], *role, *label, *ttl)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, u)
		return nil
	}
	if *all == (len(pos) > 0) {
		return fmt.Errorf("links communes: give either --all or commune codes")
	}
	if *format != "csv" && *format != "text" {
		return fmt.Errorf("--format %q: csv or text", *format)
	}
	if *ttl == 0 {
		*ttl = 90 * 24 * time.Hour
	}
	ls, err := a.NewCommuneLinks(ctx, pos, *ttl)
	if err != nil {
		return err
	}
	if *format == "text" {
		for _, l := range ls {
			fmt.Fprintf(stdout, "%s %s\t%s\n", l.Code, l.Name, l.URL)
		}
		return nil
	}
	w := csv.NewWriter(stdout)
	w.Comma = ';'
	_ = w.Write([]string{"code", "nom", "url", "token"})
	for _, l := range ls {
		_ = w.Write([]string{l.Code, l.Name, l.URL, l.Token})
	}
	w.Flush()
	return w.Error()
}
