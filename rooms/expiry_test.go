package rooms_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"crisisroom/protocol"
	"crisisroom/rooms"
)

// TestLinkExpiryEndsTheSeat: a member who came through a link leaves the
// room when the link expires (error token_expired, close 4501, the others
// see it leave), whether its socket is there or away in the resume window;
// a member of a longer link stays.
func TestLinkExpiryEndsTheSeat(t *testing.T) {
	fx := newFixture(t, rooms.Config{ResumeWindow: time.Minute})
	short := func() string {
		plain, _, err := rooms.CreateLink(context.Background(), fx.st, "main", rooms.RoleParticipant, "until soon", 400*time.Millisecond, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return plain
	}
	_, _, pb := fx.join(t, "main", "B") // an hour's link
	pa := newFakePeer()
	a, _, err := fx.m.Join(context.Background(), short(), "A", "j-A", pa)
	if err != nil {
		t.Fatal(err)
	}
	pc := newFakePeer()
	c, joinedC, err := fx.m.Join(context.Background(), short(), "C", "j-C", pc)
	if err != nil {
		t.Fatal(err)
	}
	c.Detach(pc) // C's socket is away when its link expires
	pa.take()
	pb.take()

	select {
	case <-pa.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("A's seat outlived its link by 5 s")
	}
	if code := pa.closeCode(); code != protocol.CloseTokenExpired {
		t.Fatalf("A closed with %d, want %d", code, protocol.CloseTokenExpired)
	}
	var e protocol.Error
	decode(t, pa.next(t), protocol.TypeError, &e)
	if e.Code != protocol.ErrTokenExpired {
		t.Fatalf("A's last error %+v, want token_expired", e)
	}
	left := map[string]bool{}
	for len(left) < 2 {
		var l protocol.PeerLeft
		decode(t, pb.next(t), protocol.TypePeerLeft, &l)
		left[l.ID] = true
	}
	if !left[a.ID] || !left[c.ID] {
		t.Fatalf("B saw %v leave, want A %s and C %s", left, a.ID, c.ID)
	}
	if ms := fx.m.Members("main"); len(ms) != 1 || ms[0].Name != "B" {
		t.Fatalf("members %+v, want B alone", ms)
	}
	if _, _, err := fx.m.Resume(joinedC.ResumeToken, "", newFakePeer()); !errors.Is(err, rooms.ErrSessionGone) {
		t.Fatalf("C's resume after its link expired: %v, want ErrSessionGone", err)
	}
	if pb.closeCode() != 0 {
		t.Fatal("B, of a link still valid, was closed")
	}
}

// TestUnheardRevocationEndsTheSeat: a link revoked in the store by
// someone who did not tell this instance (a command-line tool, a lost bus
// message) still ends its seat at the next check; a member of another
// link stays.
func TestUnheardRevocationEndsTheSeat(t *testing.T) {
	fx := newFixture(t, rooms.Config{ResumeWindow: time.Minute})
	_, _, pb := fx.join(t, "main", "B")
	plain, l, err := rooms.CreateLink(context.Background(), fx.st, "main", rooms.RoleParticipant, "leaked", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pa := newFakePeer()
	if _, _, err := fx.m.Join(context.Background(), plain, "A", "j-A", pa); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go fx.m.WatchRevocations(ctx, 50*time.Millisecond)
	time.Sleep(150 * time.Millisecond) // a few checks with nothing revoked: nobody leaves
	if pa.closeCode() != 0 || pb.closeCode() != 0 {
		t.Fatal("a check closed a live member")
	}
	if err := fx.st.RevokeLink(context.Background(), l.ID, time.Now()); err != nil { // behind the manager's back
		t.Fatal(err)
	}
	select {
	case <-pa.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("A's seat outlived its link's revocation in the store by 5 s")
	}
	if code := pa.closeCode(); code != protocol.CloseRevoked {
		t.Fatalf("A closed with %d, want %d", code, protocol.CloseRevoked)
	}
	if ms := fx.m.Members("main"); len(ms) != 1 || ms[0].Name != "B" || pb.closeCode() != 0 {
		t.Fatalf("members %+v, want B alone and open", ms)
	}
}
