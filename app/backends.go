package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"crisisroom/access"
	"crisisroom/access/redislimit"
	"crisisroom/bus"
	"crisisroom/bus/memory"
	"crisisroom/bus/redis"
	"crisisroom/declarations"
	"crisisroom/layers"
	"crisisroom/livemap"
	"crisisroom/mainlog"
	"crisisroom/rooms"
	"crisisroom/store/postgres"
	"crisisroom/store/sqlite"
)

// Store is what the app needs from its database, whichever it is: the
// embedded SQLite file or the cluster's PostgreSQL. Each view is checked by
// its package's conformance suite against both.
type Store interface {
	rooms.Store
	Declarations() declarations.Store
	Annotations() livemap.AnnotationStore
	Layers() layers.Store
	Mainlog() mainlog.Store
	Access() access.Store
	Close() error
}

var (
	_ Store = (*sqlite.Store)(nil)
	_ Store = (*postgres.Store)(nil)
)

// Backends are the swappable parts, chosen in one place (OpenBackendsLog).
type Backends struct {
	Store Store
	Bus   bus.Bus
	// Logins is the login limiter shared by the instances of a cluster
	// (Redis); nil for one instance, which limits in memory.
	Logins *redislimit.Limiter
}

// OpenBackends is OpenBackendsLog for callers without a logger (tools and
// tests): the back ends' own events are dropped.
func OpenBackends(ctx context.Context, cfg Config) (*Backends, error) {
	return OpenBackendsLog(ctx, cfg, slog.New(slog.DiscardHandler))
}

// OpenStore opens the store alone, for the commands that need no bus
// (accounts, tokens, links): PostgreSQL if DatabaseURL is set, else the
// SQLite file in the data dir. A Redis outage does not stop them.
func OpenStore(ctx context.Context, cfg Config) (Store, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil { // generated secrets live there in every mode
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if cfg.DatabaseURL != "" {
		return postgres.Open(ctx, cfg.DatabaseURL)
	}
	return sqlite.Open(ctx, filepath.Join(cfg.DataDir, "crisisroom.db"))
}

// OpenBackendsLog chooses and opens the back ends for cfg: PostgreSQL if
// DatabaseURL is set, else the SQLite file in the data dir; Redis pub/sub
// if RedisURL is set, else the in-process bus. Several instances behind
// one address need both (cluster mode). log gets the back ends' own events
// (Redis connection lost and back).
func OpenBackendsLog(ctx context.Context, cfg Config, log *slog.Logger) (*Backends, error) {
	st, err := OpenStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var b bus.Bus = memory.New()
	if cfg.RedisURL != "" {
		if b, err = redis.New(ctx, redis.Options{URL: cfg.RedisURL}, log.With("component", "bus")); err != nil {
			st.Close()
			return nil, err
		}
	}
	be := &Backends{Store: st, Bus: b}
	if cfg.RedisURL != "" {
		if be.Logins, err = redislimit.New(redislimit.Options{URL: cfg.RedisURL}, access.DefaultLoginLimits(), log.With("component", "logins")); err != nil {
			be.Close()
			return nil, err
		}
	}
	log.Info("back ends", "store", fmt.Sprintf("%T", st), "bus", fmt.Sprintf("%T", b), "shared_login_limits", be.Logins != nil)
	return be, nil
}

// Close closes the back ends.
func (b *Backends) Close() error {
	var lerr error
	if b.Logins != nil {
		lerr = b.Logins.Close()
	}
	return errors.Join(b.Bus.Close(), b.Store.Close(), lerr)
}
