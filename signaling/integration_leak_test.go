package signaling_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"crisisroom/rtcpeer"
)

// TestPionClientsLeaveNoGoroutines: two clients mesh, drop and resume,
// leave; once they are closed and the server is shut down, the goroutine
// count is back where it was.
func TestPionClientsLeaveNoGoroutines(t *testing.T) {
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), itTimeout)
	defer cancel()
	t.Run("session", func(t *testing.T) {
		s := itStart(t)
		clients := s.join(ctx, t, 2, true)
		itMeshUp(ctx, t, clients)
		if err := clients[0].Drop(); err != nil {
			t.Fatal(err)
		}
		if err := clients[0].Resume(ctx); err != nil {
			t.Fatal(err)
		}
		if err := clients[0].WaitCount(ctx, rtcpeer.EventConnected, clients[1].PeerID(), 2); err != nil {
			t.Fatal(err)
		}
		for _, c := range clients {
			if err := c.Leave(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}) // the subtest's cleanups close the clients, then the server
	// pion ends a few helpers (timers, open callbacks) just after Close
	// returns; give them a bounded moment.
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before, %d after:\n%s", base, n, buf[:runtime.Stack(buf, true)])
	}
}
