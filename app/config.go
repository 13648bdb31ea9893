// Package app wires the server together: configuration, back ends, HTTP
// routes and shutdown. cmd/crisisroom is a thin shell around it, and tests
// build the very same server with httptest.
package app

import (
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"crisisroom/declarations"
)

// Config is every setting of `crisisroom serve`. Each field has a flag and a
// CRISISROOM_* environment variable; a flag given on the command line wins.
type Config struct {
	Addr string
	// MetricsAddr serves /metrics on a listener of its own, loopback by
	// default: the figures are for the operator's Prometheus, not for
	// anyone who can reach the application port. Empty: no metrics.
	MetricsAddr string
	DataDir     string
	PublicURL   string
	LogLevel    slog.Level

	// Cluster mode: several instances share a PostgreSQL database and a
	// Redis bus. Empty: the embedded SQLite file and in-process bus.
	DatabaseURL string
	RedisURL    string
	// ClusterBeat is how often an instance tells the others it lives; one
	// silent for 3 beats is dead and its members leave the rooms.
	ClusterBeat time.Duration

	RoomCapacity   int
	ResumeWindow   time.Duration
	AllowedOrigins []string

	// The rooms' media: peer to peer (mesh) or through the built-in
	// selective forwarding unit (SFU), whose peers share one UDP and one
	// TCP port; PublicIPs are the addresses it advertises (NAT 1:1).
	RoomMode    string
	MeshMax     int
	RoomViewers int
	SFUUDP      string
	SFUTCP      string
	PublicIPs   []string

	// ICE: STUN servers handed to browsers, an external TURN (coturn with
	// use-auth-secret) and/or the built-in one.
	STUNURLs       []string
	TURNURLs       []string // external TURN URLs sharing TURNSecret
	TURNSecret     string
	TURNEnabled    bool // built-in TURN server
	TURNListenUDP  string
	TURNListenTCP  string
	TURNListenTLS  string
	TURNTLSCert    string
	TURNTLSKey     string
	TURNPublicIP   string
	TURNRealm      string
	TURNCredTTL    time.Duration
	TURNMaxAllocs  int
	TURNAllowPeers []string // CIDRs the relay may reach although private/loopback
	ICEPolicy      string   // "all" or "relay": media only through TURN

	// Declarations.
	Territory    string // boundaries GeoJSON file or URL; empty = declarations off
	CommunesCSV  string // optional commune list with population and merges
	EventStart   string // first day a declaration may name (YYYY-MM-DD)
	Timezone     string // the territory's time zone: what "today" means
	MaxCount     int    // largest count one declaration may carry
	AlertRates   []string
	AlertPeakK   float64
	AlertMinWeek int

	// Map background: a tile URL template ({z}, {x}, {y}, optional {s}),
	// empty by default so that the page asks no third party for anything.
	MapTiles       string
	MapAttribution string

	// Access: staff sessions and request rate limits.
	SessionTTL     time.Duration
	TrustedProxies []string // CIDRs of reverse proxies whose X-Forwarded-For is believed
	RateIP         int      // API requests per minute and client IP; 0 = no limit
	RateToken      int      // API requests per minute and credential; 0 = no limit
}

// DefaultMetricsAddr is loopback only: a Prometheus on the same host
// scrapes it; in a cluster, each instance sets an address its Prometheus
// reaches on the internal network.
const DefaultMetricsAddr = "127.0.0.1:9464"

// DefaultConfig is what `serve` with no flags runs.
func DefaultConfig() Config {
	return Config{
		Addr:          ":8080",
		MetricsAddr:   DefaultMetricsAddr,
		DataDir:       "./data",
		LogLevel:      slog.LevelInfo,
		RoomCapacity:  50,
		RoomMode:      "auto",
		MeshMax:       4,
		RoomViewers:   300,
		SFUUDP:        ":7882",
		SFUTCP:        ":7882",
		ResumeWindow:  30 * time.Second,
		ClusterBeat:   2 * time.Second,
		TURNListenUDP: ":3478",
		TURNListenTCP: ":3478",
		TURNRealm:     "crisisroom",
		TURNCredTTL:   10 * time.Minute,
		ICEPolicy:     "all",
		TURNMaxAllocs: 32, // a browser allocates per TURN URL per peer: 5 peers × 3 URLs is 15
		Timezone:      "Europe/Paris",
		MaxCount:      200,
		AlertRates:    []string{"30", "45", "60"},
		AlertPeakK:    3,
		AlertMinWeek:  3,
		SessionTTL:    12 * time.Hour,
		RateIP:        1200,
		RateToken:     600,
	}
}

