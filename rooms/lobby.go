package rooms

// The lobby: a guest whose link has one waits, without a seat, until a
// member who may admit (Entry.Admitter) lets it in or refuses it. A
// waiting guest gets "lobby" and nothing of the room: no members, no
// resume token, no map. Its link's use is counted and its seat given only
// on admission, so the lobby cannot be bypassed by replaying anything.
//
// In cluster mode each instance keeps its own waiters and announces its
// lobby of a room whenever it changes (and in its beats); admitters
// everywhere see the lobbies of every instance merged, and an admission
// of a guest waiting elsewhere is announced to the instance that holds it.

import (
	"context"
	"errors"
	"sort"
	"time"

	"crisisroom/protocol"
)

// MaxLobby bounds the guests waiting in one room's lobby on one instance:
// a leaked link must not let anyone flood the hosts' list.
const MaxLobby = 50

// ErrNoWaiter: no guest with that id waits in the member's room.
var ErrNoWaiter = errors.New("no such guest in the lobby")

// ErrLobbyFull: the room's lobby has MaxLobby guests already.
var ErrLobbyFull = errors.New("the lobby is full")

type waitState uint8

const (
	waitWaiting   waitState = iota // in the room's lobby
	waitAdmitting                  // taken out of the lobby by an admission in progress
	waitSeated                     // admitted: member is its seat
	waitGone                       // left, refused or kicked
)

// Waiter is a guest in a room's lobby. Its fields are guarded by the
// Manager's lock.
type Waiter struct {
	ID    string
	Name  string
	Room  string
	Since time.Time

	m      *Manager
	e      Entry
	state  waitState
	member *Member
}

// Member returns the seat the guest was given on admission, nil while it
// waits (or after it has gone).
func (w *Waiter) Member() *Member {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	if w.state == waitSeated {
		return w.member
	}
	return nil
}

// End is called when the guest's socket ends or it leaves the lobby: it
// disappears from the list. If it was admitted meanwhile, End returns its
// seat, which the caller then treats like any member's.
func (w *Waiter) End() *Member {
	m := w.m
	m.mu.Lock()
	defer m.mu.Unlock()
	switch w.state {
	case waitSeated:
		return w.member
	case waitWaiting:
		if r := m.rooms[w.Room]; r != nil {
			delete(r.lobby, w.ID)
			m.lobbyChangedLocked(r)
		}
	}
	w.state = waitGone
	return nil
}

// seatedLocked records that the waiter (if any) got mem.
func (w *Waiter) seatedLocked(mem *Member) {
	if w == nil {
		return
	}
	if w.state == waitGone { // left while its seat was on its way (cluster)
		w.m.removeLocked(mem)
		return
	}
	w.state, w.member = waitSeated, mem
}

func (w *Waiter) entryLocked() protocol.LobbyEntry {
	return protocol.LobbyEntry{ID: w.ID, Name: w.Name, Since: w.Since.UnixMilli(), WatchOnly: w.e.WatchOnly, Label: w.e.Link.Label}
}

// wait puts e in its room's lobby and tells it so.
func (m *Manager) wait(e Entry) (*Waiter, error) {
	w := &Waiter{ID: newID(), Name: e.Name, Room: e.Room, Since: m.cfg.Now(), m: m, e: e}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.revokedLocked(e.Principal) {
		return nil, ErrRevoked
	}
	r := m.roomLocked(e.Room)
	if len(r.lobby) >= MaxLobby {
		return nil, ErrLobbyFull
	}
	if r.lobby == nil {
		r.lobby = map[string]*Waiter{}
	}
	r.lobby[w.ID] = w
	e.Peer.Send(Frame{Data: protocol.Encode(protocol.TypeLobby, e.ReqID, protocol.Lobby{State: protocol.LobbyWaiting})})
	m.lobbyChangedLocked(r)
	m.log.Info("guest waiting in the lobby", "room", r.name, "waiter", w.ID, "link", e.Link.ID)
	return w, nil
}

// localLobbyLocked lists this instance's waiters of r, oldest first.
func (r *room) localLobbyLocked() []protocol.LobbyEntry {
	out := make([]protocol.LobbyEntry, 0, len(r.lobby))
	for _, w := range r.lobby {
		out = append(out, w.entryLocked())
	}
	sortLobby(out)
	return out
}

func sortLobby(l []protocol.LobbyEntry) {
	sort.Slice(l, func(i, j int) bool {
		if l[i].Since != l[j].Since {
			return l[i].Since < l[j].Since
		}
		return l[i].ID < l[j].ID
	})
}

