package sfu

import (
	"errors"
	"testing"
)

// FuzzCheckOffer: checkOffer never panics and every refusal is an
// ErrBadOffer.
func FuzzCheckOffer(f *testing.F) {
	f.Add(upOfferSDP(f, 1, 2))
	f.Add(upOfferSDP(f, 0, 1))
	f.Add("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n")
	f.Fuzz(func(t *testing.T, raw string) {
		if _, err := checkOffer(raw); err != nil && !errors.Is(err, ErrBadOffer) {
			t.Fatalf("error not an ErrBadOffer: %v", err)
		}
	})
}
