package layers_test

import (
	"bytes"
	"context"
	"crisisroom/internal/testgeo"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"crisisroom/app"
	"crisisroom/layers"
	"crisisroom/livemap"
	"crisisroom/protocol"
	"crisisroom/rooms"
)

// env is the real server (with the map) on loopback, and its links.
type env struct {
	t            *testing.T
	srv          *httptest.Server
	host, member string // tokens: operator (room host link) and participant
	ws           string
	http         *http.Client
}

func start(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	geo := geoDir(t)
	cfg := app.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Territory = filepath.Join(geo, "communes-56-morbihan.geojson")
	cfg.CommunesCSV = filepath.Join(geo, "communes-56-morbihan-cog2021.csv")
	be, err := app.OpenBackends(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	a, err := app.New(ctx, cfg, be, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Shutdown(ctx)
	})
	if _, _, err := a.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	tok := func(role string) string {
		u, err := a.NewRoomLink(ctx, app.MainRoom, role, role, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		_, s, _ := strings.Cut(u, "#t=")
		return s
	}
	return &env{t: t, srv: srv, host: tok(rooms.RoleHost), member: tok(rooms.RoleParticipant),
		ws: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws", http: &http.Client{Timeout: 20 * time.Second}}
}

// geoDir is the reference territory in testdata/geo (internal/testgeo).
func geoDir(t *testing.T) string { return testgeo.Dir(t) }

type answer struct {
	status int
	header http.Header
	body   []byte
	gzip   bool // sent compressed (the client inflated it)
}

func (a answer) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("status %d body %q: %v", a.status, a.body, err)
	}
}

// do sends one request; length -1 sends body chunked (no Content-Length).
func (e *env) do(method, path, token string, body io.Reader, length int64) answer {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.ContentLength = length
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b, gzip: resp.Uncompressed}
}

func (e *env) upload(token, name, body string) answer {
	e.t.Helper()
	return e.do(http.MethodPost, "/api/v1/layers?name="+name, token, strings.NewReader(body), int64(len(body)))
}

// watcher is a map subscriber on a room token.
type watcher struct {
	t  *testing.T
	ws *websocket.Conn
}

func (e *env) watch() *watcher {
	e.t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(e.ws, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { ws.Close() })
	w := &watcher{t: e.t, ws: ws}
	data, _ := json.Marshal(protocol.Subscribe{Topic: protocol.TopicMap, Token: e.member})
	b, _ := json.Marshal(protocol.Envelope{V: protocol.Version, Type: protocol.TypeSubscribe, Data: data})
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		e.t.Fatal(err)
	}
	w.expect(livemap.TypeSnapshot, nil)
	w.expect(livemap.TypeAnnotations, nil)
	return w
}

func (w *watcher) expect(typ string, v any) {
	w.t.Helper()
	_ = w.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := w.ws.ReadMessage()
	if err != nil {
		w.t.Fatalf("watcher: %v", err)
	}
	var env protocol.Envelope
	if err := json.Unmarshal(b, &env); err != nil || env.Type != typ {
		w.t.Fatalf("watcher got %.200s, want %s", b, typ)
	}
	if v != nil {
		if err := json.Unmarshal(env.Data, v); err != nil {
			w.t.Fatal(err)
		}
	}
}

const ehpads = `{
  "type": "FeatureCollection",
  "features": [
    {"type": "Feature", "properties": {"nom": "EHPAD Les Mimosas", "lits": 84}, "geometry": {"type": "Point", "coordinates": [-2.7599, 47.6586]}},
    {"type": "Feature", "properties": {"nom": "Zone de regroupement"}, "geometry": {"type": "Polygon",
      "coordinates": [[[-2.80, 47.60], [-2.70, 47.60], [-2.70, 47.70], [-2.80, 47.60]]]}}
  ]
}`

func TestLayerLifecycleAndBroadcast(t *testing.T) {
	e := start(t)
	w := e.watch()
	var compact bytes.Buffer
	_ = json.Compact(&compact, []byte(ehpads))

	res := e.upload(e.host, "EHPAD%20du%20Morbihan", ehpads)
	var l layers.Layer
	res.json(t, &l)
	if res.status != http.StatusCreated || l.ID == "" || l.Name != "EHPAD du Morbihan" || l.Features != 2 ||
		l.Bytes != int64(compact.Len()) || l.Author != rooms.RoleHost || l.Created.IsZero() {
		t.Fatalf("upload: %d %+v", res.status, l)
	}
	var pushed layers.List
	w.expect(livemap.TypeLayers, &pushed)
	if len(pushed.Items) != 1 || pushed.Items[0] != l {
		t.Fatalf("pushed %+v, want [%+v]", pushed.Items, l)
	}
	var listed layers.List
	res = e.do(http.MethodGet, "/api/v1/layers", e.member, nil, 0)
	res.json(t, &listed)
	if res.status != http.StatusOK || len(listed.Items) != 1 || listed.Items[0] != l {
		t.Fatalf("list: %d %+v", res.status, listed)
	}
	res = e.do(http.MethodGet, "/api/v1/layers/"+l.ID, e.member, nil, 0)
	if res.status != http.StatusOK || res.header.Get("Content-Type") != "application/geo+json" || !res.gzip || !bytes.Equal(res.body, compact.Bytes()) {
		t.Fatalf("get: %d %s gzip %v %.100s", res.status, res.header.Get("Content-Type"), res.gzip, res.body)
	}

	if res = e.do(http.MethodDelete, "/api/v1/layers/"+l.ID, e.member, nil, 0); res.status != http.StatusForbidden {
		t.Fatalf("participant delete: %d %s", res.status, res.body)
	}
	if res = e.do(http.MethodDelete, "/api/v1/layers/"+l.ID, e.host, nil, 0); res.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", res.status, res.body)
	}
	w.expect(livemap.TypeLayers, &pushed)
	if len(pushed.Items) != 0 {
		t.Fatalf("after delete pushed %+v", pushed)
	}
	if res = e.do(http.MethodGet, "/api/v1/layers/"+l.ID, e.member, nil, 0); res.status != http.StatusNotFound {
		t.Fatalf("get deleted: %d", res.status)
	}
	if res = e.do(http.MethodDelete, "/api/v1/layers/"+l.ID, e.host, nil, 0); res.status != http.StatusNotFound {
		t.Fatalf("delete twice: %d", res.status)
	}
}