// Bind registers every setting on fs with its env var as the default.
// It returns a func that reports malformed env values (flags report their
// own errors).
func (c *Config) Bind(fs *flag.FlagSet) func() error {
	var envErrs []string
	env := func(name string) (string, bool) { return os.LookupEnv("CRISISROOM_" + name) }
	str := func(p *string, fl, ev, help string) {
		if v, ok := env(ev); ok {
			*p = v
		}
		fs.StringVar(p, fl, *p, help+" (env CRISISROOM_"+ev+")")
	}
	list := func(p *[]string, fl, ev, help string) {
		if v, ok := env(ev); ok {
			*p = splitList(v)
		}
		fs.Var((*listValue)(p), fl, help+", comma-separated (env CRISISROOM_"+ev+")")
	}
	integer := func(p *int, fl, ev, help string) {
		if v, ok := env(ev); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				envErrs = append(envErrs, fmt.Sprintf("CRISISROOM_%s=%q: not a number", ev, v))
			}
			*p = n
		}
		fs.IntVar(p, fl, *p, help+" (env CRISISROOM_"+ev+")")
	}
	dur := func(p *time.Duration, fl, ev, help string) {
		if v, ok := env(ev); ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				envErrs = append(envErrs, fmt.Sprintf("CRISISROOM_%s=%q: not a duration (e.g. 30s, 10m)", ev, v))
			}
			*p = d
		}
		fs.DurationVar(p, fl, *p, help+" (env CRISISROOM_"+ev+")")
	}
	boolean := func(p *bool, fl, ev, help string) {
		if v, ok := env(ev); ok {
			b, err := strconv.ParseBool(v)
			if err != nil {
				envErrs = append(envErrs, fmt.Sprintf("CRISISROOM_%s=%q: not true/false", ev, v))
			}
			*p = b
		}
		fs.BoolVar(p, fl, *p, help+" (env CRISISROOM_"+ev+")")
	}
	str(&c.Addr, "addr", "ADDR", "HTTP listen address")
	str(&c.MetricsAddr, "metrics-addr", "METRICS_ADDR", "listen address of GET /metrics (Prometheus), loopback by default; empty: off")
	str(&c.DataDir, "data", "DATA", "data directory (SQLite file, generated secrets)")
	str(&c.PublicURL, "public-url", "PUBLIC_URL", "URL people open, used in printed links (default http://localhost<addr>)")
	str(&c.DatabaseURL, "database-url", "DATABASE_URL", "PostgreSQL URL for cluster mode, e.g. postgres://crisisroom:PASSWORD@db:5432/crisisroom (default: SQLite file in the data dir)")
	str(&c.RedisURL, "redis-url", "REDIS_URL", "Redis URL of the bus for cluster mode, e.g. redis://redis:6379/0 (default: in-process bus, one instance)")
	if v, ok := env("LOG_LEVEL"); ok {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			envErrs = append(envErrs, fmt.Sprintf("CRISISROOM_LOG_LEVEL=%q: use debug, info, warn or error", v))
		}
	}
	fs.TextVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (env CRISISROOM_LOG_LEVEL)")
	integer(&c.RoomCapacity, "room-capacity", "ROOM_CAPACITY", "largest room, in members who send media")
	str(&c.RoomMode, "room-mode", "ROOM_MODE", "rooms' media: mesh (peer to peer), sfu (through the server) or auto (the SFU past --mesh-max)")
	integer(&c.MeshMax, "mesh-max", "MESH_MAX", "auto mode: members with media a room holds as a mesh")
	integer(&c.RoomViewers, "room-viewers", "ROOM_VIEWERS", "watch-only members a room holds besides --room-capacity")
	str(&c.SFUUDP, "sfu-udp", "SFU_UDP", "the SFU's one UDP port (ICE), shared by every media connection")
	str(&c.SFUTCP, "sfu-tcp", "SFU_TCP", "the SFU's ICE-TCP port, for networks without UDP (empty: off)")
	list(&c.PublicIPs, "public-ip", "PUBLIC_IP", "IP addresses the SFU advertises (NAT 1:1; default: the interfaces')")
	dur(&c.ResumeWindow, "resume-window", "RESUME_WINDOW", "how long a dropped connection keeps its seat")
	dur(&c.ClusterBeat, "cluster-beat", "CLUSTER_BEAT", "cluster mode: how often an instance says it lives; silent for 3 beats, it is dead and its members leave")
	list(&c.AllowedOrigins, "allowed-origins", "ALLOWED_ORIGINS", "extra web origins allowed to open the WebSocket")
	list(&c.STUNURLs, "stun", "STUN", "STUN URLs given to browsers (none by default: no third party)")
	list(&c.TURNURLs, "turn-urls", "TURN_URLS", "external TURN URLs (coturn use-auth-secret with --turn-secret)")
	str(&c.TURNSecret, "turn-secret", "TURN_SECRET", "shared TURN secret (generated into the data dir if empty)")
	boolean(&c.TURNEnabled, "turn", "TURN", "run the built-in TURN server")
	str(&c.TURNListenUDP, "turn-udp", "TURN_UDP", "built-in TURN UDP listen address")
	str(&c.TURNListenTCP, "turn-tcp", "TURN_TCP", "built-in TURN TCP listen address")
	str(&c.TURNListenTLS, "turn-tls", "TURN_TLS", "built-in TURN TLS listen address, e.g. :443 or :5349 (needs cert and key)")
	str(&c.TURNTLSCert, "turn-tls-cert", "TURN_TLS_CERT", "TLS certificate file for TURN over TLS")
	str(&c.TURNTLSKey, "turn-tls-key", "TURN_TLS_KEY", "TLS key file for TURN over TLS")
	str(&c.TURNPublicIP, "turn-public-ip", "TURN_PUBLIC_IP", "public IP the TURN relay advertises (default: first non-loopback)")
	str(&c.TURNRealm, "turn-realm", "TURN_REALM", "TURN realm")
	dur(&c.TURNCredTTL, "turn-credential-ttl", "TURN_CREDENTIAL_TTL", "lifetime of per-participant TURN credentials")
	integer(&c.TURNMaxAllocs, "turn-max-allocations", "TURN_MAX_ALLOCATIONS", "TURN allocations allowed per participant")
	str(&c.ICEPolicy, "ice-policy", "ICE_POLICY", "all, or relay: media only through TURN (hides participants' addresses from each other)")
	list(&c.TURNAllowPeers, "turn-allow-peers", "TURN_ALLOW_PEERS", "CIDRs the TURN relay may reach although loopback/private")
	str(&c.Territory, "territory", "TERRITORY", "commune boundaries: GeoJSON file or URL (declarations are off without it)")
	str(&c.CommunesCSV, "communes", "COMMUNES", "commune list CSV (population, merges): file or URL")
	str(&c.EventStart, "event-start", "EVENT_START", "first day declarations may name, YYYY-MM-DD")
	str(&c.Timezone, "timezone", "TIMEZONE", "time zone of the territory")
	integer(&c.MaxCount, "max-count", "MAX_COUNT", "largest count one declaration may carry")
	list(&c.AlertRates, "alert-rates", "ALERT_RATES", "7-day deaths per 100,000 for vigilance, alerte, crise")
	if v, ok := env("ALERT_PEAK_K"); ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			envErrs = append(envErrs, fmt.Sprintf("CRISISROOM_ALERT_PEAK_K=%q: not a number", v))
		}
		c.AlertPeakK = f
	}
	fs.Float64Var(&c.AlertPeakK, "alert-peak-k", c.AlertPeakK, "peak rule: today above mean + k·sd of the 14 previous days (env CRISISROOM_ALERT_PEAK_K)")
	integer(&c.AlertMinWeek, "alert-min-week", "ALERT_MIN_WEEK", "7-day count below which the rate rule does not apply")
	str(&c.MapTiles, "map-tiles", "MAP_TILES", "map background tile URL template, e.g. https://tiles.example.fr/{z}/{x}/{y}.png (none by default: no third party)")
	str(&c.MapAttribution, "map-attribution", "MAP_ATTRIBUTION", "credit line shown under the map tiles")
	dur(&c.SessionTTL, "session-ttl", "SESSION_TTL", "lifetime of a staff login session")
	list(&c.TrustedProxies, "trusted-proxies", "TRUSTED_PROXIES", "CIDRs of reverse proxies whose X-Forwarded-For names the client (rate limits, audit)")
	integer(&c.RateIP, "rate-ip", "RATE_IP", "API requests per minute from one client IP (0: no limit)")
	integer(&c.RateToken, "rate-token", "RATE_TOKEN", "API requests per minute with one token or session (0: no limit)")
	return func() error {
		if len(envErrs) > 0 {
			return fmt.Errorf("configuration: %s", strings.Join(envErrs, "; "))
		}
		return nil
	}
}

