package signaling

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"crisisroom/access"
	"crisisroom/protocol"
)

const sdpHead = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"

func sdpOf(lines ...string) string { return sdpHead + strings.Join(lines, "\r\n") + "\r\n" }

// sdpBypasses are SDPs a line matcher read as receive-only although a peer
// may send on them; each must be refused for a watch-only guest.
var sdpBypasses = map[string]string{
	"two directions, sending first": sdpOf("m=video 9 UDP/TLS/RTP/SAVPF 96", "a=mid:0", "a=sendrecv", "a=recvonly"),
	"two directions, sending last":  sdpOf("m=video 9 UDP/TLS/RTP/SAVPF 96", "a=mid:0", "a=recvonly", "a=sendonly"),
	"upper-case direction":          sdpOf("m=video 9 UDP/TLS/RTP/SAVPF 96", "a=mid:0", "a=recvonly", "a=SENDRECV"),
	"upper-case recvonly alone":     sdpOf("m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=RECVONLY"),
	"direction with a space":        sdpOf("m=video 9 UDP/TLS/RTP/SAVPF 96", "a=recvonly", "a=sendrecv "),
	"CR-only line ends":             strings.ReplaceAll(sdpOf("m=video 9 UDP/TLS/RTP/SAVPF 96", "a=mid:0", "a=sendrecv"), "\r\n", "\r"),
	"CR-only in one place":          sdpHead + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=recvonly\rm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendrecv\r\n",
	"two session directions":        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=recvonly\r\na=sendrecv\r\nm=video 9 RTP/AVP 96\r\n",
	"upper-case media":              sdpOf("m=VIDEO 9 UDP/TLS/RTP/SAVPF 96", "a=recvonly", "a=sendonly"),
	"not SDP":                       "hello",
}

