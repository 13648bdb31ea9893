package cluster

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// watcher is a map watcher as docs/protocol.md describes it (a wall
// screen: subscribe with a room token, no join): it keeps the latest state
// per commune from the snapshot and the deltas, and asks for a resync when
// a delta's seq is not the last plus one.
type watcher struct {
	name string
	ws   *websocket.Conn
	wmu  sync.Mutex // one writer at a time (gorilla)

	mu        sync.Mutex
	seq       uint64
	states    map[string]mapState
	snapshots int
	gaps      int
	errs      []string
	changed   chan struct{} // 1-buffered: something was received
	closed    chan struct{} // the socket ended
}

type mapState struct {
	Code  string `json:"code"`
	V     int64  `json:"v"`
	Total int    `json:"total"`
}

type envelope struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

type mapMsg struct {
	Seq    uint64     `json:"seq"`
	States []mapState `json:"states"`
}

func dialWatcher(t *testing.T, name string, s *server, roomToken string) *watcher {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.base, "http")+"/ws", nil)
	if err != nil {
		t.Fatalf("watcher %s: dial %s: %v", name, s, err)
	}
	w := &watcher{name: name, ws: ws, states: map[string]mapState{}, changed: make(chan struct{}, 1), closed: make(chan struct{})}
	t.Cleanup(func() { ws.Close(); <-w.closed })
	w.send(t, `{"v":1,"type":"subscribe","id":"1","data":{"topic":"map","token":"`+roomToken+`"}}`)
	go w.read()
	return w
}

func (w *watcher) send(t *testing.T, msg string) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if err := w.ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil && t != nil {
		t.Errorf("watcher %s: write: %v", w.name, err)
	}
}

func (w *watcher) read() {
	defer close(w.closed)
	for {
		_, b, err := w.ws.ReadMessage()
		if err != nil {
			return
		}
		var env envelope
		if json.Unmarshal(b, &env) != nil {
			continue
		}
		w.take(env)
		select {
		case w.changed <- struct{}{}:
		default:
		}
	}
}

func (w *watcher) take(env envelope) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var m mapMsg
	switch env.Type {
	case "map-snapshot":
		if json.Unmarshal(env.Data, &m) != nil {
			return
		}
		w.snapshots++
		w.seq = m.Seq
		w.states = map[string]mapState{}
		for _, s := range m.States {
			w.states[s.Code] = s
		}
	case "map-delta":
		if json.Unmarshal(env.Data, &m) != nil {
			return
		}
		if m.Seq != w.seq+1 {
			w.gaps++
			go w.send(nil, `{"v":1,"type":"resync","id":"r","data":{"topic":"map"}}`)
			return
		}
		w.seq = m.Seq
		for _, s := range m.States {
			if s.V > w.states[s.Code].V {
				w.states[s.Code] = s
			}
		}
	case "error":
		w.errs = append(w.errs, string(env.Data))
	}
}

// wantFigures waits until the watcher shows exactly want for these
// communes and their sum for the département (nothing else was declared).
func (w *watcher) wantFigures(t *testing.T, want map[string]int, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		diff := w.diff(want)
		if diff == "" {
			return time.Since(start)
		}
		select {
		case <-w.changed:
		case <-w.closed:
			t.Fatalf("watcher %s: socket closed while waiting: %s", w.name, diff)
		case <-deadline.C:
			t.Fatalf("watcher %s: after %s: %s", w.name, within, diff)
		}
	}
}

func (w *watcher) diff(want map[string]int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.errs) > 0 {
		return "errors: " + strings.Join(w.errs, "; ")
	}
	if w.snapshots == 0 {
		return "no snapshot yet"
	}
	var bad []string
	sum := 0
	for code, n := range want {
		sum += n
		if got := w.states[code].Total; got != n {
			bad = append(bad, fmt.Sprintf("%s=%d want %d", code, got, n))
		}
	}
	if got := w.states[""].Total; got != sum {
		bad = append(bad, fmt.Sprintf("département=%d want %d", got, sum))
	}
	sort.Strings(bad)
	return strings.Join(bad, ", ")
}

// communes counts the states of the last snapshot and deltas (every
// commune of the territory plus the département).
func (w *watcher) communes() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.states)
}