// Validate checks the combination of settings.
func (c *Config) Validate() error {
	if c.RoomCapacity < 2 || c.RoomCapacity > 100 {
		return fmt.Errorf("room-capacity %d: must be between 2 and 100", c.RoomCapacity)
	}
	if c.RoomViewers < 1 || c.RoomViewers > 1000 {
		return fmt.Errorf("room-viewers %d: between 1 and 1000", c.RoomViewers)
	}
	switch c.RoomMode {
	case "auto", "mesh", "sfu":
	default:
		return fmt.Errorf("room-mode %q: auto, mesh or sfu", c.RoomMode)
	}
	if c.MeshMax < 2 {
		return fmt.Errorf("mesh-max %d: at least 2", c.MeshMax)
	}
	if c.RoomMode != "mesh" && c.SFUUDP == "" && c.SFUTCP == "" {
		return fmt.Errorf("room-mode %s needs the SFU's ports: --sfu-udp or --sfu-tcp", c.RoomMode)
	}
	for _, ip := range c.PublicIPs {
		if _, err := netip.ParseAddr(ip); err != nil {
			return fmt.Errorf("public-ip %q: not an IP address", ip)
		}
	}
	if c.ResumeWindow < time.Second {
		return fmt.Errorf("resume-window %s: at least 1s", c.ResumeWindow)
	}
	if c.ClusterBeat < 100*time.Millisecond || c.ClusterBeat > time.Minute {
		return fmt.Errorf("cluster-beat %s: between 100ms and 1m", c.ClusterBeat)
	}
	if (c.TURNTLSCert == "") != (c.TURNTLSKey == "") {
		return fmt.Errorf("turn-tls-cert and turn-tls-key go together")
	}
	if c.TURNListenTLS != "" && c.TURNTLSCert == "" {
		return fmt.Errorf("turn-tls %s needs turn-tls-cert and turn-tls-key", c.TURNListenTLS)
	}
	if _, err := time.LoadLocation(c.Timezone); err != nil {
		return fmt.Errorf("timezone %q: %v", c.Timezone, err)
	}
	if c.EventStart != "" {
		if _, err := time.Parse("2006-01-02", c.EventStart); err != nil {
			return fmt.Errorf("event-start %q: use YYYY-MM-DD", c.EventStart)
		}
	}
	if c.MaxCount < 1 || c.MaxCount > 100000 {
		return fmt.Errorf("max-count %d: between 1 and 100000", c.MaxCount)
	}
	if _, err := c.alertRule(); err != nil {
		return err
	}
	if _, err := c.mapTilesOrigin(); err != nil {
		return err
	}
	if c.ICEPolicy != "all" && c.ICEPolicy != "relay" {
		return fmt.Errorf("ice-policy %q: all or relay", c.ICEPolicy)
	}
	if c.ICEPolicy == "relay" && !c.TURNEnabled && len(c.TURNURLs) == 0 {
		return fmt.Errorf("ice-policy relay needs a TURN server: --turn or --turn-urls")
	}
	if c.TURNCredTTL < time.Minute || c.TURNCredTTL > 24*time.Hour {
		return fmt.Errorf("turn-credential-ttl %s: between 1m and 24h", c.TURNCredTTL)
	}
	if c.SessionTTL < 5*time.Minute || c.SessionTTL > 30*24*time.Hour {
		return fmt.Errorf("session-ttl %s: between 5m and 720h", c.SessionTTL)
	}
	if c.RateIP < 0 || c.RateToken < 0 {
		return fmt.Errorf("rate-ip and rate-token: 0 (no limit) or a positive number of requests per minute")
	}
	if _, err := c.trustedProxies(); err != nil {
		return err
	}
	return nil
}