func TestSendsMedia(t *testing.T) {
	cases := []struct {
		name string
		sdp  string
		want string
	}{
		{"recvonly audio and video", sdpOf("m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0", "a=recvonly", "m=video 9 UDP/TLS/RTP/SAVPF 96", "a=mid:1", "a=recvonly"), ""},
		{"inactive video", sdpOf("m=video 9 UDP/TLS/RTP/SAVPF 96", "a=inactive"), ""},
		{"data channel only", sdpOf("m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "a=mid:0"), ""},
		{"sendrecv video", sdpOf("m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=recvonly", "m=video 9 UDP/TLS/RTP/SAVPF 96", "a=sendrecv"), "video"},
		{"sendonly audio", sdpOf("m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=sendonly"), "audio"},
		{"no direction means sendrecv", sdpOf("m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0"), "audio"},
		{"session-level recvonly", sdpHead + "a=recvonly\r\nm=video 9 RTP/AVP 96\r\n", ""},
		{"session-level sendonly, LF line ends", strings.ReplaceAll(sdpHead, "\r\n", "\n") + "a=sendonly\nm=video 9 RTP/AVP 96\n", "video"},
		{"media direction over the session's", sdpHead + "a=recvonly\r\nm=video 9 RTP/AVP 96\r\na=sendrecv\r\n", "video"},
		{"rejected section", sdpOf("m=video 0 UDP/TLS/RTP/SAVPF 96", "a=sendrecv"), ""},
		{"bundle-only section", sdpOf("m=video 0 UDP/TLS/RTP/SAVPF 96", "a=bundle-only", "a=sendrecv"), "video"},
		{"last section sends", sdpOf("m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "m=video 9 UDP/TLS/RTP/SAVPF 96", "a=sendonly"), "video"},
	}
	for _, tc := range cases {
		if got, err := sendsMedia(tc.sdp); got != tc.want || err != nil {
			t.Errorf("%s: sendsMedia = %q, %v, want %q", tc.name, got, err, tc.want)
		}
	}
	for name, sdp := range sdpBypasses {
		if got, err := sendsMedia(sdp); got == "" && err == nil {
			t.Errorf("%s: read as sending nothing", name)
		} else if err != nil && !errors.Is(err, errBadSDP) {
			t.Errorf("%s: %v, want errBadSDP", name, err)
		}
	}
}

// mayBeSending is a deliberately suspicious reading of an SDP, independent
// of pion: lines split at CR or LF, attributes trimmed and in any case,
// every direction of a section counted. It reports whether any audio or
// video section could send.
func mayBeSending(raw string) bool {
	lines := strings.FieldsFunc(raw, func(r rune) bool { return r == '\r' || r == '\n' })
	type section struct {
		media       bool
		port0, only bool
		dirs        []string
	}
	var session []string
	var secs []*section
	for _, l := range lines {
		l = strings.ToLower(strings.TrimSpace(l))
		if rest, ok := strings.CutPrefix(l, "m="); ok {
			f := strings.Fields(rest)
			s := &section{}
			if len(f) > 0 {
				s.media = strings.Contains(f[0], "audio") || strings.Contains(f[0], "video")
			}
			if len(f) > 1 {
				p, _, _ := strings.Cut(f[1], "/")
				n, err := strconv.Atoi(p)
				s.port0 = err == nil && n == 0
			}
			secs = append(secs, s)
			continue
		}
		a, ok := strings.CutPrefix(l, "a=")
		if !ok {
			continue
		}
		a, _, _ = strings.Cut(a, ":")
		a = strings.TrimSpace(a)
		switch {
		case a == "bundle-only" && len(secs) > 0:
			secs[len(secs)-1].only = true
		case a == "sendrecv" || a == "sendonly" || a == "recvonly" || a == "inactive":
			if len(secs) == 0 {
				session = append(session, a)
			} else {
				secs[len(secs)-1].dirs = append(secs[len(secs)-1].dirs, a)
			}
		}
	}
	sends := func(dirs []string) bool {
		for _, d := range dirs {
			if d == "sendrecv" || d == "sendonly" {
				return true
			}
		}
		return false
	}
	for _, s := range secs {
		if !s.media || s.port0 && !s.only {
			continue
		}
		dirs := s.dirs
		if len(dirs) == 0 {
			dirs = session
		}
		if len(dirs) == 0 || sends(dirs) {
			return true
		}
	}
	return false
}

// FuzzWatchOnlySDP: whatever sendsMedia lets through as sending nothing,
// the suspicious reading must agree sends nothing either.
func FuzzWatchOnlySDP(f *testing.F) {
	for _, s := range sdpBypasses {
		f.Add(s)
	}
	f.Add(sdpOf("m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0", "a=recvonly", "m=video 9 UDP/TLS/RTP/SAVPF 96", "a=mid:1", "a=inactive",
		"m=application 9 UDP/DTLS/SCTP webrtc-datachannel"))
	f.Add(sdpOf("m=video 0 UDP/TLS/RTP/SAVPF 96", "a=sendrecv", "m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=recvonly"))
	f.Add(sdpHead + "a=recvonly\r\nm=video 9 RTP/AVP 96\r\nm=audio 9 RTP/AVP 0\r\n")
	f.Fuzz(func(t *testing.T, raw string) {
		kind, err := sendsMedia(raw)
		if err != nil || kind != "" {
			return
		}
		if mayBeSending(raw) {
			t.Fatalf("accepted as receive-only, but a section may send:\n%q", raw)
		}
	})
}

// TestEveryMessageHasARule: every message type with a handler has a rule
// of access.MessageAction (topics included); one without is refused, so a
// handler without a rule would be dead code.
func TestEveryMessageHasARule(t *testing.T) {
	for typ := range handlers {
		if _, ok := access.MessageAction(typ); !ok {
			t.Errorf("%s has a handler but no access rule", typ)
		}
	}
	for typ := range topicHandlers {
		for _, topic := range []string{protocol.TopicMap, protocol.TopicLog} {
			if _, ok := access.MessageAction(typ + ":" + topic); !ok {
				t.Errorf("%s:%s has no access rule", typ, topic)
			}
		}
	}
	for _, typ := range []string{protocol.TypeJoin, protocol.TypeResume} {
		if _, ok := access.MessageAction(typ); !ok {
			t.Errorf("%s has no access rule", typ)
		}
	}
}
