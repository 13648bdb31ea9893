package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"crisisroom/access"
	"crisisroom/mainlog"
	"crisisroom/protocol"
)

// subReader is a staff member of the standing event and what its own
// membership of a restricted sub-event lets it read there.
type subReader struct {
	login string
	role  access.Role // in the sub-event; "" for none of its own
	reads bool
}

// withSubEvent starts a server (no rate limits) with a sub-event of the
// standing event, and the administrator's actor that made it.
func withSubEvent(t *testing.T, title string) (*App, *httptest.Server, mainlog.Actor, mainlog.Event) {
	t.Helper()
	cfg := mapConfig(t, false)
	cfg.RateIP, cfg.RateToken = 0, 0
	a, srv := startApp(t, cfg)
	root := &access.Principal{Kind: access.KindSession, ID: "u-root", Name: "Root", Global: access.Admin}
	actor := mainlog.Actor{ID: root.ID, Label: root.Name, P: root}
	sub, _, err := a.Mainlog.CreateSub(context.Background(), actor, MainRoom, mainlog.SubInput{Title: title, Kind: mainlog.EventKinds[0], Author: "Root"})
	if err != nil {
		t.Fatal(err)
	}
	return a, srv, actor, sub
}

// TestSubEventReadsDecidedPerEvent: a member of the standing event who
// was made observer in a sub-event, or taken out of it, does not read the
// sub-event's entries through the parent: not in the log with the tree,
// not in its CSV export, not on the live "log" topic (snapshot, boards,
// new entries). A member with no role of its own in the sub-event reads
// it all, so that the test cannot pass by showing nothing to anyone.
func TestSubEventReadsDecidedPerEvent(t *testing.T) {
	a, srv, admin, sub := withSubEvent(t, "Crue restreinte")
	ctx := context.Background()
	write := func(slug, text string) {
		t.Helper()
		if _, _, err := a.Mainlog.Write(ctx, admin, slug, mainlog.EntryInput{Text: text}, nil); err != nil {
			t.Fatal(err)
		}
	}
	write(sub.Slug, "secret d'avant")

	readers := []subReader{
		{"inherits", "", true},
		{"observer", access.Observer, false},
		{"removed", access.None, false},
	}
	browsers := map[string]*browser{}
	for _, r := range readers {
		u := staff(t, a, r.login, "correct horse battery", false, MainRoom, access.Participant)
		if r.role != "" {
			if err := a.be.Store.Access().SetMembership(ctx, access.Membership{UserID: u.ID, Event: sub.Slug, Role: r.role}); err != nil {
				t.Fatal(err)
			}
		}
		b := newBrowser(t, srv.URL)
		if res := b.login(r.login, "correct horse battery"); res.StatusCode != http.StatusOK {
			t.Fatalf("login %s: %d", r.login, res.StatusCode)
		}
		browsers[r.login] = b
	}

	for _, r := range readers {
		b := browsers[r.login]
		for _, path := range []string{"/api/v1/events/main/log?tree=1", "/api/v1/events/main/log.csv?tree=1"} {
			status, body := getBody(t, b, path)
			if status != http.StatusOK {
				t.Fatalf("%s: GET %s: %d %s", r.login, path, status, body)
			}
			if got := strings.Contains(body, "secret d'avant"); got != r.reads {
				t.Errorf("%s: GET %s shows the sub-event's entry: %v, want %v", r.login, path, got, r.reads)
			}
		}
		// The direct read, decided by the gate, agrees.
		if status, _ := getBody(t, b, "/api/v1/events/"+sub.Slug+"/log"); (status == http.StatusOK) != r.reads {
			t.Errorf("%s: GET the sub-event's log directly: %d, want readable=%v", r.login, status, r.reads)
		}
	}

	sockets := map[string]*websocket.Conn{}
	for _, r := range readers {
		ws := wsDial(t, srv.URL, browsers[r.login].c.Jar)
		t.Cleanup(func() { ws.Close() })
		if err := ws.WriteMessage(websocket.TextMessage, protocol.Encode(protocol.TypeSubscribe, "sub-1",
			protocol.Subscribe{Topic: protocol.TopicLog, Room: MainRoom})); err != nil {
			t.Fatal(err)
		}
		var snap mainlog.Snapshot
		if err := json.Unmarshal(wsNext(t, ws, mainlog.TypeSnapshot), &snap); err != nil {
			t.Fatal(err)
		}
		_, board := snap.Boards[sub.Slug]
		inEvents := slices.ContainsFunc(snap.Events, func(e mainlog.Event) bool { return e.Slug == sub.Slug })
		if inEvents != r.reads || board != r.reads {
			t.Errorf("%s: snapshot has the sub-event: events %v, board %v; want %v", r.login, inEvents, board, r.reads)
		}
		if !slices.ContainsFunc(snap.Events, func(e mainlog.Event) bool { return e.Slug == MainRoom }) {
			t.Errorf("%s: snapshot without the standing event: %+v", r.login, snap.Events)
		}
		sockets[r.login] = ws
	}

	// After subscribing: an entry and a board in the sub-event, then a
	// marker in the standing event. Each socket gets its frames in order,
	// so whatever of the sub-event it was sent came before the marker.
	write(sub.Slug, "secret d'après")
	if _, _, err := a.Mainlog.PutBoard(ctx, admin, sub.Slug, mainlog.BoardInput{Severity: mainlog.Severities[0], Situation: "situation secrète", Author: "Root"}); err != nil {
		t.Fatal(err)
	}
	write(MainRoom, "repère")
	for _, r := range readers {
		var entry, board bool
		for {
			env, err := wsRead(sockets[r.login])
			if err != nil {
				t.Fatalf("%s: waiting for the marker: %v", r.login, err)
			}
			if env.Type == mainlog.TypeBoard {
				var b mainlog.Board
				_ = json.Unmarshal(env.Data, &b)
				board = board || b.Event == sub.Slug
			}
			if env.Type != mainlog.TypeEntry {
				continue
			}
			var e mainlog.Entry
			_ = json.Unmarshal(env.Data, &e)
			entry = entry || e.Event == sub.Slug
			if e.Text == "repère" {
				break
			}
		}
		if entry != r.reads || board != r.reads {
			t.Errorf("%s: live from the sub-event: entries %v, board %v; want %v", r.login, entry, board, r.reads)
		}
		// A resync's snapshot is decided like the first one.
		if err := sockets[r.login].WriteMessage(websocket.TextMessage, protocol.Encode(protocol.TypeResync, "resync-1",
			protocol.Topic{Topic: protocol.TopicLog})); err != nil {
			t.Fatal(err)
		}
		var snap mainlog.Snapshot
		if err := json.Unmarshal(wsNext(t, sockets[r.login], mainlog.TypeSnapshot), &snap); err != nil {
			t.Fatal(err)
		}
		if _, board := snap.Boards[sub.Slug]; board != r.reads {
			t.Errorf("%s: resync snapshot has the sub-event's board: %v, want %v", r.login, board, r.reads)
		}
	}
}

