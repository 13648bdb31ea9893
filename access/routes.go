package access

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

// Routes maps "METHOD pattern" (chi's pattern, from the root) to its rule.
// A route the server registers without an entry here is refused with 500
// at run time and fails the authorization matrix test: nobody can add a
// route and forget to decide who may call it.
var Routes = map[string]Rule{
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
	"GET /api/v1/events/{slug}/":                    {LogRead, ScopeEvent},
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
}

// appendOnly are the methods the main courante answers 405 on its entries:
// a reader learns the log cannot be changed; anyone else gets 401 or 403
// like on any other route.
var appendOnly = map[string][]string{
	"/api/v1/events/{slug}/log":                 {"DELETE", "PUT", "PATCH"},
	"/api/v1/events/{slug}/log/{id}":            {"DELETE", "PUT", "PATCH", "POST"},
	"/api/v1/events/{slug}/log/{id}/attachment": {"DELETE", "PUT", "PATCH", "POST"},
}

func init() {
	for pattern, methods := range appendOnly {
		for _, m := range methods {
			Routes[m+" "+pattern] = Rule{LogRead, ScopeEvent}
		}
	}
}

// Messages maps each WebSocket message type a client may send (for
// subscribe, unsubscribe and resync: "type:topic") to its action in the
// socket's room. join is decided once its credential is known.
var Messages = map[string]Action{
	"join":            RoomJoin,
	"resume":          Public, // the resume token proves an earlier join; revocation ends the seat
	"leave":           RoomSignal,
	"offer":           RoomSignal,
	"answer":          RoomSignal,
	"candidate":       RoomSignal,
	"state":           RoomSignal,
	"chat":            RoomChat,
	"presenter":       RoomPresent,
	"map-view":        RoomPresent,
	"annotate":        RoomAnnotate,
	"admit":           RoomAdmit,
	"subscribe:map":   MapWatch,
	"unsubscribe:map": MapWatch,
	"resync:map":      MapWatch,
	"subscribe:log":   LogRead,
	"unsubscribe:log": LogRead,
	"resync:log":      LogRead,
}
