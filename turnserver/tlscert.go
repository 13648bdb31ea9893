package turnserver

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"time"
)

// certReloader serves the TLS certificate from files and picks up a renewed
// one (Let's Encrypt renews every 60-90 days) without a restart: a 24/7
// service must not need one for that. It re-reads the files when their
// modification time changes, checked at most once a minute.
type certReloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
	checked time.Time
}

func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) load() error {
	st, err := os.Stat(r.certFile)
	if err != nil {
		return fmt.Errorf("turn tls cert: %w", err)
	}
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("turn tls cert: %w", err)
	}
	r.cert, r.modTime, r.checked = &c, st.ModTime(), time.Now()
	return nil
}

// get is tls.Config.GetCertificate. A renewal caught half-written keeps
// the previous certificate until the next check.
func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) >= time.Minute {
		r.checked = time.Now()
		if st, err := os.Stat(r.certFile); err == nil && !st.ModTime().Equal(r.modTime) {
			_ = r.load() // load only replaces the certificate on success
		}
	}
	return r.cert, nil
}

// roots is a pool holding the served chain itself. The self-test verifies
// the server against it: that checks the name browsers will ask for and the
// validity dates, without depending on the host's CA bundle.
func (r *certReloader) roots() (*x509.CertPool, error) {
	c, err := r.get(nil)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, der := range c.Certificate {
		x, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, err
		}
		pool.AddCert(x)
	}
	return pool, nil
}
