package turnserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/turn/v5"

	"crisisroom/internal/pionlog"
)

const testSecret = "0123456789abcdef0123456789abcdef"

// testLog shows warnings and errors on stderr. Not t.Log: pion goroutines
// may still log after the test returned, and t.Log would then panic.
func testLog(_ *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startTest starts a relay on loopback with ephemeral ports; edit adjusts
// the config first.
func startTest(t *testing.T, edit func(*Config)) *Server {
	t.Helper()
	cfg := Config{
		ListenUDP:        "127.0.0.1:0",
		ListenTCP:        "127.0.0.1:0",
		Realm:            "crisisroom",
		Secret:           testSecret,
		MaxAllocsPerUser: 10,
		Log:              testLog(t),
	}
	if edit != nil {
		edit(&cfg)
	}
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// testCert writes a self-signed certificate for names (DNS names or IPs)
// and returns the cert and key file paths.
func testCert(t *testing.T, names ...string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	write := func(p, typ string, b []byte) {
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(certFile, "CERTIFICATE", der)
	write(keyFile, "PRIVATE KEY", kder)
	return certFile, keyFile
}

// turnClient is a raw pion TURN client over UDP to s, for tests that need
// allocations and permissions without a whole PeerConnection.
func turnClient(t *testing.T, s *Server, username, password string) *turn.Client {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: s.UDPAddr().String(),
		TURNServerAddr: s.UDPAddr().String(),
		Username:       username,
		Password:       password,
		Conn:           conn,
		LoggerFactory:  pionlog.Factory{Log: testLog(t), Ceiling: slog.LevelDebug},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); _ = conn.Close() })
	return c
}

// memberClient is a turnClient with valid credentials for member.
func memberClient(t *testing.T, s *Server, member string) *turn.Client {
	t.Helper()
	user, pass := memberCreds(member)
	return turnClient(t, s, user, pass)
}

// memberCreds mints valid credentials for member.
func memberCreds(member string) (string, string) {
	return Credentials(testSecret, member, time.Now().Add(10*time.Minute))
}

func timeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
