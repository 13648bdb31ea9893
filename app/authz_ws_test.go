package app

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"crisisroom/access"
	"crisisroom/protocol"
	"crisisroom/rooms"
)

// expectedWS is the WebSocket half of the authorization matrix, written
// out independently of access.MessageAction: which roles may send each client
// message type once in the room (or, for the topics, on the socket).
// Letters as in expected; W is a watch-only guest.
var expectedWS = map[string]string{
	"join":            "AOPGW",
	"resume":          "-",
	"leave":           "AOPGW",
	"offer":           "AOPGW",
	"answer":          "AOPGW",
	"candidate":       "AOPGW",
	"sfu":             "AOPGW",
	"mode":            "AO",
	"state":           "AOPGW",
	"chat":            "AOPGW",
	"presenter":       "AO",
	"map-view":        "AO",
	"annotate":        "AOPG",
	"admit":           "AO",
	"subscribe:map":   "AOPGWV",
	"unsubscribe:map": "AOPGWV",
	"resync:map":      "AOPGWV",
	"subscribe:log":   "AOP",
	"unsubscribe:log": "AOP",
	"resync:log":      "AOP",
}

// wsProbe is one message sent to learn whether it is allowed: denied ones
// are answered with the error "forbidden" referring to its id.
type wsProbe struct {
	key  string // access.MessageKeys key
	typ  string
	data any
}

