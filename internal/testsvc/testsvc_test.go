package testsvc

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestPostgresRestartKeepsData: the throwaway cluster answers on its
// schema URL, refuses connections while stopped, and keeps committed data
// across a restart.
func TestPostgresRestartKeepsData(t *testing.T) {
	pg := StartPostgres(t)
	u := pg.Schema(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE kept (v TEXT); INSERT INTO kept VALUES ('x')`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	start := time.Now()
	pg.Stop(t)
	if c, err := pgx.Connect(ctx, u); err == nil {
		c.Close(ctx)
		t.Fatal("connected to a stopped server")
	}
	pg.Start(t)
	t.Logf("restart took %s", time.Since(start).Round(time.Millisecond))
	conn, err = pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, `SELECT v FROM kept`).Scan(&v); err != nil || v != "x" {
		t.Fatalf("after restart: %q, %v", v, err)
	}
}

// TestRedisRestart: the throwaway redis-server answers PING, stops and
// starts again on the same address.
func TestRedisRestart(t *testing.T) {
	r := StartRedis(t)
	if err := redisPing(r.Addr); err != nil {
		t.Fatal(err)
	}
	r.Restart(t)
	if err := redisPing(r.Addr); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}