// endless yields n bytes of GeoJSON-looking filler and counts what was read.
type endless struct {
	n, read int64
	count   *atomic.Int64
}

func (r *endless) Read(p []byte) (int, error) {
	if r.read >= r.n {
		return 0, io.EOF
	}
	k := min(int64(len(p)), r.n-r.read)
	for i := range k {
		p[i] = ' '
	}
	r.read += k
	r.count.Add(k)
	return int(k), nil
}

func TestLayerRefusals(t *testing.T) {
	e := start(t)
	for _, c := range []struct {
		name, method, path, token string
		status                    int
		code                      string
	}{
		{"no token, upload", http.MethodPost, "/api/v1/layers?name=x", "", http.StatusUnauthorized, "unauthenticated"},
		{"no token, list", http.MethodGet, "/api/v1/layers", "", http.StatusUnauthorized, "unauthenticated"},
		{"forged token", http.MethodGet, "/api/v1/layers", "forged", http.StatusUnauthorized, "unauthenticated"},
		{"participant upload", http.MethodPost, "/api/v1/layers?name=x", e.member, http.StatusForbidden, "forbidden"},
		{"no name", http.MethodPost, "/api/v1/layers", e.host, http.StatusUnprocessableEntity, "invalid"},
	} {
		res := e.do(c.method, c.path, c.token, strings.NewReader(ehpads), int64(len(ehpads)))
		var body struct{ Error, Message string }
		res.json(t, &body)
		if res.status != c.status || body.Error != c.code || body.Message == "" {
			t.Fatalf("%s: %d %s", c.name, res.status, res.body)
		}
	}

	bad := strings.Replace(ehpads, "[-2.80, 47.60]]]", "[-2.80, 47.61]]]", 1)
	syntax := strings.Replace(ehpads, `"lits": 84}`, `"lits": 84,}`, 1)
	for body, want := range map[string]struct {
		feature int
		msg     string
	}{
		bad:    {1, "feature 1: geometry Polygon: ring 0: not closed"},
		syntax: {0, "feature 0: malformed JSON"},
	} {
		res := e.upload(e.host, "x", body)
		var got struct {
			Error, Message string
			Feature        *int
		}
		res.json(t, &got)
		if res.status != http.StatusUnprocessableEntity || got.Error != "invalid_geojson" || got.Feature == nil ||
			*got.Feature != want.feature || !strings.HasPrefix(got.Message, want.msg) {
			t.Fatalf("malformed upload: %d %s", res.status, res.body)
		}
		t.Logf("422: %s", got.Message)
	}
	if res := e.upload(e.host, "x", `{"type":"Feature"}`); res.status != http.StatusUnprocessableEntity ||
		strings.Contains(string(res.body), `"feature"`) {
		t.Fatalf("not a collection: %d %s", res.status, res.body)
	}

	// 50 MB, announced or not: 413 at once, and the server reads at most
	// the limit (what the client managed to push includes socket buffers).
	for _, announced := range []bool{true, false} {
		var pushed atomic.Int64
		length := int64(50 << 20)
		if !announced {
			length = -1
		}
		t0 := time.Now()
		res := e.do(http.MethodPost, "/api/v1/layers?name=big", e.host, &endless{n: 50 << 20, count: &pushed}, length)
		took := time.Since(t0)
		var body struct{ Error, Message string }
		res.json(t, &body)
		if res.status != http.StatusRequestEntityTooLarge || body.Error != "too_large" || !strings.Contains(body.Message, "5 Mio") {
			t.Fatalf("50 MB (announced %v): %d %s", announced, res.status, res.body)
		}
		t.Logf("50 MB upload, length announced %v: 413 in %v, client pushed %.1f MB", announced, took, float64(pushed.Load())/1e6)
		if took > 3*time.Second || pushed.Load() > 20<<20 {
			t.Fatalf("the server read too much or too long: %v, %d bytes", took, pushed.Load())
		}
	}
	var listed layers.List
	e.do(http.MethodGet, "/api/v1/layers", e.host, nil, 0).json(t, &listed)
	if len(listed.Items) != 0 {
		t.Fatalf("refused uploads left layers: %+v", listed.Items)
	}
	if res := e.upload(e.host, "ok", ehpads); res.status != http.StatusCreated {
		t.Fatalf("upload after refusals: %d %s", res.status, res.body)
	}
}