// lobbyFrameLocked is the room's whole lobby, every instance's, as the
// latest-wins frame admitters get.
func (m *Manager) lobbyFrameLocked(r *room) Frame {
	list := r.localLobbyLocked()
	if m.cl != nil {
		for _, rem := range m.cl.remotes {
			list = append(list, rem.lobby[r.name]...)
		}
		sortLobby(list)
	}
	return Frame{Data: protocol.Encode(protocol.TypeLobbyList, "", protocol.LobbyList{Waiting: list}), Coalesce: "lobby-list"}
}

// lobbyWaitingLocked tells whether anyone waits in r's lobby, here or on
// another instance.
func (m *Manager) lobbyWaitingLocked(r *room) bool {
	if len(r.lobby) > 0 {
		return true
	}
	if m.cl != nil {
		for _, rem := range m.cl.remotes {
			if len(rem.lobby[r.name]) > 0 {
				return true
			}
		}
	}
	return false
}

// lobbyChangedLocked tells the other instances about this one's lobby of
// r and sends the whole lobby to r's admitters here.
func (m *Manager) lobbyChangedLocked(r *room) {
	m.announceLocked(event{Kind: evLobby, Room: r.name, Lobby: r.localLobbyLocked()})
	m.sendLobbyLocked(r)
}

// sendLobbyLocked sends the whole lobby to the admitters seated here.
func (m *Manager) sendLobbyLocked(r *room) {
	var f Frame
	for _, o := range r.members {
		if o.admitter && o.inst == "" && o.peer != nil {
			if f.Data == nil {
				f = m.lobbyFrameLocked(r)
			}
			o.peer.Send(f)
		}
	}
}

// Admit lets the guest id in (allow) or refuses it, as the member decided
// (the caller checked access.RoomAdmit). ErrNoWaiter if no guest id
// waits in the room; ErrRoomFull (the guest keeps waiting) if the room has
// no place. Once the guest is out of the lobby, what goes wrong is told
// to it (and returned): the link used up, expired or revoked meanwhile.
// A guest waiting on another instance is admitted there: nil here.
func (mem *Member) Admit(ctx context.Context, id string, allow bool) error {
	m := mem.m
	m.mu.Lock()
	if mem.gone {
		m.mu.Unlock()
		return ErrLeft
	}
	r := m.rooms[mem.Room]
	w := r.lobby[id]
	if w == nil {
		found := m.remoteWaiterLocked(r.name, id)
		if found {
			m.announceLocked(event{Kind: evAdmit, Room: r.name, ID: id, Allow: allow, By: mem.Name})
		}
		m.mu.Unlock()
		if !found {
			return ErrNoWaiter
		}
		return nil
	}
	if allow && m.fullLocked(r, w.e.WatchOnly, w.e.Admitter) {
		m.mu.Unlock()
		return ErrRoomFull
	}
	delete(r.lobby, id)
	w.state = waitAdmitting
	m.lobbyChangedLocked(r)
	m.mu.Unlock()
	return m.decide(ctx, w, allow, mem.Name)
}

// remoteWaiterLocked tells whether another instance lists guest id in the
// lobby of room.
func (m *Manager) remoteWaiterLocked(room, id string) bool {
	if m.cl == nil {
		return false
	}
	for _, rem := range m.cl.remotes {
		for _, e := range rem.lobby[room] {
			if e.ID == id {
				return true
			}
		}
	}
	return false
}

// decide carries out an admission or refusal of w, already out of the
// lobby (waitAdmitting).
func (m *Manager) decide(ctx context.Context, w *Waiter, allow bool, by string) error {
	e := w.e
	if !allow {
		if m.endWaiter(w, ErrRefusedByHost) {
			m.admission(e, by, false)
		}
		return nil
	}
	if _, err := m.store.UseLink(ctx, e.Link.ID, m.cfg.Now()); err != nil {
		err = linkErr(err)
		if _, _, _, refusal := Refusal(err); !refusal {
			// The store failed: the guest waits on, the host may retry.
			m.mu.Lock()
			if w.state == waitAdmitting {
				w.state = waitWaiting
				r := m.roomLocked(w.Room)
				r.lobby[w.ID] = w
				m.lobbyChangedLocked(r)
			}
			m.mu.Unlock()
			return err
		}
		m.endWaiter(w, err)
		return err
	}
	_, err := m.seat(ctx, e, w)
	switch {
	case err == nil:
		m.admission(e, by, true)
		return nil
	case errors.Is(err, ErrLeft): // it left while being admitted
		return nil
	}
	m.endWaiter(w, err)
	return err
}

