// Package access decides who may do what. Every HTTP route under /api/v1
// and every WebSocket message type maps to one Action (routes.go); one
// function, Decide, says whether a Principal may perform an Action in an
// event. Handlers never look at roles themselves: they ask Decide, or they
// are behind a middleware that did.
//
// The package is a leaf: it knows roles, actions and credentials, not
// HTTP frameworks, rooms or stores, so that app, signaling and the domain
// packages can all depend on it.
package access

import (
	"encoding/hex"
	"errors"
	"slices"
)

// Role is what a principal is in an event.
type Role string

// The roles, from most to least powerful.
const (
	Admin       Role = "admin"       // every event, users, tokens, audit
	Operator    Role = "operator"    // prefecture staff: runs the event (links, board, amendments, exports)
	Participant Role = "participant" // a member of the cell: room, map, log
	Guest       Role = "guest"       // an outside partner: the room only, for a while
	Declarant   Role = "declarant"   // one commune's declaration link
	Observer    Role = "observer"    // read-only map and figures
)

// None is a membership that grants nothing. It is how a member of an
// event is taken out of one of its sub-events: without it, deleting the
// sub-event's membership would let the parent's role through again. It
// is not in Roles: nobody acts as "none".
const None Role = "none"

// Roles lists every role, for tables and validation.
var Roles = []Role{Admin, Operator, Participant, Guest, Declarant, Observer}

// ParseRole accepts a role name. "host" is the room links' older word for
// an operator: links minted before accounts existed keep working.
func ParseRole(s string) (Role, bool) {
	if s == "host" {
		return Operator, true
	}
	r := Role(s)
	return r, slices.Contains(Roles, r)
}

// Action is one thing a principal may be allowed to do.
type Action string

// The actions. Public needs no principal at all; Authenticated needs any
// valid one (who am I, log out).
const (
	Public        Action = "public"
	Authenticated Action = "authenticated"

	RoomJoin     Action = "room.join"     // take a seat in the event's room, receive media
	RoomSignal   Action = "room.signal"   // offers, answers, candidates, own state, leave
	RoomChat     Action = "room.chat"     // write in the room chat
	RoomSend     Action = "room.send"     // send camera and microphone (not watch-only)
	RoomPresent  Action = "room.present"  // lead the map (presenter, view)
	RoomAnnotate Action = "room.annotate" // draw on the map
	RoomAdmit    Action = "room.admit"    // admit or refuse guests waiting in the lobby
	RoomMode     Action = "room.mode"     // choose the room's media mode (mesh, SFU, automatic)

	MapWatch Action = "map.watch" // the live map's figures and annotations

	DeclView    Action = "decl.view"    // figures and declarations (a declarant: its own commune's only)
	DeclRead    Action = "decl.read"    // the whole territory's documents: morning report, CSV export
	DeclDeclare Action = "decl.declare" // declare (a declarant: for its own commune only)
	DeclAmend   Action = "decl.amend"   // amend (a declarant: its own commune's only)
	DeclAny     Action = "decl.any"     // declare and amend for any commune (not bound to one)

	LayersRead  Action = "layers.read"
	LayersWrite Action = "layers.write"

	LogRead   Action = "log.read"   // the main courante, the board, the sub-events
	LogWrite  Action = "log.write"  // write entries, promote chat messages
	LogManage Action = "log.manage" // the board, the taxonomy, sub-events and their links

	LinksManage  Action = "links.manage"  // guest and room links: create, list, revoke
	TokensManage Action = "tokens.manage" // API tokens: create, list, revoke
	UsersManage  Action = "users.manage"  // staff accounts and memberships
	AuditRead    Action = "audit.read"    // the access audit log
	EventsList   Action = "events.list"   // the events one belongs to
	EventsCreate Action = "events.create" // a new crisis event (with its room, map and log)
)

// matrix is the one table of rights. A role not listed for an action may
// not perform it. Guests and declarants come from links and never hold an
// account-wide right.
var matrix = map[Action][]Role{
	RoomJoin:     {Admin, Operator, Participant, Guest},
	RoomSignal:   {Admin, Operator, Participant, Guest},
	RoomChat:     {Admin, Operator, Participant, Guest},
	RoomSend:     {Admin, Operator, Participant, Guest},
	RoomPresent:  {Admin, Operator},
	RoomAnnotate: {Admin, Operator, Participant, Guest},
	RoomAdmit:    {Admin, Operator},
	RoomMode:     {Admin, Operator},

	MapWatch: {Admin, Operator, Participant, Guest, Observer},

	DeclView:    {Admin, Operator, Participant, Observer, Declarant},
	DeclRead:    {Admin, Operator},
	DeclDeclare: {Admin, Operator, Declarant},
	DeclAmend:   {Admin, Operator, Declarant},
	DeclAny:     {Admin, Operator},

	LayersRead:  {Admin, Operator, Participant, Observer},
	LayersWrite: {Admin, Operator},

	LogRead:   {Admin, Operator, Participant},
	LogWrite:  {Admin, Operator, Participant},
	LogManage: {Admin, Operator},

	LinksManage:  {Admin, Operator},
	TokensManage: {Admin},
	UsersManage:  {Admin},
	AuditRead:    {Admin},
	EventsList:   {Admin, Operator, Participant, Observer},
	EventsCreate: {Admin},
}

