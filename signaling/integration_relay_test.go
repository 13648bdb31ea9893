package signaling_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"crisisroom/app"
	"crisisroom/rtcpeer"
	"crisisroom/turnserver"
)

// TestPionMeshRelayOnly: with the built-in TURN relay on, two relay-only
// pion peers use the ICE servers "joined" hands them (per-member TURN
// credentials) and connect, media and data, through the relay.
func TestPionMeshRelayOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), itTimeout)
	defer cancel()
	cfg := app.DefaultConfig()
	cfg.SFUUDP, cfg.SFUTCP = "127.0.0.1:0", "" // no fixed port: test processes run side by side
	cfg.DataDir = t.TempDir()
	cfg.TURNEnabled = true
	cfg.TURNListenUDP, cfg.TURNListenTCP = "127.0.0.1:0", "127.0.0.1:0"
	be, err := app.OpenBackends(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(ctx, cfg, be, slog.New(slog.DiscardHandler))
	if err != nil {
		be.Close()
		t.Fatal(err)
	}
	if _, _, err := a.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.Shutdown(sctx)
		srv.Close()
		be.Close()
	})
	s := &itServer{a: a, url: srv.URL}

	se := turnserver.SettingEngine()
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	var clients []*rtcpeer.Client
	for _, name := range []string{"relayed A", "relayed B"} {
		c, err := rtcpeer.Dial(ctx, rtcpeer.Options{URL: s.url, Token: s.token(t), Name: name,
			Config: rtcpeer.Config{Settings: &se, RelayOnly: true}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		if len(c.Joined().ICEServers) == 0 {
			t.Fatal("joined carries no ICE servers although the relay is on")
		}
		clients = append(clients, c)
	}
	start := time.Now()
	itMeshUp(ctx, t, clients)
	t.Logf("relay-only: connected with media and data in %v", time.Since(start).Round(time.Millisecond))
	for _, c := range clients {
		for _, o := range clients {
			if c == o {
				continue
			}
			pair, err := c.SelectedPair(o.PeerID())
			if err != nil {
				t.Fatal(err)
			}
			if pair.Local.Typ != webrtc.ICECandidateTypeRelay || pair.Remote.Typ != webrtc.ICECandidateTypeRelay {
				t.Errorf("%s ↔ %s over %s → %s, want relay on both ends", c.PeerID(), o.PeerID(), pair.Local.Typ, pair.Remote.Typ)
			}
		}
	}
}
