package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"crisisroom/protocol"
	"crisisroom/rooms"
	"crisisroom/turnserver"
)

// writeCert writes a self-signed certificate for host into dir.
func writeCert(t *testing.T, dir, host string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "turn.crt"), filepath.Join(dir, "turn.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// turnConfig: the built-in relay on loopback, ephemeral ports, all three
// transports, the public URL's host being the TLS certificate's name.
func turnConfig(t *testing.T, certHost string) Config {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.PublicURL = "https://turn.test"
	cfg.STUNURLs = []string{"stun:stun.example.org:3478"}
	cfg.TURNURLs = []string{"turn:coturn.example.org:3478?transport=udp"}
	cfg.TURNEnabled = true
	cfg.TURNListenUDP, cfg.TURNListenTCP, cfg.TURNListenTLS = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.TURNTLSCert, cfg.TURNTLSKey = writeCert(t, cfg.DataDir, certHost)
	return cfg
}

func startApp(t testing.TB, cfg Config) (*App, *httptest.Server) {
	t.Helper()
	ctx := context.Background()
	be, err := OpenBackends(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(ctx, cfg, be, slog.New(slog.DiscardHandler))
	if err != nil {
		_ = be.Close()
		t.Fatal(err)
	}
	if _, _, err := a.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() {
		srv.Close()
		_ = a.Shutdown(context.Background())
		_ = be.Close()
	})
	return a, srv
}

type readiness struct {
	Ready  bool              `json:"ready"`
	Checks map[string]string `json:"checks"`
}

func getReadyz(t *testing.T, base string) (int, readiness) {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r readiness
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, r
}

// TestTURNReadyAndJoin: with --turn on loopback, /readyz reports the relay
// self-test (UDP, TCP, TLS) ok; a joining member gets STUN, the built-in
// relay's URLs at its real ports and the external TURN, with fresh
// per-member credentials; and those credentials carry a relay-only pion
// connection through the built-in relay.
func TestTURNReadyAndJoin(t *testing.T) {
	a, srv := startApp(t, turnConfig(t, "turn.test"))
	code, r := getReadyz(t, srv.URL)
	if code != http.StatusOK || r.Checks["turn"] != "ok" {
		t.Fatalf("readyz %d %+v, want 200 with turn ok", code, r)
	}

	link, err := a.NewRoomLink(context.Background(), MainRoom, rooms.RoleParticipant, "turn test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	joined := join(t, srv.URL, link[strings.Index(link, "#t=")+3:])
	ice := joined.ICEServers
	if len(ice) != 3 {
		t.Fatalf("ice_servers = %+v, want STUN, built-in, external", ice)
	}
	if ice[0].URLs[0] != "stun:stun.example.org:3478" || ice[0].Username != "" {
		t.Errorf("STUN entry %+v", ice[0])
	}
	builtin := ice[1]
	pats := []string{
		`^turn:127\.0\.0\.1:[1-9][0-9]*\?transport=udp$`,
		`^turn:127\.0\.0\.1:[1-9][0-9]*\?transport=tcp$`,
		`^turns:turn\.test:[1-9][0-9]*\?transport=tcp$`,
	}
	if len(builtin.URLs) != len(pats) {
		t.Fatalf("built-in URLs %v", builtin.URLs)
	}
	for i, p := range pats {
		if !regexp.MustCompile(p).MatchString(builtin.URLs[i]) {
			t.Errorf("built-in URL %q does not match %s", builtin.URLs[i], p)
		}
	}
	exp, member, _ := strings.Cut(builtin.Username, ":")
	if member != joined.PeerID {
		t.Errorf("username %q: member part should be the peer id %q", builtin.Username, joined.PeerID)
	}
	if n, _ := strconv.ParseInt(exp, 10, 64); time.Until(time.Unix(n, 0)) < 9*time.Minute || time.Until(time.Unix(n, 0)) > 11*time.Minute {
		t.Errorf("credential expiry %s, want about now+10m", exp)
	}
	if ice[2].URLs[0] != "turn:coturn.example.org:3478?transport=udp" || ice[2].Credential != builtin.Credential {
		t.Errorf("external TURN entry %+v", ice[2])
	}

	// What the browser got works: relay-only through the UDP and TCP URLs.
	se := turnserver.SettingEngine()
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeTCP4})
	for _, u := range builtin.URLs[:2] {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		servers := []webrtc.ICEServer{{URLs: []string{u}, Username: builtin.Username, Credential: builtin.Credential}}
		d, err := turnserver.RelayPair(ctx, se, servers)
		cancel()
		if err != nil {
			t.Fatalf("relay-only through %s with the join credentials: %v", u, err)
		}
		t.Logf("relay-only connect through %s: %v", u, d)
	}
}

// join sends a join on /ws and returns the "joined" payload.
func join(t *testing.T, base, token string) protocol.Joined {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	msg := map[string]any{"v": 1, "type": protocol.TypeJoin, "id": "1", "data": protocol.Join{Token: token, Name: "Relayed"}}
	if err := ws.WriteJSON(msg); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var env protocol.Envelope
		if err := ws.ReadJSON(&env); err != nil {
			t.Fatal(err)
		}
		if env.Type == protocol.TypeJoined {
			var j protocol.Joined
			if err := json.Unmarshal(env.Data, &j); err != nil {
				t.Fatal(err)
			}
			return j
		}
	}
}

// TestTURNSelfTestFailureReported: a certificate that does not carry the
// public host name fails the TLS self-test, and /readyz says so (503);
// a relay that stops answering is caught by the next self-test run.
func TestTURNSelfTestFailureReported(t *testing.T) {
	start := time.Now()
	a, srv := startApp(t, turnConfig(t, "other.test"))
	t.Logf("start with a failing self-test: %v", time.Since(start))
	code, r := getReadyz(t, srv.URL)
	if code != http.StatusServiceUnavailable || !strings.Contains(r.Checks["turn"], "tls") {
		t.Fatalf("readyz %d %+v, want 503 with a tls failure", code, r)
	}
	t.Logf("reported: %s", r.Checks["turn"])

	cfg := turnConfig(t, "turn.test")
	// TCP only: a closed TCP port refuses at once, where a UDP client
	// retransmits for seconds before giving up.
	cfg.TURNListenUDP, cfg.TURNListenTLS, cfg.TURNTLSCert, cfg.TURNTLSKey = "", "", "", ""
	a, srv = startApp(t, cfg)
	if _, r := getReadyz(t, srv.URL); r.Checks["turn"] != "ok" {
		t.Fatalf("turn %q, want ok", r.Checks["turn"])
	}
	_ = a.turn.srv.Close() // the relay dies under the running server
	start = time.Now()
	a.turn.runSelfTest(context.Background())
	took := time.Since(start)
	code, r = getReadyz(t, srv.URL)
	if code != http.StatusServiceUnavailable || !strings.Contains(r.Checks["turn"], "tcp") {
		t.Fatalf("after the relay died: readyz %d %+v", code, r)
	}
	t.Logf("dead relay detected in %v: %s", took, r.Checks["turn"])
}

// TestTURNOff: without --turn there is no "turn" check and no relay URL.
func TestTURNOff(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	a, srv := startApp(t, cfg)
	if _, r := getReadyz(t, srv.URL); r.Checks["turn"] != "" {
		t.Fatalf("turn check %q with TURN off", r.Checks["turn"])
	}
	if ice := a.turn.iceServers("m1"); len(ice) != 0 {
		t.Fatalf("ice servers %+v with nothing configured", ice)
	}
}
