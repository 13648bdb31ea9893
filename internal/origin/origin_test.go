package origin

import (
	"net/http/httptest"
	"testing"
)

func TestPolicy(t *testing.T) {
	p := Policy{PublicURL: "https://crise.example.fr", Extra: []string{"https://partner.example/"}}
	for _, c := range []struct {
		origin, fetchSite string
		allows, sameSite  bool
	}{
		{"", "", true, true},                          // no browser
		{"", "same-origin", true, true},               // our page, Origin omitted
		{"", "none", true, true},                      // typed by the user
		{"", "cross-site", true, false},               // another site's page
		{"", "same-site", true, false},                // a sibling subdomain
		{"http://app.test", "", true, true},           // the request's own host
		{"HTTP://APP.TEST", "", true, true},           // case of the host
		{"https://crise.example.fr", "", true, true},  // the public URL
		{"http://crise.example.fr", "", false, false}, // the public host, another scheme
		{"https://partner.example", "", true, true},   // configured
		{"https://evil.example", "same-origin", false, false},
		{"null", "", false, false},
		{"://bad", "", false, false},
	} {
		r := httptest.NewRequest("POST", "http://app.test/api/v1/session", nil)
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		if c.fetchSite != "" {
			r.Header.Set("Sec-Fetch-Site", c.fetchSite)
		}
		if got := p.Allows(r); got != c.allows {
			t.Errorf("Allows(Origin %q, Sec-Fetch-Site %q) = %v", c.origin, c.fetchSite, got)
		}
		if got := p.SameSite(r); got != c.sameSite {
			t.Errorf("SameSite(Origin %q, Sec-Fetch-Site %q) = %v", c.origin, c.fetchSite, got)
		}
	}
}
