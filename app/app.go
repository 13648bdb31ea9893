package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"crisisroom/access"
	"crisisroom/declarations"
	"crisisroom/internal/origin"
	"crisisroom/livemap"
	"crisisroom/mainlog"
	"crisisroom/protocol"
	"crisisroom/rooms"
	"crisisroom/rooms/cluster"
	"crisisroom/signaling"
	"crisisroom/territory"
)

// MainRoom is the standing room created at first start.
const MainRoom = "main"

// App is one running server.
type App struct {
	cfg   Config
	log   *slog.Logger
	be    *Backends
	Rooms *rooms.Manager
	sig   *signaling.Server
	turn  *turnRuntime
	start time.Time

	// Territory and Decl are nil when no territory is configured.
	Territory *territory.Territory
	Decl      *declarations.Service
	Map       *livemap.Hub
	stopBg    context.CancelFunc // ends background loops (map fan-out)
	// Mainlog is the main courante of the events (mainlog.go).
	Mainlog     *mainlog.Service
	stopMainlog context.CancelFunc

	metrics *metrics

	// Access: the login limiter and the proxies whose X-Forwarded-For
	// names the client.
	limiter   access.Limiter
	hasher    *access.Hasher // bounds concurrent argon2 work (memory, CPU)
	proxies   []netip.Prefix
	origins   origin.Policy // our pages' web origins (login, WebSocket)
	stopSweep context.CancelFunc
	// links remembers the links bearer tokens resolved to (linkcache.go).
	links   *linkCache
	handler http.Handler // the routes, built once by New
	media   *sfuMedia    // the rooms' SFU; nil when every room stays a mesh
}

// cluster tells whether other instances may share the store and the bus
// (they then write declarations this one must follow).
func (a *App) cluster() bool { return a.cfg.DatabaseURL != "" || a.cfg.RedisURL != "" }

// revocationCheck is how often the seated links are compared with the
// store, for revocations nobody announced here (rooms.WatchRevocations).
const revocationCheck = 5 * time.Second

// clusterSync is how often an instance of a cluster compares its commune
// versions with the store's, for the bus losses nobody signals.
const clusterSync = 5 * time.Second

// New builds the server on opened back ends.
func New(ctx context.Context, cfg Config, be *Backends, log *slog.Logger) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: log, be: be, start: time.Now(),
		hasher: access.NewHasher(access.DefaultParams(), 0), links: newLinkCache(linkCacheTTL, linkCacheMax, time.Now)}
	a.proxies, _ = cfg.trustedProxies() // checked by Validate
	a.origins = origin.Policy{PublicURL: cfg.PublicURL, Extra: cfg.AllowedOrigins}
	if be.Logins != nil {
		a.limiter = be.Logins // a cluster's instances share Redis's budgets
	} else {
		a.limiter = access.NewLoginLimiter(access.DefaultLoginLimits())
	}
	reg := prometheus.NewRegistry() // the App's own: see metrics
	a.metrics = newMetrics(reg, reg)
	secret, err := turnSecret(cfg)
	if err != nil {
		return nil, err
	}
	a.turn, err = startTURN(ctx, cfg, secret, log)
	if err != nil {
		return nil, err
	}
	var media rooms.Media
	if cfg.RoomMode != "mesh" && !a.cluster() {
		// A cluster's rooms stay meshes until a room's SFU has a home
		// instance (issue 13).
		a.media = newSFUMedia(cfg, log.With("component", "sfu"), func(room, member string, on bool) { a.Rooms.SetSpeaking(room, member, on) })
		media = a.media
	}
	a.Rooms = rooms.NewManager(rooms.Config{
		Capacity:           cfg.RoomCapacity,
		Viewers:            cfg.RoomViewers,
		Mode:               cfg.RoomMode,
		MeshMax:            cfg.MeshMax,
		Media:              media,
		ResumeWindow:       cfg.ResumeWindow,
		ICEServers:         a.turn.iceServers,
		ICETransportPolicy: cfg.ICEPolicy,
		OnAdmission:        a.onAdmission,
		OnKicked:           a.onKicked,
	}, be.Store, log.With("component", "rooms"))
	a.Rooms.WatchKicks(func(kind, id string) {
		if kind == access.KindLink {
			a.links.forget(id)
		}
	})
	if err := a.setupDeclarations(ctx); err != nil {
		a.turn.close()
		return nil, err
	}
	sigMetrics := &signaling.Metrics{}
	sigCfg := signaling.Config{Origins: a.origins, Metrics: sigMetrics,
		Authenticate: a.wsPrincipal, EventChain: a.EventChain,
		Annotations: livemap.NewAnnotations(be.Store.Annotations(), log.With("component", "annotations"))}
	if a.Decl != nil {
		hub, err := a.startMap(ctx)
		if err != nil {
			a.turn.close()
			a.Decl.Close()
			return nil, err
		}
		sigCfg.Map = hub
	}
	if err := a.setupMainlog(ctx, &sigCfg); err != nil {
		a.turn.close()
		if a.Decl != nil {
			a.Decl.Close()
		}
		if a.stopBg != nil {
			a.stopBg()
		}
		return nil, err
	}
	if cfg.RedisURL != "" { // other instances share the rooms: signal through the bus
		if err := a.Rooms.StartCluster(rooms.ClusterConfig{Link: cluster.New(be.Bus), Beat: cfg.ClusterBeat}); err != nil {
			a.turn.close()
			if a.Decl != nil {
				a.Decl.Close()
			}
			if a.stopBg != nil {
				a.stopBg()
			}
			a.stopMainlog()
			return nil, err
		}
	}
	a.sig = signaling.New(sigCfg, a.Rooms, log.With("component", "signaling"))
	sweep, stop := context.WithCancel(context.Background())
	a.stopSweep = stop
	go repeat(sweep, 10*time.Minute, a.sweepSessions)
	go a.Rooms.WatchRevocations(sweep, revocationCheck)
	go repeat(sweep, revocationCheck, a.checkAccounts)
	a.metrics.live(a, sigMetrics)
	if a.handler, err = a.routes(); err != nil {
		_ = a.Shutdown(ctx) // a programming error, found at start
		return nil, err
	}
	return a, nil
}

