package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"crisisroom/access"
	"crisisroom/declarations"
	"crisisroom/rooms"
	"crisisroom/territory"
)

// Link kind and role of commune declaration links.
const (
	KindCommune   = "commune"
	RoleDeclarant = "declarant"
)

// setupDeclarations loads the territory and starts the declarations
// service. Without a territory the server still runs the video room; the
// declaration routes answer 503 saying what to configure.
func (a *App) setupDeclarations(ctx context.Context) error {
	if a.cfg.Territory == "" {
		a.log.Warn("no --territory given: declarations and the map are off")
		return nil
	}
	terr, err := territory.Load(ctx, a.cfg.Territory, a.cfg.CommunesCSV)
	if err != nil {
		return err
	}
	loc, _ := time.LoadLocation(a.cfg.Timezone) // checked by Validate
	rule, _ := a.cfg.alertRule()
	codes := make([]string, len(terr.Communes))
	for i, c := range terr.Communes {
		codes[i] = c.Code
	}
	svc, err := declarations.New(ctx, declarations.Config{
		Rules: declarations.Rules{
			KnownCommune: func(code string) bool { _, ok := terr.Lookup(code); return ok },
			EventStart:   a.cfg.EventStart,
			MaxCount:     a.cfg.MaxCount,
			Location:     loc,
		},
		Alerts:        rule,
		Communes:      codes,
		PublishStates: a.cluster(),
		Population:    func(code string) int { c, _ := terr.Lookup(code); return c.Population },
	}, timedDeclStore{a.be.Store.Declarations(), a.metrics}, timedPublisher{a.be.Bus, a.metrics}, a.log.With("component", "declarations"))
	if err != nil {
		return err
	}
	a.Territory, a.Decl = terr, svc
	a.log.Info("territory loaded", "communes", len(terr.Communes), "population", terr.Population(), "source", terr.Source)
	return nil
}

// communeName names a commune for reports and exports.
func (a *App) communeName(code string) string {
	if a.Territory == nil || code == "" {
		return ""
	}
	c, ok := a.Territory.Lookup(code)
	if !ok {
		return ""
	}
	return c.Name
}

// bearer returns the token of an Authorization: Bearer header.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// actor is the declarations' view of the request's principal (resolved and
// authorized by the gate). Its flags come from access.Decide, so that the
// domain's own checks and the matrix cannot disagree: Operator acts for any
// commune; Viewer reads every commune; a declarant is bound to Commune.
func (a *App) actor(r *http.Request) (declarations.Actor, error) {
	p := access.FromContext(r.Context())
	if p == nil {
		return declarations.Actor{}, declarations.ErrUnauthenticated
	}
	chain := []string{access.MainEvent}
	return declarations.Actor{ID: p.ID, Label: p.Name, Commune: p.Commune,
		Operator: access.Decide(p, access.DeclAny, chain) == nil,
		Viewer:   p.Commune == "" && access.Decide(p, access.DeclView, chain) == nil}, nil
}

// CommuneLink is one printed declaration link.
type CommuneLink struct {
	Code  string `json:"code"`
	Name  string `json:"name"`
	URL   string `json:"url"`
	Token string `json:"token"`
}

// NewCommuneLinks mints one declaration link per commune (all when codes
// is empty). Tokens are shown once; only their hashes are stored.
func (a *App) NewCommuneLinks(ctx context.Context, codes []string, ttl time.Duration) ([]CommuneLink, error) {
	if a.Territory == nil {
		return nil, errors.New("commune links need the territory: pass --territory (and --communes)")
	}
	if ttl <= 0 {
		return nil, errors.New("a link needs a positive lifetime")
	}
	if len(codes) == 0 {
		for _, c := range a.Territory.Communes {
			codes = append(codes, c.Code)
		}
	}
	var out []CommuneLink
	now := time.Now().UTC()
	for _, code := range codes {
		c, ok := a.Territory.Lookup(code)
		if !ok {
			return nil, fmt.Errorf("commune %q is not in the territory", code)
		}
		plain, hash := rooms.NewSecret()
		l := rooms.Link{ID: rooms.NewID(), Hash: hash, Kind: KindCommune, Scope: code, Role: RoleDeclarant,
			Label: "Mairie de " + c.Name, CreatedAt: now, ExpiresAt: now.Add(ttl)}
		if err := a.be.Store.CreateLink(ctx, l); err != nil {
			return nil, err
		}
		out = append(out, CommuneLink{Code: code, Name: c.Name, URL: a.cfg.PublicBase() + "/d#t=" + plain, Token: plain})
	}
	return out, nil
}
