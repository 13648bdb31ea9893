package declarations_test

import (
	"context"
	"testing"

	"crisisroom/declarations"
	"crisisroom/livemap"
)

// The map filters any period by place: a state splits today and the last
// 7 days (today and the 6 days before) by place, and the live map's compact
// state carries the same split.
func TestStateSplitsPeriodsByPlace(t *testing.T) {
	svc, _, stop := newService(t, t.TempDir(), nil)
	defer stop()
	op := declarations.Actor{ID: "prefecture", Operator: true}
	for _, in := range []declarations.Input{
		{Commune: "56121", Date: "2026-11-26", Place: "domicile", Count: 3, IdempotencyKey: "byplace-1"}, // today
		{Commune: "56121", Date: "2026-11-20", Place: "ehpad", Count: 2, IdempotencyKey: "byplace-2"},    // 6 days before: in the week
		{Commune: "56121", Date: "2026-11-19", Place: "hopital", Count: 4, IdempotencyKey: "byplace-3"},  // 7 days before: out
	} {
		if _, _, err := svc.Declare(context.Background(), op, in); err != nil {
			t.Fatal(err)
		}
	}
	st := svc.State("56121")
	if st.Today != 3 || st.Last7 != 5 || st.Total != 9 {
		t.Fatalf("state: today %d, last7 %d, total %d", st.Today, st.Last7, st.Total)
	}
	want := map[string][3]int{"domicile": {3, 3, 3}, "ehpad": {0, 2, 2}, "hopital": {0, 0, 4}, "autre": {0, 0, 0}}
	for p, w := range want {
		if got := [3]int{st.TodayByPlace[p], st.Last7ByPlace[p], st.ByPlace[p]}; got != w {
			t.Errorf("%s: today, 7 days, total = %v, want %v", p, got, w)
		}
	}
	ms := livemap.FromCommuneState(st)
	if ms.TodayByPlace != [4]int{3, 0, 0, 0} || ms.Last7ByPlace != [4]int{3, 2, 0, 0} || ms.ByPlace != [4]int{3, 2, 4, 0} {
		t.Errorf("map state: today %v, last7 %v, total %v", ms.TodayByPlace, ms.Last7ByPlace, ms.ByPlace)
	}
	if dep := svc.State(""); dep.Last7ByPlace["ehpad"] != 2 || dep.TodayByPlace["domicile"] != 3 {
		t.Errorf("département split: today %v, last7 %v", dep.TodayByPlace, dep.Last7ByPlace)
	}
}
