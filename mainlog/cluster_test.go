package mainlog_test

import (
	"context"
	"crisisroom/access"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"crisisroom/bus/memory"
	"crisisroom/mainlog"
	"crisisroom/protocol"
	"crisisroom/rooms"
	"crisisroom/store/sqlite"
)

// frames is a log watcher that keeps what it is sent.
type frames chan rooms.Frame

func (f frames) Send(fr rooms.Frame) { f <- fr }

// next returns the next frame's type and data within 5 s.
func (f frames) next(t *testing.T) (string, json.RawMessage) {
	t.Helper()
	select {
	case fr := <-f:
		var env protocol.Envelope
		if err := json.Unmarshal(fr.Data, &env); err != nil {
			t.Fatal(err)
		}
		return env.Type, env.Data
	case <-time.After(5 * time.Second):
		t.Fatal("no frame within 5 s")
		return "", nil
	}
}

// TestLogTwoInstances: two instances on one store and one bus (a cluster):
// what one writes reaches the other's watchers, numbered in order.
func TestLogTwoInstances(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b := memory.New()
	defer b.Close()
	newInstance := func() *mainlog.Service {
		s, err := mainlog.New(ctx, mainlog.Config{Store: st.Mainlog(), Publisher: b})
		if err != nil {
			t.Fatal(err)
		}
		sub, err := b.Subscribe(ctx, mainlog.TopicChanges)
		if err != nil {
			t.Fatal(err)
		}
		go s.Follow(ctx, sub)
		return s
	}
	a := newInstance()
	if err := a.EnsureRoot(ctx, "main", "Salle de crise"); err != nil {
		t.Fatal(err)
	}
	other := newInstance()
	if err := other.EnsureRoot(ctx, "main", "Salle de crise"); err != nil {
		t.Fatal(err)
	}
	w := make(frames, 16)
	watcher := access.LinkPrincipal("l2", "Écran", "main", access.Participant, "", false)
	if err := other.Hub().Watch(ctx, "main", watcher, w); err != nil {
		t.Fatal(err)
	}
	if typ, _ := w.next(t); typ != mainlog.TypeSnapshot {
		t.Fatalf("first frame %s", typ)
	}
	actor := mainlog.Actor{ID: "l1", Label: "COD", P: access.LinkPrincipal("l1", "COD", "main", access.Operator, "", false)}
	for i := 1; i <= 3; i++ {
		if _, _, err := a.Write(ctx, actor, "main", mainlog.EntryInput{Text: "entrée", Tags: []string{"decision"}}, nil); err != nil {
			t.Fatal(err)
		}
		typ, data := w.next(t)
		var e mainlog.Entry
		_ = json.Unmarshal(data, &e)
		if typ != mainlog.TypeEntry || e.Seq != int64(i) {
			t.Fatalf("on the other instance: %s %+v, want entry %d", typ, e, i)
		}
	}
	// The other instance numbers its own entries after them.
	e, _, err := other.Write(ctx, actor, "main", mainlog.EntryInput{Text: "depuis l'autre"}, nil)
	if err != nil || e.Seq != 4 {
		t.Fatalf("write on the other instance: %+v, %v", e, err)
	}
	if typ, _ := w.next(t); typ != mainlog.TypeEntry {
		t.Fatalf("own write: %s", typ)
	}
	// The same alert, logged by both instances, is one entry.
	for _, s := range []*mainlog.Service{a, other} {
		if _, err := s.System(ctx, "main", "Niveau d'alerte", "56178", "alert:56178:0:3:1"); err != nil {
			t.Fatal(err)
		}
	}
	list, err := st.Mainlog().Entries(ctx, mainlog.Query{Events: []string{"main"}})
	if err != nil || len(list) != 5 {
		t.Fatalf("entries: %d, %v (want 5: the alert once)", len(list), err)
	}
}
