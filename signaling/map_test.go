package signaling_test

import (
	"context"
	"crisisroom/internal/testgeo"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"crisisroom/app"
	"crisisroom/declarations"
	"crisisroom/livemap"
	"crisisroom/protocol"
	"crisisroom/rooms"
)

// geoDir is the reference territory in testdata/geo (internal/testgeo).
func geoDir(t *testing.T) string { return testgeo.Dir(t) }

func mapEnv(t *testing.T) *biEnv {
	geo := geoDir(t)
	return biStart(t, func(c *app.Config) {
		c.Territory = filepath.Join(geo, "communes-56-morbihan.geojson")
		c.CommunesCSV = filepath.Join(geo, "communes-56-morbihan-cog2021.csv")
	})
}

func (e *biEnv) hostToken(room string) string {
	e.t.Helper()
	u, err := e.a.NewRoomLink(context.Background(), room, rooms.RoleHost, "host", time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	_, tok, _ := strings.Cut(u, "#t=")
	return tok
}

func TestMapWatcherGetsSnapshotThenDeltas(t *testing.T) {
	e := mapEnv(t)
	w := e.dial()
	w.name = "wall screen"
	id := w.send(protocol.TypeSubscribe, protocol.Subscribe{Topic: protocol.TopicMap})
	w.expectError(protocol.ErrBadToken, id)
	id = w.send(protocol.TypeSubscribe, protocol.Subscribe{Topic: "weather", Token: e.token("main")})
	w.expectError(protocol.ErrUnknownTopic, id)

	w.send(protocol.TypeSubscribe, protocol.Subscribe{Topic: protocol.TopicMap, Token: e.token("main")})
	var snap livemap.Snapshot
	w.expect(livemap.TypeSnapshot, &snap)
	if len(snap.States) != 251 { // 250 communes + the département
		t.Fatalf("snapshot has %d states", len(snap.States))
	}
	w.expect(livemap.TypeAnnotations, nil) // the room's annotations follow the snapshot

	op := declarations.Actor{ID: "op", Operator: true}
	day := time.Now().In(mustParis(t)).Format(declarations.DateLayout)
	for i, n := range []int{2, 3} {
		if _, _, err := e.a.Decl.Declare(context.Background(), op, declarations.Input{Commune: "56121", Date: day,
			Place: "ehpad", Count: n, IdempotencyKey: "map-test-key-" + string(rune('a'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	seq, got := snap.Seq, livemap.State{}
	for got.Total != 5 {
		var d livemap.Delta
		w.expect(livemap.TypeDelta, &d)
		if d.Seq != seq+1 {
			t.Fatalf("delta seq %d after %d", d.Seq, seq)
		}
		seq = d.Seq
		for _, s := range d.States {
			if s.Code == "56121" {
				if s.V <= got.V {
					t.Fatalf("version %d after %d", s.V, got.V)
				}
				got = s
			}
		}
	}
	if got.ByPlace != [4]int{0, 5, 0, 0} || got.Today != 5 {
		t.Fatalf("state %+v", got)
	}
	// A resync answers with a snapshot at the current seq.
	w.send(protocol.TypeResync, protocol.Topic{Topic: protocol.TopicMap})
	for {
		env := w.next()
		if env.Type == livemap.TypeSnapshot {
			break
		}
	}
}

func TestPresenterViewReachesFollowersAndLateJoiners(t *testing.T) {
	e := mapEnv(t)
	host, guest := e.dial(), e.dial()
	host.join(e.hostToken("main"), "Préfète")
	guest.join(e.token("main"), "ARS")
	host.expect(protocol.TypePeerJoined, nil)

	id := guest.send(protocol.TypePresenter, protocol.Presenter{Take: true})
	guest.expectError(protocol.ErrForbidden, id)
	host.send(protocol.TypePresenter, protocol.Presenter{Take: true})
	var p protocol.Presenter
	host.expect(protocol.TypePresenter, &p)
	guest.expect(protocol.TypePresenter, &p)
	if p.ID != host.id {
		t.Fatalf("presenter %q, want %q", p.ID, host.id)
	}
	host.send(protocol.TypeMapView, protocol.MapView{Center: [2]float64{47.75, -2.9}, Zoom: 10, Commune: "56121"})
	var v protocol.MapView
	guest.expect(protocol.TypeMapView, &v)
	if v.From != host.id || v.Zoom != 10 || v.Commune != "56121" {
		t.Fatalf("view %+v", v)
	}
	id = guest.send(protocol.TypeMapView, protocol.MapView{Zoom: 3})
	guest.expectError(protocol.ErrForbidden, id)

	late := e.dial()
	j := late.join(e.token("main"), "SDIS")
	if j.Presenter != host.id || j.View == nil || j.View.Center != [2]float64{47.75, -2.9} {
		t.Fatalf("late joiner got presenter %q view %+v", j.Presenter, j.View)
	}
	// The presenter leaving frees the role for everyone.
	host.send(protocol.TypeLeave, nil)
	guest.expect(protocol.TypePeerJoined, nil)
	guest.expect(protocol.TypePeerLeft, nil)
	guest.expect(protocol.TypePresenter, &p)
	if p.ID != "" {
		t.Fatalf("presenter after leave %q", p.ID)
	}
}

func mustParis(t *testing.T) *time.Location {
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