// probes are in an order where each allowed one leaves the socket usable
// for the next (leave is left out: it ends the seat; resume needs none).
func wsProbes() []wsProbe {
	sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
	mid, idx := "0", uint16(0)
	return []wsProbe{
		{"subscribe:map", protocol.TypeSubscribe, protocol.Subscribe{Topic: protocol.TopicMap}},
		{"resync:map", protocol.TypeResync, protocol.Topic{Topic: protocol.TopicMap}},
		{"unsubscribe:map", protocol.TypeUnsubscribe, protocol.Topic{Topic: protocol.TopicMap}},
		{"subscribe:log", protocol.TypeSubscribe, protocol.Subscribe{Topic: protocol.TopicLog}},
		{"resync:log", protocol.TypeResync, protocol.Topic{Topic: protocol.TopicLog}},
		{"unsubscribe:log", protocol.TypeUnsubscribe, protocol.Topic{Topic: protocol.TopicLog}},
		{"offer", protocol.TypeOffer, protocol.SDP{To: "nobody", SDP: sdp}},
		{"answer", protocol.TypeAnswer, protocol.SDP{To: "nobody", SDP: sdp}},
		{"candidate", protocol.TypeCandidate, protocol.Candidate{To: "nobody", Candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host", SDPMid: &mid, SDPMLineIndex: &idx}},
		{"sfu", protocol.TypeSFU, protocol.SFU{PC: "down", Kind: "candidate"}}, // a mesh room: wrong_mode, not forbidden
		{"mode", protocol.TypeMode, protocol.Mode{Mode: protocol.ModeMesh}},
		{"state", protocol.TypeState, protocol.PeerState{Audio: true}},
		{"presenter", protocol.TypePresenter, protocol.Presenter{Take: true}},
		{"map-view", protocol.TypeMapView, protocol.MapView{Center: [2]float64{47.7, -2.8}, Zoom: 9}},
		{"annotate", protocol.TypeAnnotate, protocol.Annotate{Op: protocol.OpCreate, Annotation: protocol.AnnotationInput{Kind: "marker", Coords: [][2]float64{{47.7, -2.8}}, Label: "PC"}}},
		{"admit", protocol.TypeAdmit, protocol.Admit{ID: "nobody", Allow: true}},
		{"chat", protocol.TypeChat, protocol.Chat{Text: "fin des sondes"}}, // last: its echo closes the round
	}
}

type wsRole struct {
	letter byte
	token  string         // a link, or "" for a session
	jar    http.CookieJar // a staff session's cookie
}

// TestAuthorizationMatrixWebSocket: every role × every client message
// type, allowed or refused with "forbidden" as expectedWS says; a type
// without an entry in either table fails the test.
func TestAuthorizationMatrixWebSocket(t *testing.T) {
	keys := access.MessageKeys()
	for _, k := range keys {
		if _, ok := expectedWS[k]; !ok {
			t.Errorf("message %s has no entry in the test's matrix", k)
		}
	}
	for k := range expectedWS {
		if !slices.Contains(keys, k) {
			t.Errorf("matrix entry %s: no action in access", k)
		}
	}
	cfg := mapConfig(t, true)
	cfg.RoomCapacity = 10
	cfg.RateIP, cfg.RateToken = 0, 0
	a, srv := startApp(t, cfg)
	ctx := context.Background()
	link := func(kind, role string, watch bool) string {
		plain, hash := rooms.NewSecret()
		l := rooms.Link{ID: rooms.NewID(), Hash: hash, Kind: kind, Scope: MainRoom, Role: role, Label: "ws " + role,
			CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), MaxUses: 10, WatchOnly: watch}
		if err := a.be.Store.CreateLink(ctx, l); err != nil {
			t.Fatal(err)
		}
		return plain
	}
	session := func(login string, admin bool, role access.Role) http.CookieJar {
		staff(t, a, login, "correct horse battery", admin, MainRoom, role)
		b := newBrowser(t, srv.URL)
		if res := b.login(login, "correct horse battery"); res.StatusCode != http.StatusOK {
			t.Fatalf("login %s: %d", login, res.StatusCode)
		}
		return b.c.Jar
	}
	communes, err := a.NewCommuneLinks(ctx, []string{"56001"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	roles := []wsRole{
		{'A', "", session("root", true, access.Participant)}, // admin everywhere, whatever its membership
		{'O', link(rooms.KindRoom, rooms.RoleHost, false), nil},
		{'P', link(rooms.KindRoom, rooms.RoleParticipant, false), nil},
		{'G', link(rooms.KindGuest, string(access.Guest), false), nil},
		{'W', link(rooms.KindGuest, string(access.Guest), true), nil},
		{'V', "", session("analyst", false, access.Observer)},
		{'D', communes[0].Token, nil},
	}
	for _, r := range roles {
		ws := wsDial(t, srv.URL, r.jar)
		joined := wsJoin(t, ws, r.token)
		if want := strings.IndexByte(expectedWS["join"], r.letter) >= 0; joined != want {
			t.Errorf("join as %c: joined=%v, want %v", r.letter, joined, want)
		}
		ws.Close()
		if !joined && r.letter != 'V' {
			continue // a declarant has nothing to do on the socket
		}
		// The observer watches the map on a socket it opened with its
		// session, without joining.
		ws = wsDial(t, srv.URL, r.jar)
		if joined {
			wsJoin(t, ws, r.token)
		}
		denied := wsRound(t, ws, wsProbes())
		ws.Close()
		for _, p := range wsProbes() {
			if !joined && !strings.HasPrefix(p.key, "subscribe") && !strings.HasPrefix(p.key, "resync") && !strings.HasPrefix(p.key, "unsubscribe") {
				continue // the room's messages need a seat first
			}
			if verb, topic, ok := strings.Cut(p.key, ":"); ok && verb != "subscribe" && denied["subscribe:"+topic] && !joined {
				// A watcher refused the subscription has none to resync or
				// end: the handler answers "subscribe first", there is
				// nothing to decide.
				continue
			}
			want := strings.IndexByte(expectedWS[p.key], r.letter) >= 0
			if got := !denied[p.key]; got != want {
				t.Errorf("%s as %c: allowed=%v, want %v", p.key, r.letter, got, want)
			}
		}
	}
}

func wsDial(t *testing.T, base string, jar http.CookieJar) *websocket.Conn {
	t.Helper()
	d := *websocket.DefaultDialer
	d.Jar = jar
	hdr := http.Header{"Origin": {base}}
	ws, _, err := d.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws", hdr)
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

// wsJoin joins the main room with a link token, or with the socket's
// session when token is "". It reports whether the server seated it.
func wsJoin(t *testing.T, ws *websocket.Conn, token string) bool {
	t.Helper()
	j := protocol.Join{Token: token, Name: "Sonde"}
	if token == "" {
		j.Room = MainRoom
	}
	if err := ws.WriteMessage(websocket.TextMessage, protocol.Encode(protocol.TypeJoin, "join-1", j)); err != nil {
		t.Fatal(err)
	}
	for {
		env, err := wsRead(ws)
		if err != nil {
			return false // refused: the server closed the socket
		}
		switch env.Type {
		case protocol.TypeJoined:
			return true
		case protocol.TypeError:
			return false
		}
	}
}

func wsRead(ws *websocket.Conn) (protocol.Envelope, error) {
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, raw, err := ws.ReadMessage()
	if err != nil {
		return protocol.Envelope{}, err
	}
	var env protocol.Envelope
	err = json.Unmarshal(raw, &env)
	return env, err
}

// wsRound sends every probe, then reads until the last one's answer (the
// server handles a socket's messages in order; the last probe is a chat,
// echoed to a member and refused as not_joined to anyone else), and
// returns which probes were refused with "forbidden".
func wsRound(t *testing.T, ws *websocket.Conn, probes []wsProbe) map[string]bool {
	t.Helper()
	byID := map[string]string{}
	last := ""
	for i, p := range probes {
		id := "probe-" + string(rune('a'+i))
		byID[id], last = p.key, id
		if err := ws.WriteMessage(websocket.TextMessage, protocol.Encode(p.typ, id, p.data)); err != nil {
			t.Fatal(err)
		}
	}
	denied := map[string]bool{}
	for {
		env, err := wsRead(ws)
		if err != nil {
			t.Fatalf("reading the answers: %v (denied so far %v)", err, denied)
		}
		if env.Type == protocol.TypeError {
			var e protocol.Error
			_ = json.Unmarshal(env.Data, &e)
			if e.Code == protocol.ErrForbidden {
				denied[byID[e.Ref]] = true
			}
			if e.Ref == last {
				return denied
			}
		}
		if env.ID == last {
			return denied
		}
	}
}
