// Package declarationstest is the conformance suite every
// declarations.Store must pass.
package declarationstest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"crisisroom/declarations"
)

// Run runs the suite; newStore returns a fresh, empty store per subtest.
func Run(t *testing.T, newStore func(t *testing.T) declarations.Store) {
	ctx := context.Background()
	at := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	decl := func(id, declarant, key, commune string, count int) declarations.Declaration {
		return declarations.Declaration{ID: id, Commune: commune, Date: "2026-11-25", Place: "ehpad", Count: count,
			IdempotencyKey: key, Declarant: declarant, DeclarantLabel: "mairie", CreatedAt: at, Revision: 1}
	}
	insert := func(t *testing.T, st declarations.Store, ds ...declarations.Declaration) []declarations.OpResult {
		t.Helper()
		ops := make([]declarations.Op, len(ds))
		for i := range ds {
			ops[i] = declarations.Op{Insert: &ds[i]}
		}
		res, err := st.Apply(ctx, ops)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	t.Run("InsertThenRead", func(t *testing.T) {
		st := newStore(t)
		res := insert(t, st, decl("d1", "link1", "key-00001", "56121", 2))
		if res[0].Existed || res[0].Err != nil || res[0].Version != 1 {
			t.Fatalf("result = %+v", res[0])
		}
		got, err := st.Declaration(ctx, "d1")
		if err != nil || got != decl("d1", "link1", "key-00001", "56121", 2) {
			t.Fatalf("read back %+v, %v", got, err)
		}
		if _, err := st.Declaration(ctx, "nope"); !errors.Is(err, declarations.ErrNotFound) {
			t.Fatalf("unknown id: %v", err)
		}
		revs, err := st.Revisions(ctx, "d1")
		if err != nil || len(revs) != 1 || revs[0].Count != 2 || revs[0].Actor != "link1" {
			t.Fatalf("revisions = %+v, %v", revs, err)
		}
	})

	t.Run("SameKeySameDeclarantIsOneDeclaration", func(t *testing.T) {
		st := newStore(t)
		// Twice in one batch and once more in another: one row, one count.
		res := insert(t, st, decl("d1", "link1", "key-00001", "56121", 2), decl("d2", "link1", "key-00001", "56121", 5))
		if res[0].Existed || !res[1].Existed || res[1].Decl.ID != "d1" || res[1].Decl.Count != 2 {
			t.Fatalf("in-batch duplicate: %+v", res)
		}
		res = insert(t, st, decl("d3", "link1", "key-00001", "56121", 7))
		if !res[0].Existed || res[0].Decl.ID != "d1" {
			t.Fatalf("later duplicate: %+v", res[0])
		}
		// Another declarant may use the same key string: keys are per declarant.
		res = insert(t, st, decl("d4", "link2", "key-00001", "56121", 1))
		if res[0].Existed {
			t.Fatal("key collided across declarants")
		}
		cells, versions, err := st.Counts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(cells) != 1 || cells[0].Count != 3 || versions["56121"] != 2 {
			t.Fatalf("cells = %+v versions = %v, want one cell of 3 and version 2", cells, versions)
		}
	})

	t.Run("AmendKeepsAuditTrail", func(t *testing.T) {
		st := newStore(t)
		insert(t, st, decl("d1", "link1", "key-00001", "56121", 2))
		n, place := 5, "hopital"
		op := declarations.AmendOp{ID: "d1", Actor: declarations.Actor{ID: "op1", Label: "préfecture", Operator: true},
			Amendment: declarations.Amendment{Count: &n, Place: &place, Reason: "erreur de saisie"}, At: at.Add(time.Hour)}
		res, err := st.Apply(ctx, []declarations.Op{{Amend: &op}})
		if err != nil || res[0].Err != nil {
			t.Fatalf("amend: %v %v", err, res[0].Err)
		}
		if res[0].Decl.Count != 5 || res[0].Decl.Place != "hopital" || res[0].Decl.Revision != 2 || res[0].Previous == nil ||
			res[0].Previous.Count != 2 || res[0].Version != 2 {
			t.Fatalf("amend result %+v", res[0])
		}
		revs, _ := st.Revisions(ctx, "d1")
		if len(revs) != 2 || revs[0].Count != 2 || revs[0].Place != "ehpad" || revs[1].Count != 5 ||
			revs[1].Reason != "erreur de saisie" || revs[1].Actor != "op1" || !revs[1].At.Equal(at.Add(time.Hour)) {
			t.Fatalf("audit trail %+v", revs)
		}
		cells, _, _ := st.Counts(ctx)
		if len(cells) != 1 || cells[0].Place != "hopital" || cells[0].Count != 5 {
			t.Fatalf("aggregates ignore the amendment: %+v", cells)
		}
	})

	t.Run("AuditTrailAcrossAmendments", func(t *testing.T) {
		st := newStore(t)
		insert(t, st, decl("d1", "link1", "key-00001", "56121", 2), decl("d2", "link1", "key-00002", "56121", 4))
		for i, n := range []int{3, 1} {
			op := declarations.AmendOp{ID: "d1", Actor: declarations.Actor{ID: "link1", Label: "mairie", Commune: "56121"},
				Amendment: declarations.Amendment{Count: &n, Reason: fmt.Sprint("correction ", i+1)}, At: at.Add(time.Duration(i+1) * time.Hour)}
			if res, err := st.Apply(ctx, []declarations.Op{{Amend: &op}}); err != nil || res[0].Err != nil {
				t.Fatalf("amend %d: %v %v", i+1, err, res[0].Err)
			}
		}
		// Revision 1 keeps the values as received whatever the amendments:
		// Service.checkRetry tells a retry from a reused key by it.
		revs, err := st.Revisions(ctx, "d1")
		if err != nil || len(revs) != 3 {
			t.Fatalf("revisions = %+v, %v", revs, err)
		}
		first := declarations.Revision{DeclarationID: "d1", Revision: 1, Date: "2026-11-25", Place: "ehpad", Count: 2,
			Reason: "déclaration", Actor: "link1", ActorLabel: "mairie", At: at}
		if revs[0] != first || revs[1].Revision != 2 || revs[1].Count != 3 || revs[2].Revision != 3 || revs[2].Count != 1 ||
			revs[2].Reason != "correction 2" || !revs[2].At.Equal(at.Add(2*time.Hour)) {
			t.Fatalf("audit trail %+v", revs)
		}
		// The declaration beside it, never amended, still has its revision 1.
		if revs, err := st.Revisions(ctx, "d2"); err != nil || len(revs) != 1 || revs[0].Count != 4 || revs[0].Revision != 1 {
			t.Fatalf("unamended revisions = %+v, %v", revs, err)
		}
		if revs, err := st.Revisions(ctx, "nope"); err != nil || len(revs) != 0 {
			t.Fatalf("unknown declaration's revisions = %+v, %v", revs, err)
		}
	})

	t.Run("AmendRules", func(t *testing.T) {
		st := newStore(t)
		insert(t, st, decl("d1", "link1", "key-00001", "56121", 2))
		zero := 0
		other := declarations.AmendOp{ID: "d1", Actor: declarations.Actor{ID: "link9", Commune: "56003"},
			Amendment: declarations.Amendment{Count: &zero, Reason: "x"}, At: at}
		own := declarations.AmendOp{ID: "d1", Actor: declarations.Actor{ID: "link1", Commune: "56121"},
			Amendment: declarations.Amendment{Count: &zero, Reason: "doublon"}, At: at}
		missing := declarations.AmendOp{ID: "nope", Actor: declarations.Actor{ID: "op", Operator: true},
			Amendment: declarations.Amendment{Count: &zero, Reason: "x"}, At: at}
		res, err := st.Apply(ctx, []declarations.Op{{Amend: &other}, {Amend: &missing}, {Amend: &own}})
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(res[0].Err, declarations.ErrForbidden) || !errors.Is(res[1].Err, declarations.ErrNotFound) || res[2].Err != nil {
			t.Fatalf("results %v / %v / %v", res[0].Err, res[1].Err, res[2].Err)
		}
		cells, _, _ := st.Counts(ctx)
		if len(cells) != 1 || cells[0].Count != 0 {
			t.Fatalf("cancelled declaration still counts: %+v", cells)
		}
	})

	t.Run("VersionsIncreasePerCommune", func(t *testing.T) {
		st := newStore(t)
		var last int64
		for i := 0; i < 5; i++ {
			res := insert(t, st, decl(fmt.Sprint("a", i), "l", fmt.Sprint("key-a-", i), "56121", 1),
				decl(fmt.Sprint("b", i), "l", fmt.Sprint("key-b-", i), "56003", 1))
			if res[0].Version <= last {
				t.Fatalf("version %d after %d", res[0].Version, last)
			}
			last = res[0].Version
		}
		_, versions, _ := st.Counts(ctx)
		if versions["56121"] != 5 || versions["56003"] != 5 {
			t.Fatalf("versions %v", versions)
		}
		list, err := st.Declarations(ctx, "56003")
		if err != nil || len(list) != 5 {
			t.Fatalf("commune list: %d, %v", len(list), err)
		}
		all, _ := st.Declarations(ctx, "")
		if len(all) != 10 {
			t.Fatalf("all: %d", len(all))
		}
	})

	t.Run("FailedBatchStoresNothing", func(t *testing.T) {
		st := newStore(t)
		good := decl("d1", "l", "key-00001", "56121", 1)
		dupID := decl("d1", "l", "key-00002", "56121", 1) // same primary key: the store must fail
		if _, err := st.Apply(ctx, []declarations.Op{{Insert: &good}, {Insert: &dupID}}); err == nil {
			t.Fatal("batch with a conflicting id succeeded")
		}
		cells, versions, _ := st.Counts(ctx)
		if len(cells) != 0 || len(versions) != 0 {
			t.Fatalf("half a batch was stored: %+v %v", cells, versions)
		}
	})
}
