package app

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"crisisroom/declarations"
	"crisisroom/signaling"
)

// metrics are the Prometheus metrics of one App, on a registry of its own
// (never the library's global one): two Apps in one test process, or a
// tool that embeds one, do not collide. Values that other packages already
// count (signaling's counters, the map's watchers, the declarations'
// cluster syncs) are read at scrape time rather than duplicated.
type metrics struct {
	reg prometheus.Registerer
	gat prometheus.Gatherer

	declarations *prometheus.CounterVec   // kind, outcome
	storeSeconds *prometheus.HistogramVec // op
	storeErrors  *prometheus.CounterVec   // op
	busSeconds   prometheus.Histogram
	busErrors    prometheus.Counter
}

// newMetrics registers the metrics on reg; g serves them.
func newMetrics(reg prometheus.Registerer, g prometheus.Gatherer) *metrics {
	// From 0.5 ms (a pooled PostgreSQL read, a Redis PUBLISH on a LAN) to
	// 16 s (a group commit stuck behind a failover).
	latencyBuckets := prometheus.ExponentialBuckets(0.0005, 2, 16)
	m := &metrics{reg: reg, gat: g,
		declarations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crisisroom_declarations_total",
			Help: "Declaration and amendment requests by outcome (accepted, duplicate, invalid, forbidden, unauthenticated, not_found, bad_request, unavailable, error)."},
			[]string{"kind", "outcome"}),
		storeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "crisisroom_store_seconds",
			Help: "Latency of the declarations store's operations (apply is one group commit).", Buckets: latencyBuckets},
			[]string{"op"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crisisroom_store_errors_total",
			Help: "Failed declarations store operations."}, []string{"op"}),
		busSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "crisisroom_bus_publish_seconds",
			Help: "Latency of publishing on the bus (Redis PUBLISH in cluster mode).", Buckets: latencyBuckets}),
		busErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "crisisroom_bus_publish_errors_total",
			Help: "Failed publications on the bus (the message is lost: the bus is at-most-once)."}),
	}
	reg.MustRegister(m.declarations, m.storeSeconds, m.storeErrors, m.busSeconds, m.busErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// handler serves /metrics.
func (m *metrics) handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.gat, promhttp.HandlerOpts{ErrorLog: slogPrinter{log}, Timeout: 10 * time.Second})
}

type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Warn("metrics", "err", v) }

// live registers the metrics read from the running parts at scrape time.
func (m *metrics) live(a *App, sig *signaling.Metrics) {
	counter := func(name, help, key string) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(sig.Snapshot()[key]) })
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "crisisroom_connections",
			Help: "Open signaling WebSockets on this instance."},
			func() float64 { return float64(sig.Snapshot()["connections"]) }),
		counter("crisisroom_messages_in_total", "Signaling messages received from clients.", "messages_in"),
		counter("crisisroom_messages_out_total", "Signaling messages sent to clients.", "messages_out"),
		counter("crisisroom_slow_clients_dropped_total", "Sockets closed because their send queue was full.", "slow_dropped"),
		newRoomsCollector(a),
	)
	if a.Map != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "crisisroom_map_watchers",
			Help: "Sockets subscribed to the live map on this instance."},
			func() float64 { return float64(a.Map.Subscribers()) }))
	}
	if a.Decl != nil {
		m.reg.MustRegister(newSyncCollector(a.Decl))
	}
	if a.media != nil {
		m.reg.MustRegister(newSFUCollector(a))
	}
}

// roomsCollector counts the rooms with someone seated on this instance and
// those seats. Room names come from the store, re-read at most every
// roomsTTL: a scrape must not hang on a database that is down.
type roomsCollector struct {
	a            *App
	rooms, peers *prometheus.Desc

	mu      sync.Mutex
	names   []string
	fetched time.Time
}

const roomsTTL = 30 * time.Second

func newRoomsCollector(a *App) *roomsCollector {
	return &roomsCollector{a: a,
		rooms: prometheus.NewDesc("crisisroom_rooms", "Rooms with at least one member on this instance.", nil, nil),
		peers: prometheus.NewDesc("crisisroom_peers", "Members seated on this instance (including those within the resume window).", nil, nil)}
}

func (c *roomsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.rooms; ch <- c.peers }

func (c *roomsCollector) Collect(ch chan<- prometheus.Metric) {
	active, peers := 0, 0
	for _, name := range c.roomNames() {
		if n := len(c.a.Rooms.Members(name)); n > 0 {
			active++
			peers += n
		}
	}
	ch <- prometheus.MustNewConstMetric(c.rooms, prometheus.GaugeValue, float64(active))
	ch <- prometheus.MustNewConstMetric(c.peers, prometheus.GaugeValue, float64(peers))
}

func (c *roomsCollector) roomNames() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.fetched.IsZero() && time.Since(c.fetched) < roomsTTL {
		return c.names
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rs, err := c.a.be.Store.Rooms(ctx)
	c.fetched = time.Now() // after a failure too: keep the last list until the next period
	if err != nil {
		c.a.log.Warn("metrics: list rooms", "err", err)
		return c.names
	}
	c.names = c.names[:0]
	for _, r := range rs {
		c.names = append(c.names, r.Name)
	}
	return c.names
}

// syncCollector exposes the declarations' cluster sync counters.
type syncCollector struct {
	svc   *declarations.Service
	descs [7]*prometheus.Desc
}