// Bootstrap creates the standing room on first start and returns the links
// to print (nil when the room already existed: secrets are shown once).
func (a *App) Bootstrap(ctx context.Context) (adminURL, inviteURL string, err error) {
	created, err := a.be.Store.CreateRoom(ctx, rooms.RoomInfo{Name: MainRoom, Title: "Salle de crise", CreatedAt: time.Now().UTC()})
	if err != nil || !created {
		return "", "", err
	}
	adminURL, err = a.NewRoomLink(ctx, MainRoom, rooms.RoleHost, "first start: host", 30*24*time.Hour)
	if err != nil {
		return "", "", err
	}
	inviteURL, err = a.NewRoomLink(ctx, MainRoom, rooms.RoleParticipant, "first start: invite", 30*24*time.Hour)
	return adminURL, inviteURL, err
}

// NewRoomLink mints a room link and returns its URL.
func (a *App) NewRoomLink(ctx context.Context, room, role, label string, ttl time.Duration) (string, error) {
	plain, _, err := rooms.CreateLink(ctx, a.be.Store, room, role, label, ttl, time.Now())
	if err != nil {
		return "", err
	}
	return RoomURL(a.cfg.PublicBase(), room, plain), nil
}

// RoomURL is the link people open. The token travels in the fragment: it is
// never sent in an HTTP request line, so it stays out of proxy and server
// logs and Referer headers.
func RoomURL(base, room, token string) string {
	return base + "/r/" + room + "#t=" + token
}

// ListenMedia opens the SFU's ports now (serve does at start, so that a
// port taken is an error then, not at the first large briefing). It does
// nothing when every room stays a mesh.
func (a *App) ListenMedia() (udp, tcp net.Addr, err error) {
	if a.media == nil {
		return nil, nil, nil
	}
	s, err := a.media.open()
	if err != nil {
		return nil, nil, err
	}
	return s.UDPAddr(), s.TCPAddr(), nil
}

// Handler returns the HTTP handler of the whole server.
func (a *App) Handler() http.Handler { return a.handler }

// MetricsHandler serves GET /metrics, on its own listener (--metrics-addr).
func (a *App) MetricsHandler() http.Handler {
	r := chi.NewRouter()
	r.Method(http.MethodGet, "/metrics", a.metrics.handler(a.log))
	return r
}

// Shutdown tells every client to reconnect, then stops TURN.
func (a *App) Shutdown(ctx context.Context) error {
	a.Rooms.Shutdown()
	err := a.sig.Shutdown(ctx)
	if a.stopBg != nil {
		a.stopBg()
	}
	a.stopMainlog()
	a.stopSweep()
	a.turn.close()
	if a.media != nil {
		a.media.close()
	}
	if a.Decl != nil {
		a.Decl.Close() // after the batch in flight; nothing acknowledged is lost
	}
	return err
}

// Ready reports whether the store, the bus and (if on) the TURN relay work.
func (a *App) Ready(ctx context.Context) map[string]string {
	out := map[string]string{}
	check := func(name string, err error) {
		if err != nil {
			out[name] = err.Error()
		} else {
			out[name] = "ok"
		}
	}
	check("store", a.be.Store.Ping(ctx))
	check("bus", a.be.Bus.Ping(ctx))
	if s, ok := a.turn.status(); ok {
		out["turn"] = s
	}
	return out
}

// turnSecret returns the configured TURN secret or one generated once and
// kept in the data dir, so credentials survive restarts.
func turnSecret(cfg Config) (string, error) {
	if cfg.TURNSecret != "" {
		return cfg.TURNSecret, nil
	}
	p := filepath.Join(cfg.DataDir, "turn-secret")
	if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		return strings.TrimSpace(string(b)), nil
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	s := hex.EncodeToString(buf)
	if err := os.WriteFile(p, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", p, err)
	}
	return s, nil
}

// staticICE is the part of the ICE list that does not depend on TURN.
func staticICE(cfg Config) []protocol.ICEServer {
	var out []protocol.ICEServer
	if len(cfg.STUNURLs) > 0 {
		out = append(out, protocol.ICEServer{URLs: cfg.STUNURLs})
	}
	return out
}

// startMap starts the live map hub, fed by the declarations service: its
// own commits and, in cluster mode, what it takes from the other instances
// (Follow), so that the map and the service's totals always agree.
func (a *App) startMap(ctx context.Context) (*livemap.Hub, error) {
	hub := livemap.NewHub(a.Decl, a.log.With("component", "livemap"))
	bg, cancel := context.WithCancel(context.Background())
	if a.cluster() {
		sub, err := a.be.Bus.Subscribe(bg, declarations.TopicCommuneState)
		if err != nil {
			cancel()
			return nil, err
		}
		go a.Decl.Follow(bg, sub, clusterSync)
	}
	a.Map, a.stopBg = hub, cancel
	go hub.Run(bg, a.Decl.Changes(), 5*time.Second)
	return hub, nil
}
