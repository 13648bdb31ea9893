// Package protocol is the wire format between the browser (or any client)
// and the signaling server: a versioned JSON envelope, one struct per message
// type with its own Validate, error codes and WebSocket close codes.
//
// It has no dependency on the transport so that rooms (which builds room
// events) and signaling (which owns the socket) can share it. docs/protocol.md
// is the prose version of this file; keep them in step.
package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Version is the protocol version carried in every envelope. A client speaking
// another version is refused with CloseBadVersion so that an old cached page
// reloads instead of misbehaving.
const Version = 1

// MaxMessageBytes bounds one inbound frame. SDP with many candidates and
// simulcast stays well under 16 KiB; 64 KiB leaves room without letting a
// client make the server buffer megabytes.
const MaxMessageBytes = 64 << 10

// Envelope is the outer shape of every message in both directions.
// ID is chosen by the sender of a request; replies and errors echo it so the
// client can match them. Data is decoded lazily by type.
type Envelope struct {
	V    int             `json:"v"`
	Type string          `json:"type"`
	ID   string          `json:"id,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// Message types. Client→server and server→client share the namespace; the
// direction is documented on each payload struct.
const (
	// client → server
	TypeJoin   = "join"   // Join
	TypeResume = "resume" // Resume
	TypeLeave  = "leave"  // no data
	// both directions (server stamps From)
	TypeOffer     = "offer"     // SDP
	TypeAnswer    = "answer"    // SDP
	TypeCandidate = "candidate" // Candidate
	TypeChat      = "chat"      // Chat
	TypeState     = "state"     // PeerState (mute, camera, hand, screen, speaking)
	// server → client
	TypeJoined     = "joined"      // Joined
	TypePeerJoined = "peer-joined" // PeerInfo
	TypePeerLeft   = "peer-left"   // PeerLeft
	TypeError      = "error"       // Error
	TypeBye        = "bye"         // Bye, sent just before the server closes
	// live map (docs/protocol.md, "Live map")
	TypeSubscribe   = "subscribe"   // Subscribe: client → server
	TypeUnsubscribe = "unsubscribe" // Topic: client → server
	TypeResync      = "resync"      // Topic: client → server, after a seq gap
	TypePresenter   = "presenter"   // Presenter: both directions
	TypeMapView     = "map-view"    // MapView: presenter → server → members
	TypeAnnotate    = "annotate"    // Annotate: client → server (livemap owns the replies)
	// guests' lobby (docs/protocol.md, "Lobby")
	TypeLobby     = "lobby"      // Lobby: server → a guest waiting to be admitted
	TypeLobbyList = "lobby-list" // LobbyList: server → members who may admit (latest wins)
	TypeAdmit     = "admit"      // Admit: client → server
	// selective forwarding unit (docs/protocol.md, "SFU mode")
	TypeMode = "mode" // Mode: server → members when the room's media mode changes; a host → server to choose it
	TypeSFU  = "sfu"  // SFU: both directions, the member's negotiation with the server's SFU
)

// Room media modes.
const (
	ModeMesh = "mesh" // peer to peer, every member to every other
	ModeSFU  = "sfu"  // every member to the server, which forwards
)

// Topics: the live map's, and the main courante's (the room's running log).
const (
	TopicMap = "map"
	TopicLog = "log"
)

// Error codes carried in Error.Code. They are stable strings: the UI maps
// them to French/English text, tests assert on them.
const (
	ErrBadJSON       = "bad_json"
	ErrBadVersion    = "bad_version"
	ErrUnknownType   = "unknown_type"
	ErrInvalid       = "invalid"
	ErrNotJoined     = "not_joined"
	ErrAlreadyJoined = "already_joined"
	ErrBadToken      = "bad_token"
	ErrTokenExpired  = "token_expired"
	ErrRoomFull      = "room_full"
	ErrUnknownPeer   = "unknown_peer"
	ErrRateLimited   = "rate_limited"
	ErrResumeFailed  = "resume_failed"
	ErrInternal      = "internal"
	ErrForbidden     = "forbidden"
	ErrUnknownTopic  = "unknown_topic"
	ErrUnavailable   = "unavailable"
	ErrNotFound      = "not_found"    // e.g. an annotation that is not (or no longer) in the room
	ErrTooLarge      = "too_large"    // one item over its size limit (an annotation's points)
	ErrTooMany       = "too_many"     // a collection at its cap (a room's annotations)
	ErrRefused       = "refused"      // the host refused this guest's entry
	ErrRevoked       = "revoked"      // the link (or session, token) this socket came through was revoked
	ErrLinkUsedUp    = "link_used_up" // the link has been used as many times as it allows
	ErrWrongMode     = "wrong_mode"   // an SFU message in a mesh room, or a mesh offer in an SFU room
)

// Close codes. 4000–4499: the client should reconnect (with its resume token
// if it has one); 4500–4999: it must not, a person has to act.
const (
	CloseShutdown     = 4000 // server restarting: reconnect, resume
	CloseSlowConsumer = 4001 // send queue overflowed: reconnect, resume
	ClosePingTimeout  = 4002 // no pong: reconnect, resume
	CloseReplaced     = 4003 // another socket resumed this session; do NOT loop (client treats as final for this tab)
	CloseBadToken     = 4500 // token unknown, forged or revoked
	CloseTokenExpired = 4501
	CloseRoomFull     = 4502
	CloseBadVersion   = 4503 // reload the page
	CloseProtocol     = 4504 // repeated protocol violations or flood
	CloseLeft         = 4505 // the client said leave
	CloseSessionGone  = 4506 // resume token unknown or its grace period ended: join afresh
	CloseRefused      = 4507 // the host refused entry from the lobby
	CloseRevoked      = 4508 // the link or credential was revoked: the seat is gone
)

// ShouldReconnect tells a client whether a close code invites a retry.
func ShouldReconnect(code int) bool { return code >= 4000 && code < 4500 && code != CloseReplaced }

// Validator is implemented by every payload struct.
type Validator interface{ Validate() error }

// Limits on free-form fields, so that one peer cannot make the server relay
// arbitrary amounts to everyone else.
const (
	MaxNameRunes = 64
	MaxChatRunes = 2000
	MaxSDPBytes  = 48 << 10
	MaxCandBytes = 1024
	MaxTokenLen  = 256
)

// Join asks to enter the room that Token grants, or, without a token,
// Room with the credential the socket was opened with (a staff session's
// cookie). With both, Room must be the token's room.
type Join struct {
	Token string `json:"token"`
	Room  string `json:"room,omitempty"`
	Name  string `json:"name"`
}

func (j *Join) Validate() error {
	if len(j.Token) > MaxTokenLen {
		return errors.New("token: at most 256 characters")
	}
	if j.Token == "" && j.Room == "" {
		return errors.New("token or room: one is required")
	}
	if err := validRoom(j.Room); err != nil {
		return err
	}
	return validName(j.Name)
}

// MaxRoomLen bounds a room name (an event's slug).
const MaxRoomLen = 64

// validRoom accepts "" or a slug: lower-case letters, digits and dashes.
func validRoom(s string) error {
	if len(s) > MaxRoomLen {
		return fmt.Errorf("room: at most %d characters", MaxRoomLen)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return errors.New("room: lower-case letters, digits, - and _ only")
		}
	}
	return nil
}

// Resume re-attaches a new socket to a session whose socket dropped.
type Resume struct {
	ResumeToken string `json:"resume_token"`
}

func (r *Resume) Validate() error {
	if r.ResumeToken == "" || len(r.ResumeToken) > MaxTokenLen {
		return errors.New("resume_token: required, at most 256 characters")
	}
	return nil
}

// SDP carries an offer or an answer. To is the addressee (client → server);
// From is stamped by the server (server → client) and ignored on input.
type SDP struct {
	To   string `json:"to,omitempty"`
	From string `json:"from,omitempty"`
	SDP  string `json:"sdp"`
}

func (s *SDP) Validate() error {
	if s.To == "" {
		return errors.New("to: required")
	}
	if s.SDP == "" || len(s.SDP) > MaxSDPBytes {
		return fmt.Errorf("sdp: required, at most %d bytes", MaxSDPBytes)
	}
	return nil
}

// Candidate is one trickled ICE candidate (the browser's RTCIceCandidateInit).
// A nil Candidate means end-of-candidates.
type Candidate struct {
	To            string  `json:"to,omitempty"`
	From          string  `json:"from,omitempty"`
	Candidate     string  `json:"candidate"`
	SDPMid        *string `json:"sdpMid,omitempty"`
	SDPMLineIndex *uint16 `json:"sdpMLineIndex,omitempty"`
}

func (c *Candidate) Validate() error {
	if c.To == "" {
		return errors.New("to: required")
	}
	if len(c.Candidate) > MaxCandBytes {
		return fmt.Errorf("candidate: at most %d bytes", MaxCandBytes)
	}
	return nil
}

// Chat is an in-room text message, relayed to every member.
type Chat struct {
	From string `json:"from,omitempty"`
	Name string `json:"name,omitempty"`
	Text string `json:"text"`
	At   int64  `json:"at,omitempty"` // server time, unix ms
}

func (c *Chat) Validate() error {
	n := utf8.RuneCountInString(c.Text)
	if n == 0 || n > MaxChatRunes || !utf8.ValidString(c.Text) {
		return fmt.Errorf("text: 1 to %d characters of valid UTF-8", MaxChatRunes)
	}
	return nil
}

// PeerState is what a member shows the others about itself. The latest one
// wins: it is coalesced in send queues and replayed to late joiners.
type PeerState struct {
	From     string `json:"from,omitempty"`
	Audio    bool   `json:"audio"`
	Video    bool   `json:"video"`
	Screen   bool   `json:"screen"`
	Hand     bool   `json:"hand"`
	Speaking bool   `json:"speaking"`
}

func (*PeerState) Validate() error { return nil }

// ICEServer mirrors the browser's RTCIceServer.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// PeerInfo describes one member to the others.
type PeerInfo struct {
	ID    string    `json:"id"`
	Name  string    `json:"name"`
	Role  string    `json:"role"`
	State PeerState `json:"state"`
}

// Joined answers a Join or a Resume.
type Joined struct {
	PeerID      string      `json:"peer_id"`
	Role        string      `json:"role"` // this member's own role (host, participant)
	ResumeToken string      `json:"resume_token"`
	Room        string      `json:"room"`
	Capacity    int         `json:"capacity"`
	Peers       []PeerInfo  `json:"peers"`
	ICEServers  []ICEServer `json:"ice_servers"`
	Resumed     bool        `json:"resumed"`
	// ResumeWindowMS tells the client how long the server keeps its seat
	// after the socket drops.
	ResumeWindowMS int64 `json:"resume_window_ms"`
	// Presenter and View let a late joiner follow the map at once.
	Presenter string `json:"presenter"`
	// ICETransportPolicy is "all" or "relay" (media only through TURN: no
	// participant learns another's address).
	ICETransportPolicy string   `json:"ice_transport_policy"`
	View               *MapView `json:"view,omitempty"`
	// Can lists what this member may do in the room (access actions such
	// as "room.present", "room.admit"): the page hides the rest. The
	// server still decides every message.
	Can []string `json:"can"`
	// WatchOnly: no camera, microphone or annotations; offers and answers
	// must not send media (recvonly or inactive).
	WatchOnly bool `json:"watch_only"`
	// Mode is the room's media mode (ModeMesh or ModeSFU); "mode"
	// messages announce its changes.
	Mode string `json:"mode"`
}

// Mode announces a room's media mode to its members (mesh or sfu). From a
// host it chooses the mode: mesh, sfu, or auto (the server's rule).
type Mode struct {
	Mode string `json:"mode"`
}

func (m *Mode) Validate() error {
	if m.Mode != ModeMesh && m.Mode != ModeSFU && m.Mode != "auto" {
		return errors.New("mode: mesh, sfu or auto")
	}
	return nil
}

// SFU is one step of a member's negotiation with the server's SFU, on one
// of its two peer connections: "up" (the member offers and publishes) or
// "down" (the server offers and forwards the others' tracks).
type SFU struct {
	PC        string        `json:"pc"`
	Kind      string        `json:"kind"` // offer, answer or candidate
	SDP       string        `json:"sdp,omitempty"`
	Candidate *ICECandidate `json:"candidate,omitempty"` // nil with kind candidate: end of candidates
}

// The two peer connections of a member in SFU mode (SFU.PC).
const (
	SFUUp   = "up"   // the member offers and publishes
	SFUDown = "down" // the server offers and forwards
)

// ICECandidate is a browser's RTCIceCandidateInit.
type ICECandidate struct {
	Candidate     string  `json:"candidate"`
	SDPMid        *string `json:"sdpMid,omitempty"`
	SDPMLineIndex *uint16 `json:"sdpMLineIndex,omitempty"`
}

func (s *SFU) Validate() error {
	if s.PC != SFUUp && s.PC != SFUDown {
		return errors.New("pc: up or down")
	}
	switch s.Kind {
	case "offer", "answer":
		if s.SDP == "" || len(s.SDP) > MaxSDPBytes {
			return fmt.Errorf("sdp: required, at most %d bytes", MaxSDPBytes)
		}
	case "candidate":
		if s.Candidate != nil && len(s.Candidate.Candidate) > MaxCandBytes {
			return fmt.Errorf("candidate: at most %d bytes", MaxCandBytes)
		}
	default:
		return errors.New("kind: offer, answer or candidate")
	}
	return nil
}

// Subscribe asks for a topic's stream. A socket that has not joined a room
// (a watcher without camera, e.g. a wall screen) gives a room token, or,
// opened with a staff session, the Room (the event) it watches ("main"
// when empty).
type Subscribe struct {
	Topic string `json:"topic"`
	Token string `json:"token,omitempty"`
	Room  string `json:"room,omitempty"`
}

func (s *Subscribe) Validate() error {
	if s.Topic == "" || len(s.Topic) > 32 {
		return errors.New("topic: required")
	}
	if len(s.Token) > MaxTokenLen {
		return errors.New("token: at most 256 characters")
	}
	return validRoom(s.Room)
}

// Topic names a topic (unsubscribe, resync).
type Topic struct {
	Topic string `json:"topic"`
}

func (t *Topic) Validate() error {
	if t.Topic == "" || len(t.Topic) > 32 {
		return errors.New("topic: required")
	}
	return nil
}

// Presenter: a host takes (Take) or releases the map presenter role;
// the server announces the current presenter's ID ("" for none).
type Presenter struct {
	Take bool   `json:"take"`
	ID   string `json:"id"`
}

func (*Presenter) Validate() error { return nil }

// MapView is the presenter's viewport and selected commune. Latest wins.
type MapView struct {
	From    string     `json:"from,omitempty"`
	Center  [2]float64 `json:"center"` // latitude, longitude
	Zoom    float64    `json:"zoom"`
	Commune string     `json:"commune,omitempty"`
}

func (v *MapView) Validate() error {
	if v.Center[0] < -90 || v.Center[0] > 90 || v.Center[1] < -180 || v.Center[1] > 180 {
		return errors.New("center: [latitude, longitude] in range")
	}
	if v.Zoom < 0 || v.Zoom > 22 {
		return errors.New("zoom: 0 to 22")
	}
	if len(v.Commune) > 10 {
		return errors.New("commune: an INSEE code")
	}
	return nil
}

// Annotation operations (Annotate.Op).
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
)

// Annotate creates, replaces or deletes a map annotation. Only the
// structure is checked here; the geometry and the label are livemap's rules
// (livemap.Annotation.Validate), answered with their own error codes.
type Annotate struct {
	Op         string          `json:"op"`
	Annotation AnnotationInput `json:"annotation"`
}

// AnnotationInput is what a client may set on an annotation; the server
// stamps the rest (room, author, times, version). ID is ignored on create.
type AnnotationInput struct {
	ID     string       `json:"id,omitempty"`
	Kind   string       `json:"kind,omitempty"`
	Coords [][2]float64 `json:"coords"` // [latitude, longitude] points
	Label  string       `json:"label,omitempty"`
	Color  string       `json:"color,omitempty"`
}

func (a *Annotate) Validate() error {
	switch a.Op {
	case OpCreate:
	case OpUpdate, OpDelete:
		if a.Annotation.ID == "" || len(a.Annotation.ID) > 64 {
			return errors.New("annotation.id: required to " + a.Op)
		}
	default:
		return errors.New(`op: "create", "update" or "delete"`)
	}
	return nil
}

// Lobby tells a guest where it stands: "waiting" until a host admits it
// (then it gets joined) or refuses it (error refused, close 4507).
type Lobby struct {
	State string `json:"state"`
}

// LobbyState values.
const LobbyWaiting = "waiting"

// LobbyEntry is one guest waiting in a room's lobby.
type LobbyEntry struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Since     int64  `json:"since"` // unix ms, when it started waiting
	WatchOnly bool   `json:"watch_only"`
	Label     string `json:"label"` // the guest link's label, as its creator wrote it
}

// LobbyList is the whole lobby of a room, oldest first, sent to the
// members who may admit whenever it changes (latest wins).
type LobbyList struct {
	Waiting []LobbyEntry `json:"waiting"`
}

// Admit lets a waiting guest in (Allow) or refuses it.
type Admit struct {
	ID    string `json:"id"`
	Allow bool   `json:"allow"`
}

func (a *Admit) Validate() error {
	if a.ID == "" || len(a.ID) > 64 {
		return errors.New("id: required, at most 64 characters")
	}
	return nil
}

// PeerLeft tells the others a member has gone for good (left, or its resume
// window ended).
type PeerLeft struct {
	ID string `json:"id"`
}

// Error answers a bad request; Ref echoes the envelope ID it refers to.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Ref     string `json:"ref,omitempty"`
}

// Bye precedes a server-initiated close so that clients whose close frame is
// lost (proxies) still learn the reason.
type Bye struct {
	Code      int    `json:"code"`
	Reason    string `json:"reason"`
	Reconnect bool   `json:"reconnect"`
}

func validName(s string) error {
	n := utf8.RuneCountInString(s)
	if n == 0 || n > MaxNameRunes || !utf8.ValidString(s) {
		return fmt.Errorf("name: 1 to %d characters", MaxNameRunes)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return errors.New("name: control characters are not allowed")
		}
	}
	return nil
}

// ProtocolError is a decode or validation failure with its wire code.
type ProtocolError struct {
	Code string
	Msg  string
	Ref  string
}

func (e *ProtocolError) Error() string { return e.Code + ": " + e.Msg }

// payloadFor returns a fresh payload struct for a client→server type, or nil
// for types that carry no data. ok is false for unknown types.
func payloadFor(typ string) (v Validator, ok bool) {
	switch typ {
	case TypeJoin:
		return &Join{}, true
	case TypeResume:
		return &Resume{}, true
	case TypeLeave:
		return nil, true
	case TypeOffer, TypeAnswer:
		return &SDP{}, true
	case TypeCandidate:
		return &Candidate{}, true
	case TypeChat:
		return &Chat{}, true
	case TypeState:
		return &PeerState{}, true
	case TypeSubscribe:
		return &Subscribe{}, true
	case TypeUnsubscribe, TypeResync:
		return &Topic{}, true
	case TypePresenter:
		return &Presenter{}, true
	case TypeMapView:
		return &MapView{}, true
	case TypeAnnotate:
		return &Annotate{}, true
	case TypeAdmit:
		return &Admit{}, true
	case TypeSFU:
		return &SFU{}, true
	case TypeMode:
		return &Mode{}, true
	}
	return nil, false
}

// Decode parses and validates one client→server frame. The returned payload
// is one of the pointer types above (nil for types without data). Every
// failure is a *ProtocolError carrying the code to send back.
func Decode(frame []byte) (Envelope, Validator, error) {
	var env Envelope
	if len(frame) > MaxMessageBytes {
		return env, nil, &ProtocolError{Code: ErrInvalid, Msg: "message too large"}
	}
	if err := json.Unmarshal(frame, &env); err != nil {
		return env, nil, &ProtocolError{Code: ErrBadJSON, Msg: "malformed JSON: " + err.Error()}
	}
	if env.V != Version {
		return env, nil, &ProtocolError{Code: ErrBadVersion, Ref: env.ID,
			Msg: fmt.Sprintf("protocol version %d is not supported; this server speaks %d", env.V, Version)}
	}
	p, ok := payloadFor(env.Type)
	if !ok {
		return env, nil, &ProtocolError{Code: ErrUnknownType, Ref: env.ID, Msg: fmt.Sprintf("unknown message type %q", env.Type)}
	}
	if p == nil {
		return env, nil, nil
	}
	data := env.Data
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}
	if err := json.Unmarshal(data, p); err != nil {
		return env, nil, &ProtocolError{Code: ErrBadJSON, Ref: env.ID, Msg: env.Type + ": " + err.Error()}
	}
	if err := p.Validate(); err != nil {
		return env, nil, &ProtocolError{Code: ErrInvalid, Ref: env.ID, Msg: env.Type + ": " + err.Error()}
	}
	return env, p, nil
}

// Encode builds one server→client frame. Payloads are our own structs, so a
// marshalling failure is a programming error and panics loudly in tests.
func Encode(typ, id string, data any) []byte {
	raw, err := json.Marshal(data)
	if err != nil {
		panic(fmt.Sprintf("protocol: encode %s: %v", typ, err))
	}
	b, err := json.Marshal(Envelope{V: Version, Type: typ, ID: id, Data: raw})
	if err != nil {
		panic(fmt.Sprintf("protocol: encode %s: %v", typ, err))
	}
	return b
}
