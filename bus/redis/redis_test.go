package redis

import (
	"context"
	"log/slog"
	"testing"

	"crisisroom/bus"
	"crisisroom/bus/bustest"
	"crisisroom/internal/testsvc"
)

func open(t *testing.T, url string) *Bus {
	t.Helper()
	b, err := New(context.Background(), Options{URL: url}, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// testWriter sends the bus's log to the test's.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

func TestConformance(t *testing.T) {
	srv := testsvc.StartRedis(t)
	bustest.Run(t, func(t *testing.T) bus.Bus { return open(t, srv.URL) })
}

// TestRedisRestart: a subscription survives redis-server going away and
// coming back (go-redis redials and re-subscribes), and says so on Lost.
func TestRedisRestart(t *testing.T) {
	srv := testsvc.StartRedis(t)
	bustest.RunOutage(t, open(t, srv.URL), srv.Stop, srv.Start)
}

func TestNewFailsWhenRedisIsDown(t *testing.T) {
	srv := testsvc.StartRedis(t)
	srv.Stop(t)
	if b, err := New(context.Background(), Options{URL: srv.URL}, slog.New(slog.DiscardHandler)); err == nil {
		b.Close()
		t.Fatal("New succeeded with Redis down")
	}
	if _, err := New(context.Background(), Options{URL: "http://nope"}, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("New accepted a non-redis URL")
	}
}
