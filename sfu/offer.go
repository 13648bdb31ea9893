package sfu

import (
	"fmt"
	"strings"

	"github.com/pion/sdp/v3"
)

// Limits of an up offer: one audio section (microphone), two video
// sections (camera, screen).
const (
	maxAudioSections = 1
	maxVideoSections = 2
	maxOfferSize     = 64 << 10
)

// offerInfo is what the router needs from a publisher's offer.
type offerInfo struct {
	fingerprint string          // DTLS fingerprint: a new one means a new peer connection
	videoMids   []string        // video sections in order: camera, then screen
	sending     map[string]bool // mids whose section sends to us
}

// checkOffer refuses an up offer before pion sees it: too large, not
// parseable, more sections than a member publishes, a section whose kind
// is neither audio nor video, or one without Opus (audio) or VP8 (video).
// Errors wrap ErrBadOffer and, where it applies, ErrTooManyTracks or
// ErrUnsupportedCodec.
func checkOffer(raw string) (offerInfo, error) {
	var info offerInfo
	// Count sections before the size limit: 50 sections are too many
	// tracks, which says more than too many bytes.
	if n := strings.Count(raw, "\nm="); n > maxAudioSections+maxVideoSections {
		return info, fmt.Errorf("%w: %w: %d sections", ErrBadOffer, ErrTooManyTracks, n)
	}
	if len(raw) > maxOfferSize {
		return info, fmt.Errorf("%w: %d bytes (at most %d)", ErrBadOffer, len(raw), maxOfferSize)
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(raw); err != nil {
		return info, fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	if len(d.MediaDescriptions) == 0 {
		return info, fmt.Errorf("%w: no media section", ErrBadOffer)
	}
	if n := len(d.MediaDescriptions); n > maxAudioSections+maxVideoSections {
		return info, fmt.Errorf("%w: %w: %d sections", ErrBadOffer, ErrTooManyTracks, n)
	}
	info.fingerprint, _ = d.Attribute("fingerprint")
	info.sending = map[string]bool{}
	audio := 0
	for i, m := range d.MediaDescriptions {
		kind := m.MediaName.Media
		var want string
		switch kind {
		case "audio":
			audio++
			want = "opus"
		case "video":
			mid, _ := m.Attribute("mid")
			info.videoMids = append(info.videoMids, mid)
			want = "vp8"
		default:
			return info, fmt.Errorf("%w: section %d is %q (audio and video only)", ErrBadOffer, i, truncate(kind))
		}
		if audio > maxAudioSections || len(info.videoMids) > maxVideoSections {
			return info, fmt.Errorf("%w: %w: %d audio, %d video", ErrBadOffer, ErrTooManyTracks, audio, len(info.videoMids))
		}
		if info.fingerprint == "" {
			info.fingerprint, _ = m.Attribute("fingerprint")
		}
		if mid, ok := m.Attribute("mid"); ok && m.MediaName.Port.Value != 0 {
			_, recvonly := m.Attribute("recvonly")
			_, inactive := m.Attribute("inactive")
			info.sending[mid] = !recvonly && !inactive
		}
		if !offersCodec(m, want) {
			return info, fmt.Errorf("%w: %w: %s section %d offers none of %s", ErrBadOffer, ErrUnsupportedCodec,
				kind, i, want)
		}
	}
	if info.fingerprint == "" {
		return info, fmt.Errorf("%w: no DTLS fingerprint", ErrBadOffer)
	}
	return info, nil
}

// offersCodec: an rtpmap of the section names the codec.
func offersCodec(m *sdp.MediaDescription, codec string) bool {
	for _, a := range m.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		// "111 opus/48000/2"
		_, enc, ok := strings.Cut(a.Value, " ")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(enc, "/")
		if strings.EqualFold(name, codec) {
			return true
		}
	}
	return false
}

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