// trustedProxies parses TrustedProxies.
func (c *Config) trustedProxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range c.TrustedProxies {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("trusted-proxies %q: not a CIDR or an address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p)
	}
	return out, nil
}

// PublicBase returns the public URL without a trailing slash.
func (c *Config) PublicBase() string {
	if c.PublicURL != "" {
		return strings.TrimRight(c.PublicURL, "/")
	}
	addr := c.Addr
	if strings.HasPrefix(addr, ":") {
		addr = "localhost" + addr
	}
	return "http://" + addr
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// alertRule turns the alert settings into the declarations rule.
func (c *Config) alertRule() (declarations.AlertRule, error) {
	var r declarations.AlertRule
	if len(c.AlertRates) != 3 {
		return r, fmt.Errorf("alert-rates: three increasing numbers, e.g. 30,45,60")
	}
	for i, s := range c.AlertRates {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f <= 0 || (i > 0 && f <= r.RateThresholds[i-1]) {
			return r, fmt.Errorf("alert-rates %v: three increasing positive numbers", c.AlertRates)
		}
		r.RateThresholds[i] = f
	}
	if c.AlertPeakK <= 0 {
		return r, fmt.Errorf("alert-peak-k %v: positive", c.AlertPeakK)
	}
	r.PeakK, r.MinCount7 = c.AlertPeakK, c.AlertMinWeek
	return r, nil
}

// listValue is a comma-separated flag that shows its default.
type listValue []string

func (l *listValue) String() string { return strings.Join(*l, ",") }

func (l *listValue) Set(s string) error { *l = splitList(s); return nil }

// mapTilesOrigin checks the tile template and returns the origin the
// page's CSP must allow images from ("" for none or for our own origin).
// A {s} subdomain placeholder becomes a CSP wildcard.
func (c *Config) mapTilesOrigin() (string, error) {
	t := c.MapTiles
	if t == "" {
		return "", nil
	}
	for _, p := range []string{"{z}", "{x}", "{y}"} {
		if !strings.Contains(t, p) {
			return "", fmt.Errorf("map-tiles %q: the template needs {z}, {x} and {y}", t)
		}
	}
	if strings.HasPrefix(t, "/") && !strings.HasPrefix(t, "//") {
		return "", nil // served by this origin
	}
	scheme, rest, ok := strings.Cut(t, "://")
	if !ok || (scheme != "https" && scheme != "http") {
		return "", fmt.Errorf("map-tiles %q: an http(s) URL or a path on this server", t)
	}
	host, _, _ := strings.Cut(rest, "/")
	host = strings.ReplaceAll(host, "{s}", "*")
	if host == "" || strings.ContainsAny(host, " ;,'\"{}") || strings.Contains(host, "@") {
		return "", fmt.Errorf("map-tiles %q: bad host", t)
	}
	return scheme + "://" + host, nil
}