// getBody reads path with the browser's session.
func getBody(t *testing.T, b *browser, path string) (int, string) {
	t.Helper()
	res, err := b.c.Get(b.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(body)
}

// wsNext returns the data of the socket's next message of type typ; an
// error message fails the test.
func wsNext(t *testing.T, ws *websocket.Conn, typ string) json.RawMessage {
	t.Helper()
	for {
		env, err := wsRead(ws)
		if err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		switch env.Type {
		case typ:
			return env.Data
		case protocol.TypeError:
			t.Fatalf("waiting for %s: error %s", typ, env.Data)
		}
	}
}

// TestMembershipNoneThroughTheAPI: an administrator takes a member of the
// standing event out of a sub-event from the page (role "none"): the
// member's inherited role there ends, its open socket (whose log feed
// was decided with the old role) is closed, and the tree read hides the
// sub-event; "inherit" gives the parent's role back. On a root event
// "none" simply removes the membership.
func TestMembershipNoneThroughTheAPI(t *testing.T) {
	a, srv, actor, sub := withSubEvent(t, "Crue")
	ctx := context.Background()
	if _, _, err := a.Mainlog.Write(ctx, actor, sub.Slug, mainlog.EntryInput{Text: "secret de la crue"}, nil); err != nil {
		t.Fatal(err)
	}
	admin, _ := loggedInAdmin(t, a, srv.URL)
	bob := staff(t, a, "bob", "correct horse battery", false, MainRoom, access.Participant)
	b, ws := seated(t, srv.URL, "bob")
	reads := func() bool {
		t.Helper()
		status, body := getBody(t, b, "/api/v1/events/main/log?tree=1")
		if status != http.StatusOK {
			t.Fatalf("tree read: %d %s", status, body)
		}
		return strings.Contains(body, "secret de la crue")
	}
	if !reads() {
		t.Fatal("a participant of main does not read its sub-event: the test proves nothing")
	}
	set := func(event, role string) {
		t.Helper()
		if res, out := admin.call(http.MethodPut, "/api/v1/users/"+bob.ID+"/events/"+event, map[string]string{"role": role}, true); res.StatusCode != http.StatusNoContent {
			t.Fatalf("set %s in %s: %d %v", role, event, res.StatusCode, out)
		}
	}
	set(sub.Slug, "none")
	if code := wsCloseCode(t, ws, time.Second); code != protocol.CloseRevoked {
		t.Fatalf("socket of a member taken out of a sub-event closed with %d, want %d", code, protocol.CloseRevoked)
	}
	if reads() {
		t.Error("taken out of the sub-event, still reads it through main's tree")
	}
	set(sub.Slug, "")
	if !reads() {
		t.Error("inherit: the parent's role does not hold again")
	}
	set(MainRoom, "none")
	if ms, _ := a.be.Store.Access().Memberships(ctx, bob.ID); len(ms) != 0 {
		t.Errorf("none on a root event: memberships %+v, want none left", ms)
	}
}

// TestLowered: a role taken away counts when it was inherited too.
func TestLowered(t *testing.T) {
	u := access.User{ID: "u"}
	inMain := []access.Membership{{UserID: "u", Event: "main", Role: access.Operator}}
	chain := []string{"crue", "main"}
	for _, c := range []struct {
		ms   []access.Membership
		role access.Role
		want bool
	}{
		{inMain, access.Observer, true},  // inherited operator, now observer
		{inMain, access.None, true},      // inherited operator, now out
		{inMain, access.Operator, false}, // the same
		{inMain, "", false},              // inherit what it had
		{nil, access.Participant, false}, // a role given
		{append(inMain, access.Membership{UserID: "u", Event: "crue", Role: access.Observer}), "", false}, // observer → operator again
		{append(inMain, access.Membership{UserID: "u", Event: "crue", Role: access.Operator}), access.Participant, true},
	} {
		chainOf := func(ev string) []string { return chain[slices.Index(chain, ev):] }
		if got := lowered(u, c.ms, "crue", c.role, chainOf); got != c.want {
			t.Errorf("lowered(%v, %q) = %v, want %v", c.ms, c.role, got, c.want)
		}
	}
}
