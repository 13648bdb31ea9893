package signaling_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"crisisroom/app"
	"crisisroom/livemap"
	"crisisroom/protocol"
	"crisisroom/rooms"
)

// annStart serves the whole app, with the map, on dataDir. stop shuts it
// down and closes the back ends, as a restart does; it also runs at cleanup.
func annStart(t *testing.T, dataDir string) (e *biEnv, stop func()) {
	t.Helper()
	ctx := context.Background()
	geo := geoDir(t)
	cfg := app.DefaultConfig()
	cfg.SFUUDP, cfg.SFUTCP = "127.0.0.1:0", "" // no fixed port: test processes run side by side
	cfg.DataDir = dataDir
	cfg.Territory = filepath.Join(geo, "communes-56-morbihan.geojson")
	cfg.CommunesCSV = filepath.Join(geo, "communes-56-morbihan-cog2021.csv")
	be, err := app.OpenBackends(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(ctx, cfg, be, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		be.Close()
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := a.Shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
			srv.Close()
			if err := be.Close(); err != nil {
				t.Errorf("close backends: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	if _, _, err := a.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := be.Store.CreateRoom(ctx, rooms.RoomInfo{Name: "other", Title: "Autre salle", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return &biEnv{t: t, a: a, be: be, srv: srv, ws: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"}, stop
}

// mapSubscribe subscribes c to the map (with token unless it has joined)
// and returns the annotations that follow the snapshot.
func (c *biClient) mapSubscribe(token string) livemap.AnnotationList {
	c.t.Helper()
	c.send(protocol.TypeSubscribe, protocol.Subscribe{Topic: protocol.TopicMap, Token: token})
	c.expect(livemap.TypeSnapshot, nil)
	var l livemap.AnnotationList
	c.expect(livemap.TypeAnnotations, &l)
	return l
}

// annotate sends one annotate request and returns its id.
func (c *biClient) annotate(op string, in protocol.AnnotationInput) string {
	c.t.Helper()
	return c.send(protocol.TypeAnnotate, protocol.Annotate{Op: op, Annotation: in})
}

// expectAnnotation reads the next frame, an annotation event with envelope
// id ref ("" for the copies other watchers get).
func (c *biClient) expectAnnotation(op, ref string) livemap.Annotation {
	c.t.Helper()
	var ev livemap.AnnotationEvent
	env := c.expect(livemap.TypeAnnotation, &ev)
	if env.ID != ref || ev.Op != op {
		c.t.Fatalf("%s: annotation %s (id %q), want op %s id %q", c.name, env.Data, env.ID, op, ref)
	}
	return ev.Annotation
}

// TestAnnotationsLiveAndDurable: a host's annotation reaches the other
// member and a room watcher live, a participant edits and deletes, another
// room hears nothing, and after a restart on the same data dir the live
// annotation is listed as it was.
func TestAnnotationsLiveAndDurable(t *testing.T) {
	dir := t.TempDir()
	e, stop := annStart(t, dir)
	host, sdis := e.dial(), e.dial()
	host.join(e.hostToken("main"), "Préfète")
	sdis.join(e.token("main"), "SDIS")
	host.expect(protocol.TypePeerJoined, nil)
	wall, far := e.dial(), e.dial()
	wall.name, far.name = "wall", "far"
	for _, c := range []*biClient{host, sdis} {
		if l := c.mapSubscribe(""); l.Room != "main" || len(l.Items) != 0 {
			t.Fatalf("%s: first list %+v", c.name, l)
		}
	}
	wall.mapSubscribe(e.token("main"))
	if l := far.mapSubscribe(e.token("other")); l.Room != "other" {
		t.Fatalf("far watches %q", l.Room)
	}

	start := time.Now()
	id := host.annotate(protocol.OpCreate, protocol.AnnotationInput{Kind: livemap.KindMarker,
		Coords: [][2]float64{{47.6586, -2.7599}}, Label: "centre d'hébergement", Color: "#1F77B4"})
	made := host.expectAnnotation(protocol.OpCreate, id)
	if made.ID == "" || made.Room != "main" || made.Author != host.id || made.AuthorName != "Préfète" ||
		made.Version != 1 || made.Color != "#1f77b4" || made.CreatedAt.IsZero() || !made.UpdatedAt.Equal(made.CreatedAt) {
		t.Fatalf("created %+v", made)
	}
	for _, c := range []*biClient{sdis, wall} {
		if got := c.expectAnnotation(protocol.OpCreate, ""); !reflect.DeepEqual(got, made) {
			t.Fatalf("%s saw %+v, want %+v", c.name, got, made)
		}
	}
	t.Logf("create → seen by the other member and the wall in %v", time.Since(start))

	id = sdis.annotate(protocol.OpUpdate, protocol.AnnotationInput{ID: made.ID, Kind: livemap.KindPolygon,
		Coords: [][2]float64{{47.65, -2.77}, {47.67, -2.77}, {47.67, -2.74}}, Label: "zone confinée", Color: "#d62728"})
	upd := sdis.expectAnnotation(protocol.OpUpdate, id)
	if upd.ID != made.ID || upd.Version != 2 || upd.Kind != livemap.KindPolygon || upd.Author != host.id ||
		upd.Editor != sdis.id || upd.EditorName != "SDIS" || !upd.CreatedAt.Equal(made.CreatedAt) {
		t.Fatalf("updated %+v", upd)
	}
	for _, c := range []*biClient{host, wall} {
		if got := c.expectAnnotation(protocol.OpUpdate, ""); !reflect.DeepEqual(got, upd) {
			t.Fatalf("%s saw %+v", c.name, got)
		}
	}
	id = sdis.annotate(protocol.OpDelete, protocol.AnnotationInput{ID: made.ID})
	if del := sdis.expectAnnotation(protocol.OpDelete, id); del.Version != 3 || del.ID != made.ID {
		t.Fatalf("deleted %+v", del)
	}
	host.expectAnnotation(protocol.OpDelete, "")
	wall.expectAnnotation(protocol.OpDelete, "")

	id = host.annotate(protocol.OpCreate, protocol.AnnotationInput{Kind: livemap.KindLine,
		Coords: [][2]float64{{47.75, -2.9}, {47.70, -2.85}, {47.66, -2.76}}, Label: "itinéraire d'évacuation", Color: "#ff7f0e"})
	kept := host.expectAnnotation(protocol.OpCreate, id)
	sdis.expectAnnotation(protocol.OpCreate, "")
	wall.expectAnnotation(protocol.OpCreate, "")
	// The other room's watcher got none of it: its next frame answers its
	// own resync.
	far.send(protocol.TypeResync, protocol.Topic{Topic: protocol.TopicMap})
	far.expect(livemap.TypeSnapshot, nil)

	stop()
	e2, _ := annStart(t, dir)
	late := e2.dial()
	late.join(e2.token("main"), "ARS")
	l := late.mapSubscribe("")
	if len(l.Items) != 1 || !reflect.DeepEqual(l.Items[0], kept) {
		t.Fatalf("after restart the room lists %+v, want only %+v", l.Items, kept)
	}
	if l := e2.dial().mapSubscribe(e2.token("other")); len(l.Items) != 0 {
		t.Fatalf("other room after restart: %+v", l.Items)
	}
}

// TestAnnotationRefusals: each bad annotate gets its code and ref, nobody
// else hears of it, and the room carries on; a frame far over the limit
// (a million points) closes only the sender's socket, which resumes.
func TestAnnotationRefusals(t *testing.T) {
	e := mapEnv(t)
	cs := e.joinRoom(app.MainRoom, "Préfète", "SDIS")
	a, b := cs[0], cs[1]
	a.mapSubscribe("")
	b.mapSubscribe("")
	marker := protocol.AnnotationInput{Kind: livemap.KindMarker, Coords: [][2]float64{{47.66, -2.76}}, Label: "PC", Color: "#2ca02c"}
	with := func(f func(in *protocol.AnnotationInput)) protocol.AnnotationInput {
		in := marker
		f(&in)
		return in
	}
	many := make([][2]float64, livemap.MaxPoints+1)
	for i := range many {
		many[i] = [2]float64{47, -2}
	}
	for _, c := range []struct {
		op   string
		in   protocol.AnnotationInput
		code string
	}{
		{protocol.OpCreate, with(func(in *protocol.AnnotationInput) { in.Kind = "circle" }), protocol.ErrInvalid},
		{protocol.OpCreate, with(func(in *protocol.AnnotationInput) { in.Color = "red" }), protocol.ErrInvalid},
		{protocol.OpCreate, with(func(in *protocol.AnnotationInput) { in.Color = "#12345" }), protocol.ErrInvalid},
		{protocol.OpCreate, with(func(in *protocol.AnnotationInput) { in.Coords = [][2]float64{{95, 0}} }), protocol.ErrInvalid},
		{protocol.OpCreate, with(func(in *protocol.AnnotationInput) { in.Label = "" }), protocol.ErrInvalid},
		{protocol.OpCreate, with(func(in *protocol.AnnotationInput) { in.Kind, in.Coords = livemap.KindPolygon, many }), protocol.ErrTooLarge},
		{protocol.OpUpdate, with(func(in *protocol.AnnotationInput) { in.ID = "0123456789abcdef" }), protocol.ErrNotFound},
		{protocol.OpDelete, protocol.AnnotationInput{}, protocol.ErrInvalid},
		{"move", marker, protocol.ErrInvalid},
	} {
		id := a.annotate(c.op, c.in)
		var pe protocol.Error
		env := a.expect(protocol.TypeError, &pe)
		if pe.Code != c.code || env.ID != id || pe.Ref != id || pe.Message == "" {
			t.Fatalf("%s %+v: error %+v, want %s", c.op, c.in.Kind, pe, c.code)
		}
		t.Logf("%s → %s: %s", c.op, pe.Code, pe.Message)
	}
	biAlive(t, a, b) // b heard nothing, a's room works

	// A watch-only guest may not draw: refused in one place (signaling's
	// dispatch, access.Decide).
	plain, _, err := rooms.CreateGuestLink(context.Background(), e.be.Store, rooms.GuestLink{Room: app.MainRoom, Label: "watch only",
		TTL: time.Hour, MaxUses: 1, WatchOnly: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	obs := e.dial()
	obs.join(plain, "Observateur")
	a.expect(protocol.TypePeerJoined, nil)
	b.expect(protocol.TypePeerJoined, nil)
	obs.expectError(protocol.ErrForbidden, obs.annotate(protocol.OpCreate, marker))
	// A socket that only watches may not draw.
	w := e.dial()
	w.mapSubscribe(e.token(app.MainRoom))
	w.expectError(protocol.ErrNotJoined, w.annotate(protocol.OpCreate, marker))
	biAlive(t, a, b, obs)

	// A million points cannot even be sent: the frame limit closes the
	// sender's socket with 1009 before the server reads most of it.
	var big strings.Builder
	big.WriteString(`{"v":1,"type":"annotate","data":{"op":"create","annotation":{"kind":"polygon","label":"x","color":"#000000","coords":[`)
	for i := range 1_000_000 {
		if i > 0 {
			big.WriteByte(',')
		}
		big.WriteString("[0,0]")
	}
	big.WriteString(`]}}}`)
	t.Logf("a million points: %d bytes", big.Len())
	_ = a.ws.WriteMessage(websocket.TextMessage, []byte(big.String())) // may fail: the server hangs up mid-way
	if frames, code := a.readToClose(); code != websocket.CloseMessageTooBig || len(frames) != 0 {
		t.Fatalf("closed with %d after %v, want 1009", code, frames)
	}
	a2 := e.dial()
	a2.name = "Préfète"
	a2.send(protocol.TypeResume, protocol.Resume{ResumeToken: a.resume})
	var j protocol.Joined
	if a2.expect(protocol.TypeJoined, &j); !j.Resumed || j.PeerID != a.id {
		t.Fatalf("resume after 1009: %+v", j)
	}
	a2.id = j.PeerID
	a2.mapSubscribe("")
	id := a2.annotate(protocol.OpCreate, marker)
	a2.expectAnnotation(protocol.OpCreate, id)
	b.expectAnnotation(protocol.OpCreate, "")
	biAlive(t, a2, b, obs)
}
