package protocol

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func u16(n uint16) *uint16 { return &n }
func str(s string) *string { return &s }

// TestDecode walks every client→server type through Decode: the payload it
// yields on success, the wire code and the echoed ref on failure.
func TestDecode(t *testing.T) {
	sdp := "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"
	cases := []struct {
		name    string
		frame   string
		code    string // "" for success
		ref     string
		typ     string
		payload Validator
	}{
		{name: "join", frame: `{"v":1,"type":"join","id":"1","data":{"token":"abc","name":"Préfète"}}`,
			typ: TypeJoin, payload: &Join{Token: "abc", Name: "Préfète"}},
		{name: "resume", frame: `{"v":1,"type":"resume","id":"2","data":{"resume_token":"r"}}`,
			typ: TypeResume, payload: &Resume{ResumeToken: "r"}},
		{name: "leave without data", frame: `{"v":1,"type":"leave"}`, typ: TypeLeave},
		{name: "leave ignores data", frame: `{"v":1,"type":"leave","data":[1,2]}`, typ: TypeLeave},
		{name: "offer", frame: `{"v":1,"type":"offer","id":"o","data":{"to":"p2","sdp":` + quote(sdp) + `}}`,
			typ: TypeOffer, payload: &SDP{To: "p2", SDP: sdp}},
		{name: "answer keeps client from as sent (server overwrites it)", frame: `{"v":1,"type":"answer","data":{"to":"p2","from":"liar","sdp":"x"}}`,
			typ: TypeAnswer, payload: &SDP{To: "p2", From: "liar", SDP: "x"}},
		{name: "candidate", frame: `{"v":1,"type":"candidate","data":{"to":"p","candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}`,
			typ: TypeCandidate, payload: &Candidate{To: "p", Candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host", SDPMid: str("0"), SDPMLineIndex: u16(0)}},
		{name: "end of candidates", frame: `{"v":1,"type":"candidate","data":{"to":"p","candidate":""}}`,
			typ: TypeCandidate, payload: &Candidate{To: "p"}},
		{name: "chat", frame: `{"v":1,"type":"chat","id":"c","data":{"text":"Point de situation à 14 h"}}`,
			typ: TypeChat, payload: &Chat{Text: "Point de situation à 14 h"}},
		{name: "chat at the limit", frame: `{"v":1,"type":"chat","data":{"text":"` + strings.Repeat("é", MaxChatRunes) + `"}}`,
			typ: TypeChat, payload: &Chat{Text: strings.Repeat("é", MaxChatRunes)}},
		{name: "state", frame: `{"v":1,"type":"state","data":{"audio":true,"hand":true}}`,
			typ: TypeState, payload: &PeerState{Audio: true, Hand: true}},
		{name: "state without data", frame: `{"v":1,"type":"state"}`, typ: TypeState, payload: &PeerState{}},
		{name: "state with null data", frame: `{"v":1,"type":"state","data":null}`, typ: TypeState, payload: &PeerState{}},
		{name: "join a room with the session", frame: `{"v":1,"type":"join","id":"1","data":{"token":"","room":"main","name":"Préfète"}}`,
			typ: TypeJoin, payload: &Join{Room: "main", Name: "Préfète"}},
		{name: "admit", frame: `{"v":1,"type":"admit","id":"a","data":{"id":"w1","allow":true}}`,
			typ: TypeAdmit, payload: &Admit{ID: "w1", Allow: true}},
		{name: "subscribe a room with the session", frame: `{"v":1,"type":"subscribe","data":{"topic":"map","room":"crue-2026"}}`,
			typ: TypeSubscribe, payload: &Subscribe{Topic: "map", Room: "crue-2026"}},

		{name: "not JSON", frame: `{"v":1,"type":`, code: ErrBadJSON},
		{name: "JSON but not an object", frame: `[1]`, code: ErrBadJSON},
		{name: "version as string", frame: `{"v":"1","type":"chat"}`, code: ErrBadJSON},
		{name: "missing version", frame: `{"type":"chat","id":"9","data":{"text":"x"}}`, code: ErrBadVersion, ref: "9"},
		{name: "future version", frame: `{"v":2,"type":"chat","id":"9","data":{"text":"x"}}`, code: ErrBadVersion, ref: "9"},
		{name: "unknown type", frame: `{"v":1,"type":"teleport","id":"u"}`, code: ErrUnknownType, ref: "u"},
		{name: "server-only type", frame: `{"v":1,"type":"joined","id":"u"}`, code: ErrUnknownType, ref: "u"},
		{name: "data of the wrong shape", frame: `{"v":1,"type":"join","id":"j","data":"tok"}`, code: ErrBadJSON, ref: "j"},
		{name: "field of the wrong type", frame: `{"v":1,"type":"state","id":"s","data":{"audio":"yes"}}`, code: ErrBadJSON, ref: "s"},
		{name: "mline index out of range", frame: `{"v":1,"type":"candidate","data":{"to":"p","candidate":"c","sdpMLineIndex":70000}}`, code: ErrBadJSON},
		{name: "join without token", frame: `{"v":1,"type":"join","id":"j","data":{"name":"A"}}`, code: ErrInvalid, ref: "j"},
		{name: "join a room with a bad name", frame: `{"v":1,"type":"join","id":"j","data":{"room":"../x","name":"A"}}`, code: ErrInvalid, ref: "j"},
		{name: "admit without id", frame: `{"v":1,"type":"admit","id":"a","data":{"allow":true}}`, code: ErrInvalid, ref: "a"},
		{name: "subscribe a room with a bad name", frame: `{"v":1,"type":"subscribe","data":{"topic":"map","room":"Main Room"}}`, code: ErrInvalid},
		{name: "join with long token", frame: `{"v":1,"type":"join","data":{"token":"` + strings.Repeat("t", MaxTokenLen+1) + `","name":"A"}}`, code: ErrInvalid},
		{name: "join without name", frame: `{"v":1,"type":"join","data":{"token":"t"}}`, code: ErrInvalid},
		{name: "name too long", frame: `{"v":1,"type":"join","data":{"token":"t","name":"` + strings.Repeat("n", MaxNameRunes+1) + `"}}`, code: ErrInvalid},
		{name: "name with control character", frame: `{"v":1,"type":"join","data":{"token":"t","name":"a\nb"}}`, code: ErrInvalid},
		{name: "resume without token", frame: `{"v":1,"type":"resume","data":{}}`, code: ErrInvalid},
		{name: "offer without to", frame: `{"v":1,"type":"offer","data":{"sdp":"x"}}`, code: ErrInvalid},
		{name: "offer without sdp", frame: `{"v":1,"type":"offer","data":{"to":"p"}}`, code: ErrInvalid},
		{name: "sdp too large", frame: `{"v":1,"type":"answer","data":{"to":"p","sdp":"` + strings.Repeat("s", MaxSDPBytes+1) + `"}}`, code: ErrInvalid},
		{name: "candidate without to", frame: `{"v":1,"type":"candidate","data":{"candidate":"c"}}`, code: ErrInvalid},
		{name: "candidate too large", frame: `{"v":1,"type":"candidate","data":{"to":"p","candidate":"` + strings.Repeat("c", MaxCandBytes+1) + `"}}`, code: ErrInvalid},
		{name: "empty chat", frame: `{"v":1,"type":"chat","data":{"text":""}}`, code: ErrInvalid},
		{name: "chat too long", frame: `{"v":1,"type":"chat","data":{"text":"` + strings.Repeat("a", MaxChatRunes+1) + `"}}`, code: ErrInvalid},
		{name: "frame over the limit", frame: `{"v":1,"type":"chat","data":{"text":"` + strings.Repeat(" ", MaxMessageBytes) + `"}}`, code: ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env, p, err := Decode([]byte(tc.frame))
			if tc.code != "" {
				var pe *ProtocolError
				if !errors.As(err, &pe) {
					t.Fatalf("err = %v (%T), want *ProtocolError %s", err, err, tc.code)
				}
				if pe.Code != tc.code || pe.Ref != tc.ref || pe.Msg == "" {
					t.Fatalf("error = %+v, want code %q ref %q and a message", pe, tc.code, tc.ref)
				}
				if p != nil {
					t.Fatalf("payload %+v returned with an error", p)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if env.Type != tc.typ || env.V != Version {
				t.Fatalf("envelope = %+v, want type %s", env, tc.typ)
			}
			if tc.payload == nil {
				if p != nil {
					t.Fatalf("payload = %#v, want nil", p)
				}
				return
			}
			if !reflect.DeepEqual(p, tc.payload) {
				t.Fatalf("payload = %#v, want %#v", p, tc.payload)
			}
		})
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestValidateNames covers the name rules that the table above only samples.
func TestValidateNames(t *testing.T) {
	for name, ok := range map[string]bool{
		"Cellule de crise":            true,
		strings.Repeat("é", 64):       true,
		strings.Repeat("é", 65):       false,
		"":                            false,
		"tab\there":                   false,
		"del\x7f":                     false,
		"\xff\xfe invalid UTF-8 here": false,
	} {
		err := (&Join{Token: "t", Name: name}).Validate()
		if (err == nil) != ok {
			t.Errorf("name %q: err = %v, want ok=%v", name, err, ok)
		}
	}
}

// TestEncode checks the server side of the envelope: version stamped, id
// echoed or omitted, data as the payload's JSON.
func TestEncode(t *testing.T) {
	b := Encode(TypeError, "7", Error{Code: ErrRoomFull, Message: "full", Ref: "7"})
	var env Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	if env.V != Version || env.Type != TypeError || env.ID != "7" {
		t.Fatalf("envelope = %+v", env)
	}
	var e Error
	if err := json.Unmarshal(env.Data, &e); err != nil || e != (Error{Code: ErrRoomFull, Message: "full", Ref: "7"}) {
		t.Fatalf("data = %s (%v)", env.Data, err)
	}
	if s := string(Encode(TypeBye, "", Bye{Code: CloseShutdown, Reason: "r", Reconnect: true})); strings.Contains(s, `"id"`) {
		t.Fatalf("empty id is encoded: %s", s)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Encode of an unmarshalable payload did not panic")
		}
	}()
	Encode(TypeChat, "", make(chan int))
}

func TestShouldReconnect(t *testing.T) {
	for code, want := range map[int]bool{
		CloseShutdown: true, CloseSlowConsumer: true, ClosePingTimeout: true, CloseReplaced: false,
		CloseBadToken: false, CloseTokenExpired: false, CloseRoomFull: false, CloseBadVersion: false,
		CloseProtocol: false, CloseLeft: false, CloseSessionGone: false, 1000: false, 1006: false, 1009: false,
	} {
		if got := ShouldReconnect(code); got != want {
			t.Errorf("ShouldReconnect(%d) = %v, want %v", code, got, want)
		}
	}
}

// fuzzSeeds are valid frames of every client→server type plus a few
// near-misses, so the fuzzer starts from the interesting shapes.
var fuzzSeeds = []string{
	`{"v":1,"type":"join","id":"1","data":{"token":"abc","name":"Préfète"}}`,
	`{"v":1,"type":"resume","id":"2","data":{"resume_token":"r"}}`,
	`{"v":1,"type":"leave","id":"3"}`,
	`{"v":1,"type":"offer","id":"4","data":{"to":"p2","sdp":"v=0\r\n"}}`,
	`{"v":1,"type":"answer","id":"5","data":{"to":"p2","sdp":"v=0\r\n"}}`,
	`{"v":1,"type":"candidate","id":"6","data":{"to":"p","candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}`,
	`{"v":1,"type":"chat","id":"7","data":{"text":"bonjour"}}`,
	`{"v":1,"type":"state","id":"8","data":{"audio":true,"video":false,"screen":false,"hand":true,"speaking":false}}`,
	`{"v":2,"type":"chat","data":{"text":"x"}}`,
	`{"v":1,"type":"join","data":"x"}`,
	`{"v":1,"type":"candidate","data":{"to":"p","sdpMLineIndex":-1}}`,
	`{"v":1,"type":"chat","data":{"text":"\ud800"}}`,
	``,
}

// FuzzDecode: Decode must never panic, every failure must be a
// *ProtocolError with a known code, and every accepted frame must survive a
// round trip through Encode unchanged (what the server relays is what it
// accepted).
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	known := map[string]bool{ErrBadJSON: true, ErrBadVersion: true, ErrUnknownType: true, ErrInvalid: true}
	f.Fuzz(func(t *testing.T, frame []byte) {
		env, p, err := Decode(frame)
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) || !known[pe.Code] || p != nil {
				t.Fatalf("Decode(%q) = %v, %#v: want a *ProtocolError with a decode code and no payload", frame, err, p)
			}
			return
		}
		if env.V != Version {
			t.Fatalf("accepted version %d", env.V)
		}
		want, ok := payloadFor(env.Type)
		if !ok {
			t.Fatalf("accepted unknown type %q", env.Type)
		}
		if (want == nil) != (p == nil) || (p != nil && reflect.TypeOf(p) != reflect.TypeOf(want)) {
			t.Fatalf("type %q gave payload %T", env.Type, p)
		}
		if p == nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("accepted payload does not validate: %v", err)
		}
		// Not through Decode again: escaping (e.g. "<" as \u003c) may push a
		// relayed frame over the inbound limit, which is fine outbound.
		again := Encode(env.Type, env.ID, p)
		var env2 Envelope
		if err := json.Unmarshal(again, &env2); err != nil {
			t.Fatalf("re-encoded frame %s: %v", again, err)
		}
		p2, _ := payloadFor(env.Type)
		if err := json.Unmarshal(env2.Data, p2); err != nil {
			t.Fatalf("re-encoded data %s: %v", env2.Data, err)
		}
		if env2.V != Version || env2.Type != env.Type || env2.ID != env.ID || !reflect.DeepEqual(p, p2) {
			t.Fatalf("round trip changed the message:\n%#v\n%#v", p, p2)
		}
		if err := p2.Validate(); err != nil {
			t.Fatalf("round-tripped payload does not validate: %v", err)
		}
	})
}
