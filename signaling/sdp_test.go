package signaling

import (
	"strings"
	"testing"

	"crisisroom/access"
	"crisisroom/protocol"
)

func TestSendsMedia(t *testing.T) {
	sdp := func(lines ...string) string {
		return "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" + strings.Join(lines, "\r\n") + "\r\n"
	}
	cases := []struct {
		name string
		sdp  string
		want string
	}{
		{"recvonly audio and video", sdp("m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0", "a=recvonly", "m=video 9 UDP/TLS/RTP/SAVPF 96", "a=mid:1", "a=recvonly"), ""},
		{"inactive video", sdp("m=video 9 UDP/TLS/RTP/SAVPF 96", "a=inactive"), ""},
		{"data channel only", sdp("m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "a=mid:0"), ""},
		{"sendrecv video", sdp("m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=recvonly", "m=video 9 UDP/TLS/RTP/SAVPF 96", "a=sendrecv"), "video"},
		{"sendonly audio", sdp("m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=sendonly"), "audio"},
		{"no direction means sendrecv", sdp("m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0"), "audio"},
		{"session-level recvonly", "v=0\r\na=recvonly\r\nm=video 9 RTP/AVP 96\r\n", ""},
		{"session-level sendonly", "v=0\na=sendonly\nm=video 9 RTP/AVP 96\n", "video"},
		{"rejected section", sdp("m=video 0 UDP/TLS/RTP/SAVPF 96", "a=sendrecv"), ""},
		{"bundle-only section", sdp("m=video 0 UDP/TLS/RTP/SAVPF 96", "a=bundle-only", "a=sendrecv"), "video"},
		{"last section sends", sdp("m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "m=video 9 UDP/TLS/RTP/SAVPF 96", "a=sendonly"), "video"},
		{"not SDP", "hello", ""},
	}
	for _, tc := range cases {
		if got := sendsMedia(tc.sdp); got != tc.want {
			t.Errorf("%s: sendsMedia = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestEveryMessageHasARule: each type the server handles is decided by a
// rule of access.Messages (topics included); one without is refused, so a
// handler added without its rule would be dead code.
func TestEveryMessageHasARule(t *testing.T) {
	for typ := range handlers {
		if _, ok := access.Messages[typ]; !ok {
			t.Errorf("%s has a handler but no access rule", typ)
		}
	}
	for typ := range topicHandlers {
		for _, topic := range []string{protocol.TopicMap, protocol.TopicLog} {
			if _, ok := access.Messages[typ+":"+topic]; !ok {
				t.Errorf("%s:%s has no access rule", typ, topic)
			}
		}
	}
	for _, typ := range []string{protocol.TypeJoin, protocol.TypeResume} {
		if _, ok := access.Messages[typ]; !ok {
			t.Errorf("%s has no access rule", typ)
		}
	}
}
