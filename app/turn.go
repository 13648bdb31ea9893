package app

import (
	"context"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"crisisroom/protocol"
	"crisisroom/turnserver"
)

const (
	// selfTestInterval: the relay is re-checked this often, so /readyz
	// notices a relay that stopped working (a port taken, a firewall rule,
	// an expired certificate) within minutes.
	selfTestInterval = 5 * time.Minute
	// selfTestTimeout bounds one self-test (all transports); a pass takes
	// well under a second.
	selfTestTimeout = 15 * time.Second
)

// turnRuntime hands out ICE servers with per-member TURN credentials and
// runs the built-in TURN server when enabled.
type turnRuntime struct {
	cfg    Config
	secret string
	log    *slog.Logger

	// Built-in relay; all nil/empty when off.
	srv     *turnserver.Server
	urls    []string
	tlsHost string
	cancel  context.CancelFunc
	done    chan struct{}
	closing sync.Once

	mu    sync.Mutex
	state string // "ok" or why the last self-test failed
}

// startTURN starts the built-in relay if enabled and runs its self-test
// once before returning, so /readyz is meaningful from the first request.
// A failing self-test does not stop the server: signaling and direct or
// external-TURN calls still work, and /readyz says what is wrong.
func startTURN(ctx context.Context, cfg Config, secret string, log *slog.Logger) (*turnRuntime, error) {
	t := &turnRuntime{cfg: cfg, secret: secret, log: log}
	if !cfg.TURNEnabled {
		return t, nil
	}
	srv, err := turnserver.Start(turnserver.Config{
		ListenUDP:        cfg.TURNListenUDP,
		ListenTCP:        cfg.TURNListenTCP,
		ListenTLS:        cfg.TURNListenTLS,
		TLSCertFile:      cfg.TURNTLSCert,
		TLSKeyFile:       cfg.TURNTLSKey,
		PublicIP:         cfg.TURNPublicIP,
		Realm:            cfg.TURNRealm,
		Secret:           secret,
		MaxAllocsPerUser: cfg.TURNMaxAllocs,
		AllowPeers:       cfg.TURNAllowPeers,
		Log:              log.With("component", "turn"),
	})
	if err != nil {
		return nil, err
	}
	t.srv = srv
	t.tlsHost = tlsHost(cfg)
	t.urls = srv.URLs(t.tlsHost)
	t.runSelfTest(ctx)

	loopCtx, cancel := context.WithCancel(context.Background())
	t.cancel, t.done = cancel, make(chan struct{})
	go t.selfTestLoop(loopCtx, selfTestInterval)
	return t, nil
}

// tlsHost is the name browsers check the TURN TLS certificate against: the
// host of the public URL when one is set (the certificate is usually the
// site's), else empty, meaning the relay IP.
func tlsHost(cfg Config) string {
	if cfg.PublicURL == "" {
		return ""
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

func (t *turnRuntime) selfTestLoop(ctx context.Context, every time.Duration) {
	defer close(t.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.runSelfTest(ctx)
		}
	}
}

func (t *turnRuntime) runSelfTest(parent context.Context) {
	ctx, cancel := context.WithTimeout(parent, selfTestTimeout)
	defer cancel()
	state := "ok"
	if err := t.srv.SelfTest(ctx, t.tlsHost); err != nil {
		if parent.Err() != nil {
			return // shutting down: not a verdict on the relay
		}
		state = err.Error()
	}
	t.mu.Lock()
	prev := t.state
	t.state = state
	t.mu.Unlock()
	switch {
	case state != "ok":
		t.log.Warn("turn self-test failed", "err", state)
	case prev != "ok":
		t.log.Info("turn self-test passed", "urls", t.urls)
	}
}

// iceServers: STUN as configured, then the built-in relay's URLs and any
// external TURN URLs, with credentials in the scheme coturn calls
// use-auth-secret, minted for this member and valid for TURNCredTTL (long
// enough to join; a running allocation outlives them).
func (t *turnRuntime) iceServers(memberID string) []protocol.ICEServer {
	out := staticICE(t.cfg)
	if len(t.urls) == 0 && len(t.cfg.TURNURLs) == 0 {
		return out
	}
	user, pass := turnserver.Credentials(t.secret, memberID, time.Now().Add(t.cfg.TURNCredTTL))
	if len(t.urls) > 0 {
		out = append(out, protocol.ICEServer{URLs: t.urls, Username: user, Credential: pass})
	}
	if len(t.cfg.TURNURLs) > 0 {
		out = append(out, protocol.ICEServer{URLs: t.cfg.TURNURLs, Username: user, Credential: pass})
	}
	return out
}

// status is the "turn" entry of /readyz: absent when the built-in relay is
// off, else "ok" or the last self-test failure.
func (t *turnRuntime) status() (string, bool) {
	if t.srv == nil {
		return "", false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state, true
}

// close stops the self-test loop (interrupting a running test), then the
// relay.
func (t *turnRuntime) close() {
	if t.srv == nil {
		return
	}
	t.closing.Do(func() {
		t.cancel()
		<-t.done
		if err := t.srv.Close(); err != nil {
			t.log.Warn("turn close", "err", err)
		}
	})
}