func newSyncCollector(svc *declarations.Service) syncCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("crisisroom_declarations_"+name+"_total", help, nil, nil)
	}
	return syncCollector{svc: svc, descs: [7]*prometheus.Desc{
		d("remote_states", "Newer commune states taken from other instances over the bus."),
		d("resyncs", "Version comparisons with the store (at start, periodic, after a bus loss)."),
		d("bus_losses", "Bus signals that commune states may have been lost (Redis reconnect, lagging)."),
		d("gap_reloads", "Commits that found another instance's change missing and reloaded communes."),
		d("communes_reloaded", "Communes re-read from the store."),
		d("sync_errors", "Store reads of a sync that failed (retried at the next one)."),
		d("map_changes_dropped", "Commune states the live map was too slow to take (repaired by its reconciliation)."),
	}}
}

func (c syncCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c syncCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.svc.SyncStats()
	for i, v := range [7]int64{s.RemoteStates, s.Resyncs, s.LostSignals, s.GapReloads, s.Reloaded, s.SyncErrors, s.ChangesDropped} {
		ch <- prometheus.MustNewConstMetric(c.descs[i], prometheus.CounterValue, float64(v))
	}
}

// countDeclarations counts the outcomes of POST /declarations and of
// amendments by their HTTP status, the answer the declarant actually got.
func (m *metrics) countDeclarations(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := ""
		if r.Method == http.MethodPost {
			switch {
			case strings.HasSuffix(r.URL.Path, "/declarations"):
				kind = "declare"
			case strings.HasSuffix(r.URL.Path, "/amendments"):
				kind = "amend"
			}
		}
		if kind == "" {
			next.ServeHTTP(w, r)
			return
		}
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		m.declarations.WithLabelValues(kind, outcome(kind, ww.Status())).Inc()
	})
}

func outcome(kind string, status int) string {
	switch {
	case status == http.StatusCreated, status == http.StatusOK && kind == "amend":
		return "accepted"
	case status == http.StatusOK:
		return "duplicate" // the same idempotency key again: the original is answered
	case status == http.StatusUnprocessableEntity:
		return "invalid"
	case status == http.StatusForbidden:
		return "forbidden"
	case status == http.StatusUnauthorized:
		return "unauthenticated"
	case status == http.StatusNotFound:
		return "not_found"
	case status == http.StatusServiceUnavailable:
		return "unavailable"
	case status >= 400 && status < 500:
		return "bad_request"
	default:
		return "error"
	}
}

// observe records one store operation.
func (m *metrics) observe(op string, start time.Time, err error) {
	m.storeSeconds.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil {
		m.storeErrors.WithLabelValues(op).Inc()
	}
}

// timedDeclStore times the declarations store. It always offers the
// cluster reads (declarations.Syncer), falling back like the service would.
type timedDeclStore struct {
	declarations.Store
	m *metrics
}

var _ declarations.Syncer = timedDeclStore{}

func (s timedDeclStore) Apply(ctx context.Context, ops []declarations.Op) ([]declarations.OpResult, error) {
	start := time.Now()
	res, err := s.Store.Apply(ctx, ops)
	s.m.observe("apply", start, err)
	return res, err
}

func (s timedDeclStore) Declaration(ctx context.Context, id string) (declarations.Declaration, error) {
	start := time.Now()
	d, err := s.Store.Declaration(ctx, id)
	if errors.Is(err, declarations.ErrNotFound) {
		s.m.observe("declaration", start, nil) // an answer, not a failure
	} else {
		s.m.observe("declaration", start, err)
	}
	return d, err
}

func (s timedDeclStore) Declarations(ctx context.Context, commune string) ([]declarations.Declaration, error) {
	start := time.Now()
	ds, err := s.Store.Declarations(ctx, commune)
	s.m.observe("declarations", start, err)
	return ds, err
}

func (s timedDeclStore) Revisions(ctx context.Context, id string) ([]declarations.Revision, error) {
	start := time.Now()
	rs, err := s.Store.Revisions(ctx, id)
	s.m.observe("revisions", start, err)
	return rs, err
}

func (s timedDeclStore) Counts(ctx context.Context) ([]declarations.Cell, map[string]int64, error) {
	start := time.Now()
	cells, v, err := s.Store.Counts(ctx)
	s.m.observe("counts", start, err)
	return cells, v, err
}

func (s timedDeclStore) Versions(ctx context.Context) (map[string]int64, error) {
	start := time.Now()
	v, err := declarations.StoreVersions(ctx, s.Store)
	s.m.observe("versions", start, err)
	return v, err
}

func (s timedDeclStore) CommuneCounts(ctx context.Context, communes []string) ([]declarations.Cell, map[string]int64, error) {
	start := time.Now()
	cells, v, err := declarations.StoreCommuneCounts(ctx, s.Store, communes)
	s.m.observe("commune_counts", start, err)
	return cells, v, err
}

// timedPublisher times publications on the bus.
type timedPublisher struct {
	pub declarations.Publisher
	m   *metrics
}

func (p timedPublisher) Publish(ctx context.Context, topic string, msg []byte) error {
	start := time.Now()
	err := p.pub.Publish(ctx, topic, msg)
	p.m.busSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		p.m.busErrors.Inc()
	}
	return err
}
