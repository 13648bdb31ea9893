package mainlog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"crisisroom/app"
	"crisisroom/internal/testgeo"
	"crisisroom/mainlog"
	"crisisroom/protocol"
	"crisisroom/rooms"
)

// env is the real server on loopback (app.OpenBackends + app.New, as
// `crisisroom serve` builds it) with the Morbihan territory, and links.
type env struct {
	t      *testing.T
	srv    *httptest.Server
	app    *app.App
	host   string // token of a host link to the standing room: may do everything
	member string // participant: writes entries, not the board
	ws     string
	http   *http.Client
}

func start(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	geo := testgeo.Dir(t)
	cfg := app.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Territory = filepath.Join(geo, testgeo.Boundaries)
	cfg.CommunesCSV = filepath.Join(geo, testgeo.Communes)
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
	e := &env{t: t, srv: srv, app: a, ws: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws", http: &http.Client{Timeout: 60 * time.Second}}
	e.host, e.member = e.token(app.MainRoom, rooms.RoleHost), e.token(app.MainRoom, rooms.RoleParticipant)
	return e
}

// token mints a link to room and returns its token.
func (e *env) token(room, role string) string {
	e.t.Helper()
	u, err := e.app.NewRoomLink(context.Background(), room, role, "test "+role, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	_, s, _ := strings.Cut(u, "#t=")
	return s
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("status %d body %.300q: %v", a.status, a.body, err)
	}
}

// apiErr is an error answer; it must say what is wrong in words.
func (a answer) apiErr(t *testing.T) (code, message string) {
	t.Helper()
	var e struct{ Error, Message string }
	a.json(t, &e)
	if e.Message == "" {
		t.Fatalf("error answer without a message: %s", a.body)
	}
	return e.Error, e.Message
}

func (e *env) do(method, path, token, contentType string, body []byte) answer {
	e.t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
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
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

func (e *env) post(path, token string, v any) answer {
	e.t.Helper()
	b, _ := json.Marshal(v)
	return e.do(http.MethodPost, path, token, "application/json", b)
}

func (e *env) put(path, token string, v any) answer {
	e.t.Helper()
	b, _ := json.Marshal(v)
	return e.do(http.MethodPut, path, token, "application/json", b)
}

// write posts an entry to the main event and expects 201.
func (e *env) write(token string, in map[string]any) mainlog.Entry {
	e.t.Helper()
	a := e.post("/api/v1/events/main/log", token, in)
	if a.status != http.StatusCreated {
		e.t.Fatalf("write %v: HTTP %d %s", in, a.status, a.body)
	}
	var got mainlog.Entry
	a.json(e.t, &got)
	return got
}

// list reads the main event's log with a query string.
func (e *env) list(token, query string) []mainlog.Entry {
	e.t.Helper()
	a := e.do(http.MethodGet, "/api/v1/events/main/log?"+query, token, "", nil)
	if a.status != http.StatusOK {
		e.t.Fatalf("list %q: HTTP %d %s", query, a.status, a.body)
	}
	var r []mainlog.Entry
	a.json(e.t, &r)
	return r
}

// multipart builds a form with the entry as JSON and a file.
func multipartBody(t *testing.T, entry map[string]any, name string, data []byte) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	b, _ := json.Marshal(entry)
	if err := w.WriteField("entry", string(b)); err != nil {
		t.Fatal(err)
	}
	if data != nil {
		f, err := w.CreateFormFile("file", name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = f.Write(data)
	}
	_ = w.Close()
	return w.FormDataContentType(), buf.Bytes()
}

// watcher is a socket subscribed to a room's log with a token (no video).
type watcher struct {
	t  *testing.T
	ws *websocket.Conn
}

func (e *env) watch(token string) *watcher {
	e.t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(e.ws, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { ws.Close() })
	w := &watcher{t: e.t, ws: ws}
	w.send(protocol.TypeSubscribe, protocol.Subscribe{Topic: protocol.TopicLog, Token: token})
	return w
}

func (w *watcher) send(typ string, v any) {
	w.t.Helper()
	data, _ := json.Marshal(v)
	b, _ := json.Marshal(protocol.Envelope{V: protocol.Version, Type: typ, Data: data})
	if err := w.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		w.t.Fatal(err)
	}
}

// next returns the next message of type typ, skipping others, within 5 s.
func (w *watcher) next(typ string) json.RawMessage {
	w.t.Helper()
	_ = w.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, b, err := w.ws.ReadMessage()
		if err != nil {
			w.t.Fatalf("waiting for %s: %v", typ, err)
		}
		var env protocol.Envelope
		if err := json.Unmarshal(b, &env); err != nil {
			w.t.Fatal(err)
		}
		if env.Type == typ {
			return env.Data
		}
		if env.Type == protocol.TypeError {
			w.t.Fatalf("waiting for %s: error %s", typ, env.Data)
		}
	}
}
