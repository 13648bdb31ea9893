package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"crisisroom/rooms"
	"crisisroom/rooms/roomstest"
)

func open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "crisisroom.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestRoomsConformance(t *testing.T) {
	roomstest.Run(t, func(t *testing.T) rooms.Store { return open(t) })
}

func TestReopenKeepsSchemaAndData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateRoom(ctx, rooms.RoomInfo{Name: "main", Title: "x"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if _, err := s.Room(ctx, "main"); err != nil {
		t.Fatalf("room after reopen: %v", err)
	}
	var mode string
	if err := s.db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v", mode, err)
	}
}
