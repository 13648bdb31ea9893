package access

import (
	"maps"
	"slices"
)

// Scope says which event an HTTP route acts in, for the role lookup.
type Scope int

// Scopes of routes.
const (
	// ScopeNone: not tied to an event; the global role decides (or any
	// role, for EventsList and Authenticated).
	ScopeNone Scope = iota
	// ScopeEvent: the event named by the route's {slug}.
	ScopeEvent
	// ScopeTerritory: the declarations, the map and its layers belong to
	// the standing event (MainEvent) and are shared by its sub-events.
	ScopeTerritory
)

// MainEvent is the slug of the event created at first start; the
// territory's declarations and map belong to it.
const MainEvent = "main"

// Rule is what a route needs.
type Rule struct {
	Action Action
	Scope  Scope
}

// RouteRule is the rule of the route the router matched: its method
// (HEAD served as GET is GET) and its pattern as chi joins it from the
// root. A route without a rule has none: the gate refuses it, the server
// refuses to start with it, and the matrix tests fail.
func RouteRule(method, pattern string) (Rule, bool) {
	r, ok := routes[method+" "+pattern]
	return r, ok
}

// RouteKeys lists "METHOD pattern" of every route that has a rule, sorted.
func RouteKeys() []string {
	return slices.Sorted(maps.Keys(routes))
}

// routes maps "METHOD pattern" (chi's pattern, from the root) to its rule.
// It is read only through RouteRule and RouteKeys: nothing changes it
// after start.
var routes = map[string]Rule{
	// sessions and the caller itself
	"POST /api/v1/session":            {Public, ScopeNone}, // log in (rate-limited)
	"GET /api/v1/session":             {Authenticated, ScopeNone},
	"DELETE /api/v1/session":          {Authenticated, ScopeNone},
	"POST /api/v1/session/logout-all": {Authenticated, ScopeNone},

	// administration
	"GET /api/v1/users":                    {UsersManage, ScopeNone},
	"POST /api/v1/users":                   {UsersManage, ScopeNone},
	"PUT /api/v1/users/{id}/events/{slug}": {UsersManage, ScopeNone},
	"POST /api/v1/users/{id}/disable":      {UsersManage, ScopeNone},
	"GET /api/v1/tokens":                   {TokensManage, ScopeNone},
	"POST /api/v1/tokens":                  {TokensManage, ScopeNone},
	"DELETE /api/v1/tokens/{id}":           {TokensManage, ScopeNone},
	"GET /api/v1/audit":                    {AuditRead, ScopeNone},

	// declarations (declarations/api.go)
	"POST /api/v1/declarations":                 {DeclDeclare, ScopeTerritory},
	"GET /api/v1/declarations":                  {DeclView, ScopeTerritory},
	"GET /api/v1/declarations/{id}":             {DeclView, ScopeTerritory},
	"POST /api/v1/declarations/{id}/amendments": {DeclAmend, ScopeTerritory},
	"GET /api/v1/aggregates":                    {DeclView, ScopeTerritory},
	"GET /api/v1/export.csv":                    {DeclRead, ScopeTerritory},
	"GET /api/v1/report":                        {DeclRead, ScopeTerritory},
	"GET /api/v1/me":                            {Authenticated, ScopeNone},
	"GET /api/v1/communes/{code}/links":         {LinksManage, ScopeTerritory},
	"POST /api/v1/communes/{code}/links":        {LinksManage, ScopeTerritory},
	"DELETE /api/v1/communes/{code}/links/{id}": {LinksManage, ScopeTerritory},

	// map layers (layers/api.go)
	"POST /api/v1/layers":        {LayersWrite, ScopeTerritory},
	"GET /api/v1/layers":         {LayersRead, ScopeTerritory},
	"GET /api/v1/layers/{id}":    {LayersRead, ScopeTerritory},
	"DELETE /api/v1/layers/{id}": {LayersWrite, ScopeTerritory},

	// events and the main courante (mainlog/api.go)
	"POST /api/v1/events":                           {EventsCreate, ScopeNone},
	"GET /api/v1/events":                            {EventsList, ScopeNone},
	"GET /api/v1/events/{slug}":                     {LogRead, ScopeEvent},
	"POST /api/v1/events/{slug}/events":             {LogManage, ScopeEvent},
	"POST /api/v1/events/{slug}/links":              {LinksManage, ScopeEvent},
	"GET /api/v1/events/{slug}/log":                 {LogRead, ScopeEvent},
	"POST /api/v1/events/{slug}/log":                {LogWrite, ScopeEvent},
	"GET /api/v1/events/{slug}/log.csv":             {LogRead, ScopeEvent},
	"GET /api/v1/events/{slug}/log/{id}":            {LogRead, ScopeEvent},
	"GET /api/v1/events/{slug}/log/{id}/attachment": {LogRead, ScopeEvent},
	"GET /api/v1/events/{slug}/board":               {LogRead, ScopeEvent},
	"PUT /api/v1/events/{slug}/board":               {LogManage, ScopeEvent},
	"GET /api/v1/events/{slug}/board/history":       {LogRead, ScopeEvent},
	"GET /api/v1/events/{slug}/tags":                {LogRead, ScopeEvent},
	"PUT /api/v1/events/{slug}/tags":                {LogManage, ScopeEvent},
	"GET /api/v1/events/{slug}/guest-links":         {LinksManage, ScopeEvent},
	"POST /api/v1/events/{slug}/guest-links":        {LinksManage, ScopeEvent},
	"DELETE /api/v1/events/{slug}/guest-links/{id}": {LinksManage, ScopeEvent},

	// The main courante is append-only: these answer 405 with why (a
	// reader learns the log cannot be changed; others get 401 or 403).
	"DELETE /api/v1/events/{slug}/log":                 {LogRead, ScopeEvent},
	"PUT /api/v1/events/{slug}/log":                    {LogRead, ScopeEvent},
	"PATCH /api/v1/events/{slug}/log":                  {LogRead, ScopeEvent},
	"DELETE /api/v1/events/{slug}/log/{id}":            {LogRead, ScopeEvent},
	"PUT /api/v1/events/{slug}/log/{id}":               {LogRead, ScopeEvent},
	"PATCH /api/v1/events/{slug}/log/{id}":             {LogRead, ScopeEvent},
	"POST /api/v1/events/{slug}/log/{id}":              {LogRead, ScopeEvent},
	"DELETE /api/v1/events/{slug}/log/{id}/attachment": {LogRead, ScopeEvent},
	"PUT /api/v1/events/{slug}/log/{id}/attachment":    {LogRead, ScopeEvent},
	"PATCH /api/v1/events/{slug}/log/{id}/attachment":  {LogRead, ScopeEvent},
	"POST /api/v1/events/{slug}/log/{id}/attachment":   {LogRead, ScopeEvent},
}

