package localsvc

import (
	"errors"
	"strings"
	"testing"
)

// TestMissingBinary: a server that is not installed is told apart from
// one that would not start (testsvc fails the test on the first and falls
// back to the machine's service on the second).
func TestMissingBinary(t *testing.T) {
	_, err := binary("crisisroom-no-such-server", t.TempDir())
	if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "crisisroom-no-such-server") {
		t.Fatalf("err = %v, want ErrNotInstalled naming the binary", err)
	}
}

// TestRedisStopStart: the server answers on its address, refuses while
// stopped, and comes back on the same one.
func TestRedisStopStart(t *testing.T) {
	r, err := StartRedis(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Stop() })
	if err := dialable(r.Addr); err != nil {
		t.Fatal(err)
	}
	if r.Pid() <= 0 {
		t.Fatalf("pid %d", r.Pid())
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	if err := dialable(r.Addr); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}
