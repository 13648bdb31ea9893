package localsvc

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// Postgres is a throwaway PostgreSQL cluster.
type Postgres struct {
	// URL reaches the server's admin database (postgres, user postgres,
	// no password).
	URL  string
	Addr string

	bin, initdb string
	dir, data   string
	port        int
	cred        *syscall.Credential // the postgres user's, when running as root
	p           *proc
}

// pgGlobs are where Debian installs the server binaries.
var pgGlobs = []string{"/usr/lib/postgresql/*/bin"}

// StartPostgres initdbs a cluster into dir/data and starts it on a free
// loopback port without fsync (fast, and nothing must outlive the caller).
// As root, initdb and postgres (which refuse root) run as the postgres
// user: dir is made traversable for it, and its parents must already be
// (a directory made by os.MkdirTemp in /tmp is fine).
func StartPostgres(dir string) (*Postgres, error) {
	bin, err := binary("postgres", pgGlobs...)
	if err != nil {
		return nil, err
	}
	// initdb must be of the server's version: take the one beside it.
	real, err := filepath.EvalSymlinks(bin)
	if err != nil {
		return nil, err
	}
	initdb := filepath.Join(filepath.Dir(real), "initdb")
	if _, err := os.Stat(initdb); err != nil {
		return nil, fmt.Errorf("initdb %w beside %s: %v (Debian: apt-get install postgresql)", ErrNotInstalled, real, err)
	}
	pg := &Postgres{bin: bin, initdb: initdb, dir: dir}
	if err := pg.initCluster(); err != nil {
		return nil, err
	}
	for try := 0; ; try++ { // a free port may be taken before postgres binds it
		if pg.port, err = freePort(); err != nil {
			return nil, err
		}
		if err = pg.start(); err == nil {
			return pg, nil
		}
		if try == 2 {
			return nil, err
		}
	}
}

// initCluster runs initdb into dir/data, owned by the postgres user when
// running as root.
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
		if err := os.Chmod(pg.dir, 0o711); err != nil {
			return err
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
	// The socket goes in the data dir (owned by the server's user); clients
	// connect over TCP.
	cmd := pg.command(pg.bin, "-D", pg.data, "-p", strconv.Itoa(pg.port), "-k", pg.data,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off",
		"-c", "max_connections=60", "-c", "shared_buffers=32MB")
	// SIGINT is PostgreSQL's fast shutdown: sessions are cut.
	p, err := startProc("postgres", cmd, "database system is ready to accept connections", syscall.SIGINT)
	if err != nil {
		return err
	}
	pg.p = p
	return nil
}

// Pid is the postmaster's process id (sessions run in its children).
func (pg *Postgres) Pid() int { return pg.p.cmd.Process.Pid }

// Stop shuts the server down at once (fast shutdown: sessions are cut).
func (pg *Postgres) Stop() error { return stopAndCheck(pg.p, syscall.SIGINT, pg.Addr) }

// Start starts it again on the same port and data.
func (pg *Postgres) Start() error { return pg.start() }
