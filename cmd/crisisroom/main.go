// Command crisisroom is the whole crisis room in one binary.
//
//	crisisroom [serve] [flags]          run the server (default)
//	crisisroom links room NAME [flags]  print a new invite link for a room
//	crisisroom bench join [flags]       measure join latency
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	_ "time/tzdata" // the distroless image has no zoneinfo; Europe/Paris must still load
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "crisisroom:", err)
		os.Exit(1)
	}
}

// subcommands maps a name to its entry point.
var subcommands = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) error{
	"serve": serve,
	"links": links,
	"bench": bench,
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	name := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		name, args = args[0], args[1:]
	}
	if name == "help" {
		fmt.Fprintln(stdout, "usage: crisisroom [serve|links|bench] [flags]; crisisroom SUBCOMMAND -h for flags")
		return nil
	}
	f, ok := subcommands[name]
	if !ok {
		return fmt.Errorf("unknown subcommand %q (serve, links, bench)", name)
	}
	return f(ctx, args, stdout, stderr)
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
