// Package localsvc runs throwaway back-end servers on loopback: a
// redis-server that keeps nothing on disk and a PostgreSQL cluster
// initdb'd into a directory, each on a free port, with Stop and Start for
// fault scenarios. Tests use it through internal/testsvc (which adds
// testing.TB plumbing and fallbacks); `crisisroom bench fanout --instances`
// uses it directly, which is why it must not import package testing.
//
// The servers get the parent-death signal: a test or bench killed outright
// does not leave them running.
package localsvc

import (
	"bufio"
	"bytes"
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

// ErrNotInstalled wraps the error of a missing server binary, which callers
// may treat differently from a server that would not start.
var ErrNotInstalled = errors.New("not installed")

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

// syncBuffer is a log written by the pipe reader and read by the caller.
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
func startProc(name string, cmd *exec.Cmd, readyLine string, deathSig syscall.Signal) (*proc, error) {
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Set in the child after its credentials change, so it holds for a
	// server run as the postgres user too.
	cmd.SysProcAttr.Pdeathsig = deathSig
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

// stopAndCheck stops p and checks that nothing answers at addr any more.
func stopAndCheck(p *proc, sig syscall.Signal, addr string) error {
	if p == nil {
		return nil
	}
	if err := p.stop(sig); err != nil {
		return err
	}
	if err := dialable(addr); err == nil {
		return fmt.Errorf("%s still accepts connections after %s stopped", addr, p.name)
	}
	return nil
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
		return "", fmt.Errorf("%s %w: not on PATH nor in %s (Debian: %s)", name, ErrNotInstalled,
			strings.Join(globs, ", "), map[string]string{"redis-server": "apt-get install redis-server",
				"postgres": "apt-get install postgresql"}[name])
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
