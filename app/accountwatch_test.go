package app

import (
	"context"
	"testing"
	"time"

	"crisisroom/access"
	"crisisroom/protocol"
)

// TestAccountChangesBehindTheServer: what the terminal does (`admin
// disable`, `admin passwd`, `admin member`) writes the store only; the
// server's check closes the sockets it concerns and no others. One
// scenario waits for the real period; the others run one round.
func TestAccountChangesBehindTheServer(t *testing.T) {
	a, srv := startApp(t, mapConfig(t, false))
	ctx := context.Background()
	st := a.be.Store.Access()
	carol := staff(t, a, "carol", "correct horse battery", false, MainRoom, access.Operator)
	_, carolWS := seated(t, srv.URL, "carol")

	// Nothing changed: a round closes nothing.
	a.checkAccounts(ctx)
	wsAlive(t, carolWS)

	// admin member: a role lowered in the store alone.
	dave := staff(t, a, "dave", "correct horse battery", false, MainRoom, access.Operator)
	_, daveWS := seated(t, srv.URL, "dave")
	if err := st.SetMembership(ctx, access.Membership{UserID: dave.ID, Event: MainRoom, Role: access.Observer}); err != nil {
		t.Fatal(err)
	}
	a.checkAccounts(ctx)
	if code := wsCloseCode(t, daveWS, time.Second); code != protocol.CloseRevoked {
		t.Fatalf("lowered in the store: closed with %d, want %d", code, protocol.CloseRevoked)
	}

	// admin passwd: every session deleted; a login made after it stays.
	erin := staff(t, a, "erin", "correct horse battery", false, MainRoom, access.Participant)
	_, oldWS := seated(t, srv.URL, "erin")
	if _, err := st.DeleteUserSessions(ctx, erin.ID); err != nil {
		t.Fatal(err)
	}
	_, newWS := seated(t, srv.URL, "erin")
	a.checkAccounts(ctx)
	if code := wsCloseCode(t, oldWS, time.Second); code != protocol.CloseRevoked {
		t.Fatalf("session deleted in the store: closed with %d, want %d", code, protocol.CloseRevoked)
	}
	wsAlive(t, newWS)

	// admin disable, left to the watcher's own period.
	if _, err := DisableAccount(ctx, st, carol.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if code := wsCloseCode(t, carolWS, revocationCheck+2*time.Second); code != protocol.CloseRevoked {
		t.Fatalf("disabled in the store: closed with %d, want %d", code, protocol.CloseRevoked)
	}
	t.Logf("disabled behind the server's back: socket closed after %v (period %v)", time.Since(start).Round(time.Millisecond), revocationCheck)
	wsAlive(t, newWS)
}