// ErrRefusedByHost is what a refused guest is told.
var ErrRefusedByHost = errors.New("entry refused by the host")

// endWaiter tells the guest why it will not be seated (err, in its join's
// answer) and closes its socket with a final code. It reports false if
// the guest had gone already.
func (m *Manager) endWaiter(w *Waiter, err error) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if w.state == waitGone || w.state == waitSeated {
		return false
	}
	if w.state == waitWaiting {
		if r := m.rooms[w.Room]; r != nil {
			delete(r.lobby, w.ID)
			m.lobbyChangedLocked(r)
		}
	}
	w.state = waitGone
	Refuse(w.e.Peer, w.e.ReqID, err)
	return true
}

// Refuse answers a request with err's wire error and closes with its code;
// it tells whether err was a refusal (else a failure the client retries).
func Refuse(p Peer, ref string, err error) (refusal bool) {
	code, closeCode, msg, refusal := Refusal(err)
	p.Send(Frame{Data: protocol.Encode(protocol.TypeError, ref, protocol.Error{Code: code, Message: msg, Ref: ref})})
	p.Close(closeCode, msg)
	return refusal
}

func (m *Manager) admission(e Entry, by string, admitted bool) {
	m.log.Info("lobby decision", "room", e.Room, "guest", e.Name, "link", e.Link.ID, "by", by, "admitted", admitted)
	if m.cfg.OnAdmission != nil {
		m.cfg.OnAdmission(e.Room, e.Name, e.Link.ID, by, admitted)
	}
}

// admitRemoteLocked carries out an admission announced by another
// instance for a guest waiting here. It runs the decision on a goroutine
// of its own: seating waits for the cluster link, whose receiving loop
// called this.
func (m *Manager) admitRemoteLocked(e event) {
	r := m.rooms[e.Room]
	if r == nil {
		return
	}
	w := r.lobby[e.ID]
	if w == nil {
		return
	}
	delete(r.lobby, e.ID)
	w.state = waitAdmitting
	m.lobbyChangedLocked(r)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.decide(ctx, w, e.Allow, e.By); err != nil {
			m.log.Info("admission from another instance failed", "room", e.Room, "waiter", e.ID, "err", err)
		}
	}()
}

// remoteLobbyLocked records another instance's lobby of a room and shows
// the change to the admitters here.
func (m *Manager) remoteLobbyLocked(rem *remote, room string, list []protocol.LobbyEntry) {
	if len(list) == 0 && len(rem.lobby[room]) == 0 {
		return
	}
	if len(list) == 0 {
		delete(rem.lobby, room)
	} else {
		rem.lobby[room] = list
	}
	if r := m.rooms[room]; r != nil {
		m.sendLobbyLocked(r)
	}
}

// Refusal is how an entry refused with err is told to the client: the
// wire error code, the close code and a message. refusal is false for an
// error that is not a refusal (the store failed): the client is told to
// retry.
func Refusal(err error) (code string, closeCode int, msg string, refusal bool) {
	switch {
	case errors.Is(err, ErrTokenExpired):
		return protocol.ErrTokenExpired, protocol.CloseTokenExpired, "this link has expired", true
	case errors.Is(err, ErrLinkUsedUp):
		return protocol.ErrLinkUsedUp, protocol.CloseBadToken, "this link has been used as many times as it allows", true
	case errors.Is(err, ErrRoomFull):
		return protocol.ErrRoomFull, protocol.CloseRoomFull, "the room is full", true
	case errors.Is(err, ErrLobbyFull):
		return protocol.ErrRoomFull, protocol.CloseRoomFull, "too many guests are waiting in the lobby", true
	case errors.Is(err, ErrSessionGone):
		return protocol.ErrResumeFailed, protocol.CloseSessionGone, "session expired; join again", true
	case errors.Is(err, ErrTokenInvalid), errors.Is(err, ErrWrongScope), errors.Is(err, ErrLobby):
		return protocol.ErrBadToken, protocol.CloseBadToken, "this link is not valid (unknown or revoked)", true
	case errors.Is(err, ErrUnknownRoom):
		return protocol.ErrNotFound, protocol.CloseBadToken, "no such room", true
	case errors.Is(err, ErrRevoked):
		return protocol.ErrRevoked, protocol.CloseRevoked, "access revoked", true
	case errors.Is(err, ErrRefusedByHost):
		return protocol.ErrRefused, protocol.CloseRefused, "the host did not let you in", true
	}
	return protocol.ErrInternal, protocol.CloseShutdown, "temporary server error; retrying", false
}
