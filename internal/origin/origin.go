// Package origin says whether a browser request comes from the server's own
// pages: the WebSocket upgrade and the login (the two calls a page makes
// without a CSRF token) both ask it.
package origin

import (
	"net/http"
	"net/url"
	"strings"
)

// Policy is the set of web origins our pages are served from: the
// request's own host, the public URL's, and any configured extra ones.
type Policy struct {
	PublicURL string   // e.g. https://crise.prefecture.fr
	Extra     []string // scheme://host[:port], as configured
}

// Allows accepts a request with no Origin (native and test clients, which
// do not carry a browser's ambient cookies), the page's own origin, the
// public URL's, and the configured ones.
func (p Policy) Allows(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	if p.PublicURL != "" {
		if pu, err := url.Parse(p.PublicURL); err == nil && strings.EqualFold(pu.Host, u.Host) && pu.Scheme == u.Scheme {
			return true
		}
	}
	for _, o := range p.Extra {
		if strings.EqualFold(strings.TrimRight(o, "/"), u.Scheme+"://"+u.Host) {
			return true
		}
	}
	return false
}

// SameSite is Allows made strict for calls that change cookies without a
// CSRF token: an Origin must be ours, and without one a browser's
// Sec-Fetch-Site must say the request is its own page's (or typed by
// the user). A request with neither is no browser's: it has no victim's
// cookie to ride on.
func (p Policy) SameSite(r *http.Request) bool {
	if r.Header.Get("Origin") != "" {
		return p.Allows(r)
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return false
}
