package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"crisisroom/app"
	"crisisroom/rooms"
)

// links room NAME: print a fresh invite link (the secret is shown once).
func links(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "room" {
		return fmt.Errorf("usage: crisisroom links room NAME [--data DIR] [--role participant|host] [--ttl 720h]")
	}
	args = args[1:]
	var name string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		name, args = args[0], args[1:]
	}
	cfg := app.DefaultConfig()
	fs := flag.NewFlagSet("links room", flag.ContinueOnError)
	fs.SetOutput(stderr)
	envErr := cfg.Bind(fs)
	role := fs.String("role", rooms.RoleParticipant, "role the link grants: participant or host")
	ttl := fs.Duration("ttl", 30*24*time.Hour, "lifetime of the link (required to be positive)")
	label := fs.String("label", "", "a note on who the link is for")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := envErr(); err != nil {
		return err
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
	}
	if name == "" {
		return fmt.Errorf("links room: which room? e.g. `crisisroom links room main`")
	}
	if *role != rooms.RoleParticipant && *role != rooms.RoleHost {
		return fmt.Errorf("--role %q: participant or host", *role)
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
	if _, _, err := a.Bootstrap(ctx); err != nil {
		return err
	}
	u, err := a.NewRoomLink(ctx, name, *role, *label, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, u)
	return nil
}
