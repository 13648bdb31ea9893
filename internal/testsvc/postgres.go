package testsvc

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"crisisroom/internal/localsvc"
)

// Postgres is a throwaway PostgreSQL cluster (or, failing that, the
// machine's database test).
type Postgres struct {
	// URL reaches the server's admin database; tests normally want a
	// fresh schema from Schema instead.
	URL  string
	Addr string

	svc *localsvc.Postgres // nil when external
}

// StartPostgres initdbs a cluster into a temp dir and starts it on a free
// loopback port without fsync (fast, and nothing must outlive the test);
// it is stopped at the end of t. As root, initdb and postgres (which refuse
// root) run as the postgres user.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		// t.TempDir's parent is 0700: let the postgres user through
		// (localsvc opens dir itself).
		if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
			t.Fatalf("testsvc: %v", err)
		}
	}
	svc, err := localsvc.StartPostgres(dir)
	if errors.Is(err, localsvc.ErrNotInstalled) {
		t.Fatalf("testsvc: %v", err)
	}
	if err != nil {
		return pgFallback(t, err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	t.Logf("testsvc: postgres %s", svc.Addr)
	return &Postgres{URL: svc.URL, Addr: svc.Addr, svc: svc}
}

// pgFallback uses the machine's PostgreSQL (database test) when ours
// could not start.
func pgFallback(t testing.TB, why error) *Postgres {
	t.Helper()
	const u = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	ctx, cancel := ctxTimeout()
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatalf("testsvc: postgres did not start: %v\nand the machine's PostgreSQL (%s) does not answer either: %v", why, u, err)
	}
	conn.Close(ctx)
	t.Logf("testsvc: FALLBACK to the machine's PostgreSQL (%s) because the throwaway server did not start: %v", u, why)
	return &Postgres{URL: u, Addr: "127.0.0.1:5432"}
}

// Schema creates an empty schema and returns a URL whose connections use
// it (search_path), so that each test gets a fresh, isolated database at
// the cost of one statement. It is dropped at the end of t.
func (pg *Postgres) Schema(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "t_" + hex.EncodeToString(b)
	pg.exec(t, "CREATE SCHEMA "+name)
	t.Cleanup(func() {
		ctx, cancel := ctxTimeout()
		defer cancel()
		if conn, err := pgx.Connect(ctx, pg.URL); err == nil { // the server may be down after a fault test
			_, _ = conn.Exec(ctx, "DROP SCHEMA "+name+" CASCADE")
			conn.Close(ctx)
		}
	})
	u, err := url.Parse(pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

func (pg *Postgres) exec(t testing.TB, sql string) {
	t.Helper()
	ctx, cancel := ctxTimeout()
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.URL)
	if err != nil {
		t.Fatalf("testsvc: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("testsvc: %s: %v", sql, err)
	}
}

// Stop shuts the server down at once (fast shutdown: sessions are cut).
func (pg *Postgres) Stop(t testing.TB) {
	t.Helper()
	if pg.svc == nil {
		t.Fatalf("testsvc: Postgres.Stop: %v", errExternal)
	}
	if err := pg.svc.Stop(); err != nil {
		t.Fatalf("testsvc: %v", err)
	}
}

// Start starts it again on the same port and data.
func (pg *Postgres) Start(t testing.TB) {
	t.Helper()
	if pg.svc == nil {
		t.Fatalf("testsvc: Postgres.Start: %v", errExternal)
	}
	if err := pg.svc.Start(); err != nil {
		t.Fatalf("testsvc: restart: %v", err)
	}
}

// Restart is Stop then Start.
func (pg *Postgres) Restart(t testing.TB) {
	t.Helper()
	pg.Stop(t)
	pg.Start(t)
}
