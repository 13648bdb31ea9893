package testsvc

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Postgres is a throwaway PostgreSQL cluster (or, failing that, the
// machine's database test).
type Postgres struct {
	// URL reaches the server's admin database; tests normally want a
	// fresh schema from Schema instead.
	URL  string
	Addr string

	bin, initdb string
	dir, data   string
	port        int
	cred        *syscall.Credential // the postgres user's, when tests run as root
	p           *proc
	external    bool
}

// pgGlobs are where Debian installs the server binaries.
var pgGlobs = []string{"/usr/lib/postgresql/*/bin"}

// StartPostgres initdbs a cluster into a temp dir and starts it on a free
// loopback port without fsync (fast, and nothing must outlive the test);
// it is stopped at the end of t. As root, initdb and postgres (which refuse
// root) run as the postgres user.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin, err := binary("postgres", pgGlobs...)
	if err != nil {
		t.Fatalf("testsvc: %v", err)
	}
	// initdb must be of the server's version: take the one beside it.
	real, err := filepath.EvalSymlinks(bin)
	if err != nil {
		t.Fatalf("testsvc: %v", err)
	}
	initdb := filepath.Join(filepath.Dir(real), "initdb")
	if _, err := os.Stat(initdb); err != nil {
		t.Fatalf("testsvc: no initdb beside %s: %v (Debian: apt-get install postgresql)", real, err)
	}
	pg := &Postgres{bin: bin, initdb: initdb, dir: t.TempDir()}
	startErr := pg.initCluster()
	for try := 0; startErr == nil && try < 3; try++ {
		if pg.port, startErr = freePort(); startErr != nil {
			break
		}
		if startErr = pg.start(); startErr == nil {
			break
		}
	}
	if startErr != nil {
		pg.fallback(t, startErr)
		return pg
	}
	t.Cleanup(func() {
		if pg.p != nil {
			_ = pg.p.stop(syscall.SIGINT)
		}
	})
	t.Logf("testsvc: postgres %s (%s)", pg.Addr, bin)
	return pg
}

// initCluster runs initdb into dir/data, owned by the postgres user when
// running as root (the temp dirs are made traversable for it).
func (pg *Postgres) initCluster() error {
	pg.data = filepath.Join(pg.dir, "data")
	if err := os.Mkdir(pg.data, 0o700); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("running as root and no postgres user to run initdb as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		pg.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		// t.TempDir's parent is 0700: let the postgres user through.
		for _, d := range []string{filepath.Dir(pg.dir), pg.dir} {
			if err := os.Chmod(d, 0o711); err != nil {
				return err
			}
		}
		if err := os.Chown(pg.data, uid, gid); err != nil {
			return err
		}
	}
	cmd := pg.command(pg.initdb, "-D", pg.data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--locale=C", "--no-sync", "--no-instructions")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, out)
	}
	return nil
}

// command runs bin as the postgres user when we are root.
func (pg *Postgres) command(bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Dir = pg.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if pg.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred}
	}
	return cmd
}

func (pg *Postgres) start() error {
	pg.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(pg.port))
	pg.URL = "postgres://postgres@" + pg.Addr + "/postgres?sslmode=disable"
	// The socket goes in the data dir (owned by the server's user); the
	// tests connect over TCP.
	cmd := pg.command(pg.bin, "-D", pg.data, "-p", strconv.Itoa(pg.port), "-k", pg.data,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off",
		"-c", "max_connections=60", "-c", "shared_buffers=32MB")
	p, err := startProc("postgres", cmd, "database system is ready to accept connections")
	if err != nil {
		return err
	}
	pg.p = p
	return nil
}

// fallback uses the machine's PostgreSQL (database test) when ours could
// not start.
func (pg *Postgres) fallback(t testing.TB, why error) {
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
	pg.URL, pg.Addr, pg.external = u, "127.0.0.1:5432", true
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
	if pg.external {
		t.Fatalf("testsvc: Postgres.Stop: %v", errExternal)
	}
	if err := pg.p.stop(syscall.SIGINT); err != nil {
		t.Fatalf("testsvc: %v", err)
	}
	if err := dialable(pg.Addr); err == nil {
		t.Fatalf("testsvc: %s still accepts connections after postgres stopped", pg.Addr)
	}
}

// Start starts it again on the same port and data.
func (pg *Postgres) Start(t testing.TB) {
	t.Helper()
	if pg.external {
		t.Fatalf("testsvc: Postgres.Start: %v", errExternal)
	}
	if err := pg.start(); err != nil {
		t.Fatalf("testsvc: restart: %v", err)
	}
}

// Restart is Stop then Start.
func (pg *Postgres) Restart(t testing.TB) {
	t.Helper()
	pg.Stop(t)
	pg.Start(t)
}
