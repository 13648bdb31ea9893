package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"crisisroom/rooms"
)

// scrape returns every sample of /metrics by series (name{labels}), from
// the metrics listener's handler.
func scrape(t *testing.T, a *App) map[string]float64 {
	t.Helper()
	srv := httptest.NewServer(a.MetricsHandler())
	defer srv.Close()
	res := get(t, srv.URL+"/metrics", nil)
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func postJSON(t *testing.T, url, token string, body any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// TestMetrics: /metrics counts the sockets, rooms and peers of this
// instance, the declarations by outcome, and times the store and the bus.
func TestMetrics(t *testing.T) {
	a, srv := startApp(t, mapConfig(t, true))
	ctx := context.Background()
	link, err := a.NewRoomLink(ctx, MainRoom, rooms.RoleHost, "metrics test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	token := link[strings.Index(link, "#t=")+3:]

	m := scrape(t, a)
	for _, series := range []string{"crisisroom_connections", "crisisroom_rooms", "crisisroom_peers", "crisisroom_map_watchers",
		"crisisroom_messages_in_total", "crisisroom_messages_out_total", "crisisroom_slow_clients_dropped_total",
		"crisisroom_bus_publish_errors_total", "crisisroom_declarations_remote_states_total", "go_goroutines"} {
		if v, ok := m[series]; !ok || v != 0 && series != "go_goroutines" {
			t.Errorf("%s = %v (present %v), want 0 at start", series, v, ok)
		}
	}

	// One member joins the room over a real socket.
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"v":1,"type":"join","id":"1","data":{"token":"`+token+`","name":"Préfet"}}`)); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, msg, err := ws.ReadMessage(); err != nil || !strings.Contains(string(msg), `"type":"joined"`) {
		t.Fatalf("join: %s %v", msg, err)
	}

	day := time.Now().In(time.UTC).AddDate(0, 0, -1).Format("2006-01-02")
	decl := map[string]any{"commune": "56001", "date": day, "place": "domicile", "count": 2, "idempotency_key": "metrics-key-0001"}
	for _, want := range []int{http.StatusCreated, http.StatusOK} { // the second is the same key again
		if got := postJSON(t, srv.URL+"/api/v1/declarations", token, decl); got != want {
			t.Fatalf("declaration: %d, want %d", got, want)
		}
	}
	decl["count"], decl["idempotency_key"] = -1, "metrics-key-0002"
	if got := postJSON(t, srv.URL+"/api/v1/declarations", token, decl); got != http.StatusUnprocessableEntity {
		t.Fatalf("invalid declaration: %d", got)
	}
	if got := postJSON(t, srv.URL+"/api/v1/declarations", "not-a-token", decl); got != http.StatusUnauthorized {
		t.Fatalf("bad token: %d", got)
	}
	// One instance publishes no commune state (nobody would read it); a
	// main courante entry still goes on the bus.
	if got := postJSON(t, srv.URL+"/api/v1/events/main/log", token, map[string]any{"text": "Point de situation"}); got != http.StatusCreated {
		t.Fatalf("main courante entry: %d", got)
	}

	m = scrape(t, a)
	want := map[string]float64{
		"crisisroom_connections": 1, "crisisroom_rooms": 1, "crisisroom_peers": 1,
		`crisisroom_declarations_total{kind="declare",outcome="accepted"}`:        1,
		`crisisroom_declarations_total{kind="declare",outcome="duplicate"}`:       1,
		`crisisroom_declarations_total{kind="declare",outcome="invalid"}`:         1,
		`crisisroom_declarations_total{kind="declare",outcome="unauthenticated"}`: 1,
		`crisisroom_store_seconds_count{op="apply"}`:                              2, // the new one and the replay
		"crisisroom_bus_publish_seconds_count":                                    2, // the main courante's: the standing event made at first start, the entry
	}
	for series, v := range want {
		if m[series] != v {
			t.Errorf("%s = %v, want %v", series, m[series], v)
		}
	}
	if m["crisisroom_messages_in_total"] < 1 || m["crisisroom_messages_out_total"] < 1 {
		t.Errorf("messages in %v out %v", m["crisisroom_messages_in_total"], m["crisisroom_messages_out_total"])
	}
}

// TestMetricsNotOnTheAppPort: the figures (rooms, peers, declarations by
// outcome) are for the operator's Prometheus on its own listener, not for
// anyone who reaches the application.
func TestMetricsNotOnTheAppPort(t *testing.T) {
	a, srv := startApp(t, mapConfig(t, true))
	res := get(t, srv.URL+"/metrics", nil)
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics on the application port: %d, want 404", res.StatusCode)
	}
	if m := scrape(t, a); m["go_goroutines"] == 0 {
		t.Error("the metrics listener serves no go_goroutines")
	}
	if DefaultConfig().MetricsAddr != "127.0.0.1:9464" {
		t.Errorf("default --metrics-addr %q, want loopback", DefaultConfig().MetricsAddr)
	}
}
