package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"

	"crisisroom/declarations"
	"crisisroom/declarations/declarationstest"
)

func TestDeclarationsConformance(t *testing.T) {
	declarationstest.Run(t, func(t *testing.T) declarations.Store { return open(t).Declarations() })
}

// Databases written before intake stopped storing revision 1 have it in
// declaration_revisions already: a first amendment must not add it twice
// nor fail on it.
func TestAmendKeepsAStoredRevisionOne(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	st := s.Declarations()
	at := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	d := declarations.Declaration{ID: "d1", Commune: "56121", Date: "2026-11-25", Place: "ehpad", Count: 2,
		IdempotencyKey: "key-00001", Declarant: "link1", DeclarantLabel: "mairie", CreatedAt: at, Revision: 1}
	if _, err := st.Apply(ctx, []declarations.Op{{Insert: &d}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, insertRevsSQL(1), "d1", 1, "2026-11-25", "ehpad", 2, "", "déclaration", "link1", "mairie", ms(at)); err != nil {
		t.Fatal(err)
	}
	n := 3
	op := declarations.AmendOp{ID: "d1", Actor: declarations.Actor{ID: "op", Operator: true},
		Amendment: declarations.Amendment{Count: &n, Reason: "erreur"}, At: at.Add(time.Hour)}
	if res, err := st.Apply(ctx, []declarations.Op{{Amend: &op}}); err != nil || res[0].Err != nil {
		t.Fatalf("amend: %v %v", err, res[0].Err)
	}
	revs, err := st.Revisions(ctx, "d1")
	if err != nil || len(revs) != 2 || revs[0].Revision != 1 || revs[0].Count != 2 || revs[1].Revision != 2 || revs[1].Count != 3 {
		t.Fatalf("revisions %+v, %v", revs, err)
	}
}

// A commune's history and the full list read the index that grows at its
// end (declarationsByTimeMigration), not the whole table.
func TestDeclarationListsUseTheTimeIndex(t *testing.T) {
	s := open(t)
	for _, commune := range []string{"56121", ""} {
		q, args := declarationsQuery(commune) // the query Declarations runs
		rows, err := s.db.QueryContext(context.Background(), `EXPLAIN QUERY PLAN `+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if !strings.Contains(strings.Join(plan, "; "), "USING INDEX declarations_created") {
			t.Errorf("%s: plan %q", q, plan)
		}
	}
}
