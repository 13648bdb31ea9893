package signaling

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pion/sdp/v3"
)

// errBadSDP: an SDP of a watch-only guest that cannot be read strictly.
// The server cannot tell what it would send, so it is refused.
var errBadSDP = errors.New("unreadable SDP")

// sendsMedia tells whether an SDP offer or answer would send audio or
// video: the kind of the first audio or video m-section that is not
// rejected (port 0 without a=bundle-only) and whose direction is sendrecv
// or sendonly, "" if none. A media section without a direction takes the
// session's, and a session without one is sendrecv (RFC 8866 section
// 6.7). Data channels (m=application) are not media.
//
// It parses the SDP (pion/sdp), and refuses with errBadSDP what a peer
// might read otherwise than this function does: an SDP pion cannot parse,
// a bare CR line end (one parser splits lines there, another does not),
// more than one direction in a section or at session level, or a
// direction in another case or with spaces (attribute names are
// case-sensitive, so a peer may ignore "a=RECVONLY" and the section is
// then sendrecv, or honour "a=SENDRECV" that a strict reader skips).
func sendsMedia(raw string) (string, error) {
	if strings.Contains(strings.ReplaceAll(raw, "\r\n", ""), "\r") {
		return "", fmt.Errorf("%w: a line ends with CR alone", errBadSDP)
	}
	var s sdp.SessionDescription
	if err := s.UnmarshalString(raw); err != nil {
		return "", fmt.Errorf("%w: %v", errBadSDP, err)
	}
	sessionDir, err := direction(s.Attributes, "sendrecv")
	if err != nil {
		return "", fmt.Errorf("%w: session: %v", errBadSDP, err)
	}
	for i, m := range s.MediaDescriptions {
		dir, err := direction(m.Attributes, sessionDir)
		if err != nil {
			return "", fmt.Errorf("%w: m-line %d: %v", errBadSDP, i+1, err)
		}
		kind := strings.ToLower(m.MediaName.Media)
		if kind != "audio" && kind != "video" || dir != "sendrecv" && dir != "sendonly" {
			continue
		}
		// Port 0 is a rejected or stopped section, unless it is bundled.
		if m.MediaName.Port.Value == 0 && !hasAttribute(m.Attributes, "bundle-only") {
			continue
		}
		return kind, nil
	}
	return "", nil
}

// direction returns the one direction attribute of attrs, def if none.
func direction(attrs []sdp.Attribute, def string) (string, error) {
	dir := ""
	for _, a := range attrs {
		switch k := a.Key; strings.ToLower(strings.TrimSpace(k)) {
		case "sendrecv", "sendonly", "recvonly", "inactive":
			if k != strings.ToLower(strings.TrimSpace(k)) {
				return "", fmt.Errorf("direction %q not in lower case or with spaces", k)
			}
			if dir != "" {
				return "", fmt.Errorf("two directions (%s, %s)", dir, k)
			}
			dir = k
		}
	}
	if dir == "" {
		return def, nil
	}
	return dir, nil
}

func hasAttribute(attrs []sdp.Attribute, key string) bool {
	for _, a := range attrs {
		if a.Key == key {
			return true
		}
	}
	return false
}
