// Command crisisroom is the whole crisis room in one binary.
//
//	crisisroom [serve] [flags]          run the server (default)
//	crisisroom links room NAME [flags]  print a new invite link for a room
//	crisisroom admin create --login X   create an administrator (password from the terminal)
//	crisisroom tokens create [flags]    print a new API token
//	crisisroom bench join [flags]       measure join latency
package main

import (
	"context"
	"crisisroom/app"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
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
	"serve":     serve,
	"links":     links,
	"bench":     bench,
	"territory": territoryCmd,
	"admin":     adminCmd{stdin: os.Stdin}.run,
	"tokens":    tokens,
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	name := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		name, args = args[0], args[1:]
	}
	if name == "help" {
		if len(args) > 0 && args[0] == "config" {
			return configTable(stdout)
		}
		fmt.Fprintln(stdout, "usage: crisisroom [serve|links|admin|tokens|territory|bench] [flags]; crisisroom SUBCOMMAND -h for flags; crisisroom help config")
		return nil
	}
	f, ok := subcommands[name]
	if !ok {
		return fmt.Errorf("unknown subcommand %q (serve, links, admin, tokens, territory, bench)", name)
	}
	return f(ctx, args, stdout, stderr)
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// configTable prints the settings of `serve` as the Markdown table of the
// README, so the README is generated from the code, not kept by hand.
func configTable(w io.Writer) error {
	cfg := app.DefaultConfig()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.Bind(fs)
	fmt.Fprintln(w, "| flag | environment | default | meaning |")
	fmt.Fprintln(w, "|---|---|---|---|")
	fs.VisitAll(func(f *flag.Flag) {
		usage, env := f.Usage, ""
		if i := strings.LastIndex(usage, " (env "); i >= 0 {
			usage, env = usage[:i], strings.TrimSuffix(usage[i+6:], ")")
		}
		fmt.Fprintf(w, "| `--%s` | `%s` | `%s` | %s |\n", f.Name, env, f.DefValue, usage)
	})
	return nil
}
