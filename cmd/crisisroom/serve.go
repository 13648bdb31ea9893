package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"crisisroom/app"
)

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := app.DefaultConfig()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	envErr := cfg.Bind(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := envErr(); err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)

	be, err := app.OpenBackendsLog(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer be.Close()
	a, err := app.New(ctx, cfg, be, log)
	if err != nil {
		return err
	}
	// Every way out but the orderly one below still stops the app (its
	// SFU sockets, TURN, background loops).
	shutDown := false
	defer func() {
		if !shutDown {
			_ = a.Shutdown(context.Background())
		}
	}()
	adminURL, inviteURL, err := a.Bootstrap(ctx)
	if err != nil {
		return fmt.Errorf("first start: %w", err)
	}
	if adminURL != "" {
		fmt.Fprintf(stdout, "\nSalle de crise %q créée / crisis room created.\n  Animateur (host):  %s\n  Invitation:        %s\n\n", app.MainRoom, adminURL, inviteURL)
		fmt.Fprintln(stdout, "Keep these links: they are shown once. `crisisroom links room main` prints new ones.")
	}

	udp, tcp, err := a.ListenMedia()
	if err != nil {
		return fmt.Errorf("the rooms' SFU (--sfu-udp, --sfu-tcp): %w", err)
	}
	if udp != nil {
		log.Info("sfu listening", "udp", udp.String(), "tcp", fmt.Sprint(tcp), "room_mode", cfg.RoomMode, "mesh_max", cfg.MeshMax)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	errc := make(chan error, 2)
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("metrics listener (--metrics-addr): %w", err)
		}
		msrv := &http.Server{Handler: a.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second}
		defer msrv.Close()
		log.Info("metrics listening", "addr", mln.Addr().String())
		go func() { errc <- msrv.Serve(mln) }()
	}
	log.Info("listening", "addr", ln.Addr().String(), "public_url", cfg.PublicBase(), "data", cfg.DataDir)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: telling clients to reconnect")
	shutDown = true
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Shutdown(sctx); err != nil {
		log.Warn("websocket drain", "err", err)
	}
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
