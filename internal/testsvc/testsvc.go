// Package testsvc starts throwaway servers for tests of the cluster back
// ends: a redis-server and a PostgreSQL cluster (initdb into the test's temp
// dir), each on a free loopback port, stopped at cleanup, with Stop, Start
// and Restart for fault tests.
//
// A missing binary fails the test: the back end would go untested, which
// must not pass silently. If a server cannot be started for an
// environmental reason (initdb refused, start-up timeout…), the machine's
// own service (127.0.0.1:6379, 127.0.0.1:5432 database test) is used
// instead, and the log says so; such a shared server cannot be stopped, so
// fault tests fail on it.
package testsvc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// startTimeout bounds how long a server may take to say it is ready.
const startTimeout = 30 * time.Second

// proc is one server process, with its log kept for failure messages.
type proc struct {
	name  string
	cmd   *exec.Cmd
	log   *syncBuffer
	ready chan struct{} // closed when the ready line is logged
	done  chan struct{} // closed when the process has exited
	err   error         // the exit status, once done
}

// syncBuffer is a log written by the pipe reader and read by the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) WriteLine(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
	b.buf.WriteByte('\n')
}

// Tail returns the last lines of the log.
func (b *syncBuffer) Tail() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(b.buf.String()), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

// startProc runs cmd and waits until its combined output has a line
// containing readyLine.
func startProc(name string, cmd *exec.Cmd, readyLine string) (*proc, error) {
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	p := &proc{name: name, cmd: cmd, log: &syncBuffer{}, ready: make(chan struct{}), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		signalled := false
		for sc.Scan() {
			p.log.WriteLine(sc.Text())
			if !signalled && strings.Contains(sc.Text(), readyLine) {
				signalled = true
				close(p.ready)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		p.err = cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	select {
	case <-p.ready:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited before it was ready (%v):\n%s", name, p.err, p.log.Tail())
	case <-time.After(startTimeout):
		p.kill()
		return nil, fmt.Errorf("%s not ready within %s:\n%s", name, startTimeout, p.log.Tail())
	}
}

// stop sends sig and waits for the exit, killing after a grace period.
func (p *proc) stop(sig syscall.Signal) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return nil
	case <-time.After(15 * time.Second):
		p.kill()
		return fmt.Errorf("%s ignored %v for 15s: killed", p.name, sig)
	}
}

func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// freePort returns a loopback TCP port nobody listens on now. Another
// process may take it before the server binds it: callers retry.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// binary finds a server binary on PATH or in dirs (globs), newest last.
func binary(name string, globs ...string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	var found []string
	for _, g := range globs {
		m, _ := filepath.Glob(filepath.Join(g, name))
		found = append(found, m...)
	}
	if len(found) == 0 {
		return "", fmt.Errorf("%s not found on PATH nor in %s: install it (Debian: %s)", name,
			strings.Join(globs, ", "), map[string]string{"redis-server": "apt-get install redis-server",
				"postgres": "apt-get install postgresql", "initdb": "apt-get install postgresql"}[name])
	}
	slices.SortFunc(found, func(a, b string) int { return versionOf(a) - versionOf(b) })
	return found[len(found)-1], nil
}

// versionOf reads the major version out of /usr/lib/postgresql/NN/bin/x.
func versionOf(path string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return n
}

// dialable tells whether something accepts TCP connections at addr.
func dialable(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// errExternal is what Stop and Start report on a machine service.
var errExternal = errors.New("this is the machine's shared service (the throwaway server did not start): it cannot be stopped by a test")

// ctxTimeout is a short context for set-up queries.
func ctxTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 15*time.Second)
}
