package app

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"crisisroom/bus/redis"
	"crisisroom/internal/testsvc"
	"crisisroom/rooms"
	"crisisroom/store/postgres"
)

// TestClusterBackends: two instances configured with the same
// --database-url and --redis-url share rooms, links and the bus; /readyz
// turns 503 while PostgreSQL is down and 200 again once it is back.
func TestClusterBackends(t *testing.T) {
	rd, pg := testsvc.StartRedis(t), testsvc.StartPostgres(t)
	cfg := DefaultConfig()
	cfg.DatabaseURL, cfg.RedisURL = pg.Schema(t), rd.URL
	cfg.DataDir = t.TempDir()
	a1, srv1 := startApp(t, cfg)
	cfg.DataDir = t.TempDir()
	a2, _ := startApp(t, cfg)
	if _, ok := a1.be.Store.(*postgres.Store); !ok {
		t.Fatalf("store is %T, want PostgreSQL", a1.be.Store)
	}
	if _, ok := a1.be.Bus.(*redis.Bus); !ok {
		t.Fatalf("bus is %T, want Redis", a1.be.Bus)
	}
	ctx := context.Background()

	// The second instance found the room the first one created, and honours
	// the first one's links.
	if created, err := a2.be.Store.CreateRoom(ctx, rooms.RoomInfo{Name: MainRoom, CreatedAt: time.Now()}); err != nil || created {
		t.Fatalf("main room created twice: %v %v", created, err)
	}
	link, err := a1.NewRoomLink(ctx, MainRoom, rooms.RoleParticipant, "test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	token := link[strings.Index(link, "#t=")+3:]
	if l, err := a2.be.Store.LinkByHash(ctx, rooms.HashSecret(token)); err != nil || l.Scope != MainRoom {
		t.Fatalf("link on the other instance: %+v, %v", l, err)
	}

	// What one instance publishes reaches the other's subscribers.
	sub, err := a2.be.Bus.Subscribe(ctx, "apptest")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := a1.be.Bus.Publish(ctx, "apptest", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-sub.C():
		if string(m) != "hello" {
			t.Fatalf("got %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("message from the other instance not received")
	}

	if code, r := getReadyz(t, srv1.URL); code != http.StatusOK || r.Checks["store"] != "ok" || r.Checks["bus"] != "ok" {
		t.Fatalf("readyz %d %+v", code, r)
	}
	pg.Stop(t)
	if code, r := getReadyz(t, srv1.URL); code != http.StatusServiceUnavailable || r.Checks["store"] == "ok" || r.Checks["bus"] != "ok" {
		t.Fatalf("readyz with PostgreSQL down: %d %+v", code, r)
	}
	pg.Start(t)
	if code, r := getReadyz(t, srv1.URL); code != http.StatusOK {
		t.Fatalf("readyz after PostgreSQL came back: %d %+v", code, r)
	}
}
