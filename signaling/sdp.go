package signaling

import "strings"

// sendsMedia tells whether an SDP offer or answer would send audio or
// video: the kind of the first audio or video m-line that is not rejected
// (port 0 without a=bundle-only) and whose direction is sendrecv or
// sendonly, "" if none. A
// media section without a direction takes the session's, and a session
// without one is sendrecv (RFC 8866 section 6.7). Data channels
// (m=application) are not media.
//
// It reads only the structure the browsers write (one attribute per line);
// an unreadable SDP is left to the peer, which rejects it.
func sendsMedia(sdp string) string {
	sessionDir := "sendrecv"
	kind, dir := "", "" // the current media section
	port0, bundleOnly := false, false
	verdict := func() string {
		if port0 && !bundleOnly {
			return ""
		}
		d := dir
		if d == "" {
			d = sessionDir
		}
		if (kind == "audio" || kind == "video") && (d == "sendrecv" || d == "sendonly") {
			return kind
		}
		return ""
	}
	inMedia := false
	for line := range strings.Lines(sdp) {
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "m="):
			if inMedia {
				if k := verdict(); k != "" {
					return k
				}
			}
			inMedia, dir, kind, port0, bundleOnly = true, "", "", false, false
			if f := strings.Fields(line[2:]); len(f) >= 2 {
				kind, port0 = f[0], f[1] == "0" // port 0: rejected or stopped, unless bundled
			}
		case line == "a=bundle-only":
			bundleOnly = true
		case line == "a=sendrecv" || line == "a=sendonly" || line == "a=recvonly" || line == "a=inactive":
			if inMedia {
				dir = line[2:]
			} else {
				sessionDir = line[2:]
			}
		}
	}
	if inMedia {
		return verdict()
	}
	return ""
}