// watchOnlyDenied are the actions a watch-only guest may not take even
// though guests may: it watches and listens, it does not show or draw.
var watchOnlyDenied = []Action{RoomSend, RoomAnnotate}

// Errors of Decide: 401 and 403.
var (
	ErrUnauthenticated = errors.New("missing, unknown, expired or revoked credential")
	ErrForbidden       = errors.New("not allowed for this role")
)

// Principal is who acts, as established from a credential: a staff
// session, an API token or a link.
type Principal struct {
	Kind string // KindSession, KindToken or KindLink
	// ID is what revocation targets: the link's or token's ID, the
	// session's user for a session.
	ID     string
	UserID string // "" for a link
	Name   string // shown in audit trails and rooms
	// Global applies in every event (an admin; a token without an event).
	Global Role
	// Roles are the principal's roles by event slug. A role in an event
	// holds in its sub-events too (Scope lists the ancestors).
	Roles map[string]Role
	// Session names the one login a session principal came from
	// (SessionID of its cookie's hash), "" for the others: logging out
	// ends that login's sockets and no other's.
	Session string
	// SessionHash is the stored hash of that login's cookie, for the
	// server's own checks that the login still stands (never logged, never
	// sent to another instance).
	SessionHash []byte
	// Commune binds a declarant to one commune.
	Commune string
	// WatchOnly: a guest without camera, microphone or annotations.
	WatchOnly bool
}

// Key names a credential — its kind and id — for revocation memories,
// socket indexes and rate limits.
func Key(kind, id string) string { return kind + ":" + id }

// Key is the principal's credential's Key.
func (p *Principal) Key() string { return Key(p.Kind, p.ID) }

// Keys are every Key a kick may name the principal by: its credential's,
// and for a session its one login's (Key(KindLogin, Session)).
func (p *Principal) Keys() []string {
	if p.Kind == KindSession && p.Session != "" {
		return []string{p.Key(), Key(KindLogin, p.Session)}
	}
	return []string{p.Key()}
}

// Kinds of principal.
const (
	KindSession = "session"
	KindToken   = "token"
	KindLink    = "link"
)

// KindLogin is no principal's Kind: kicks use it to name one staff
// session (one browser's login) rather than every session of its user.
const KindLogin = "login"

// SessionID names a session by its cookie's hash: a prefix, so that what
// logs and the cluster bus carry is not the stored hash itself.
func SessionID(hash []byte) string {
	return hex.EncodeToString(hash[:min(len(hash), 12)])
}

// RoleIn is the principal's role in an event given its ancestors (nearest
// first): an administrator is one everywhere, whatever its memberships;
// otherwise a direct membership wins over one inherited from above, and
// the global role (a token's without an event) holds where there is
// neither. A None membership is no role, and it stops the ones above.
func (p *Principal) RoleIn(chain []string) (Role, bool) {
	if p == nil {
		return "", false
	}
	if p.Global == Admin {
		return Admin, true
	}
	for _, ev := range chain {
		if r, ok := p.Roles[ev]; ok {
			if r == None {
				return "", false
			}
			return r, true
		}
	}
	if p.Global != "" {
		return p.Global, true
	}
	return "", false
}

// Decide is the one authorization function. chain is the event the action
// is about followed by its ancestors; it may be empty for actions not tied
// to an event (then the principal's global role, or any of its roles for
// EventsList and Authenticated, decides).
func Decide(p *Principal, act Action, chain []string) error {
	if act == Public {
		return nil
	}
	if p == nil {
		return ErrUnauthenticated
	}
	if act == Authenticated {
		return nil
	}
	allowed, ok := matrix[act]
	if !ok {
		return ErrForbidden // an action nobody listed is nobody's
	}
	if p.WatchOnly && slices.Contains(watchOnlyDenied, act) {
		return ErrForbidden
	}
	var roles []Role
	if len(chain) > 0 {
		if r, ok := p.RoleIn(chain); ok {
			roles = append(roles, r)
		}
	} else {
		// Not tied to an event: what the principal is anywhere counts
		// for listing (the list itself is filtered by membership), only
		// the global role for the rest.
		if p.Global != "" {
			roles = append(roles, p.Global)
		}
		if act == EventsList {
			for _, r := range p.Roles {
				roles = append(roles, r)
			}
		}
	}
	for _, r := range roles {
		if slices.Contains(allowed, r) {
			return nil
		}
	}
	return ErrForbidden
}
