package localsvc

import (
	"net"
	"os/exec"
	"strconv"
	"syscall"
)

// Redis is a throwaway redis-server.
type Redis struct {
	// URL is for the client: redis://127.0.0.1:PORT/0.
	URL  string
	Addr string

	bin, dir string
	port     int
	p        *proc
}

// StartRedis starts a redis-server that keeps nothing on disk (dir is its
// working directory), on a free loopback port.
func StartRedis(dir string) (*Redis, error) {
	bin, err := binary("redis-server", "/usr/bin", "/usr/local/bin")
	if err != nil {
		return nil, err
	}
	r := &Redis{bin: bin, dir: dir}
	for try := 0; ; try++ { // a free port may be taken before redis binds it
		if r.port, err = freePort(); err != nil {
			return nil, err
		}
		if err = r.start(); err == nil {
			return r, nil
		}
		if try == 2 {
			return nil, err
		}
	}
}

func (r *Redis) start() error {
	r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port))
	r.URL = "redis://" + r.Addr + "/0"
	cmd := exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", r.dir, "--daemonize", "no", "--loglevel", "notice")
	p, err := startProc("redis-server", cmd, "Ready to accept connections", syscall.SIGTERM)
	if err != nil {
		return err
	}
	r.p = p
	return nil
}

// Pid is the server's process id (to read its CPU time and memory).
func (r *Redis) Pid() int { return r.p.cmd.Process.Pid }

// Stop shuts the server down (clients see their connections close).
func (r *Redis) Stop() error { return stopAndCheck(r.p, syscall.SIGTERM, r.Addr) }

// Start starts it again on the same port, empty (nothing is persisted).
func (r *Redis) Start() error { return r.start() }
