package declarations

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

// The département's sums are kept as communes change (added counts, states
// replaced from the store or another instance): they must always equal the
// sums computed from scratch, with a day only if some commune has it.
func TestDepartementSumsFollowCommunes(t *testing.T) {
	s := &Service{cells: map[string]map[string]*[4]int{}, dep: map[string]*[4]int{}, versions: map[string]int64{}}
	rng := rand.New(rand.NewPCG(1, 2))
	communes := []string{"56003", "56121", "56260"}
	days := []string{"2026-11-24", "2026-11-25", "2026-11-26"}
	for step := range 2000 {
		code := communes[rng.IntN(len(communes))]
		if rng.IntN(4) == 0 {
			repl := map[string]*[4]int{}
			for _, d := range days {
				if rng.IntN(2) == 0 {
					repl[d] = &[4]int{rng.IntN(5), rng.IntN(5), 0, rng.IntN(3)}
				}
			}
			s.replaceLocked(code, repl, s.versions[code]+int64(rng.IntN(3)))
		} else {
			s.addLocked(code, days[rng.IntN(len(days))], string(Places[rng.IntN(len(Places))]), rng.IntN(7)-2)
			s.setVersionLocked(code, s.versions[code]+1)
		}
		want := map[string]*[4]int{}
		var version int64
		for c, ds := range s.cells {
			version += s.versions[c]
			for d, n := range ds {
				if want[d] == nil {
					want[d] = &[4]int{}
				}
				for i := range n {
					want[d][i] += n[i]
				}
			}
		}
		if !reflect.DeepEqual(s.dep, want) || s.depVersion != version {
			t.Fatalf("step %d: département %v v%d, from scratch %v v%d", step, values(s.dep), s.depVersion, values(want), version)
		}
	}
}

func values(m map[string]*[4]int) map[string][4]int {
	out := make(map[string][4]int, len(m))
	for k, v := range m {
		out[k] = *v
	}
	return out
}