// MessageAction is the action of a WebSocket message a client sends, by
// its key: the type, or "type:topic" for subscribe, unsubscribe and
// resync. A key without an action is refused by the socket.
func MessageAction(key string) (Action, bool) {
	a, ok := messages[key]
	return a, ok
}

// MessageKeys lists every message key that has an action, sorted.
func MessageKeys() []string {
	return slices.Sorted(maps.Keys(messages))
}

// messages maps each WebSocket message key to its action in the socket's
// room. join is decided once its credential is known. Read only through
// MessageAction and MessageKeys.
var messages = map[string]Action{
	"join":            RoomJoin,
	"resume":          Public, // the resume token proves an earlier join; revocation ends the seat
	"leave":           RoomSignal,
	"offer":           RoomSignal,
	"answer":          RoomSignal,
	"candidate":       RoomSignal,
	"sfu":             RoomSignal, // a watch-only member's SFU attachment only receives
	"state":           RoomSignal,
	"chat":            RoomChat,
	"presenter":       RoomPresent,
	"map-view":        RoomPresent,
	"annotate":        RoomAnnotate,
	"admit":           RoomAdmit,
	"mode":            RoomMode,
	"subscribe:map":   MapWatch,
	"unsubscribe:map": MapWatch,
	"resync:map":      MapWatch,
	"subscribe:log":   LogRead,
	"unsubscribe:log": LogRead,
	"resync:log":      LogRead,
}
