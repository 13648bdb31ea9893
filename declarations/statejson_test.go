package declarations

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The committer encodes states with appendJSON; what it publishes must be
// exactly what encoding/json writes for the same CommuneState.
func TestStateJSONMatchesEncodingJSON(t *testing.T) {
	full := stateCalc{code: "56121", version: 42, pop: 5123, total: 9, today: 3, last7: 5, rate7: 97.6, level: LevelCrise,
		all: [4]int{3, 2, 4, 0}, todayBy: [4]int{3, 0, 0, 0}, last7By: [4]int{3, 2, 0, 0},
		days: []DayCounts{{Date: "2026-11-19", Hopital: 4, Total: 4}, {Date: "2026-11-20", EHPAD: 2, Total: 2},
			{Date: "2026-11-26", Domicile: 3, Total: 3}}}
	cases := []stateCalc{
		full,
		{days: []DayCounts{}}, // the département, empty
		{code: `2A"<é>&\`, rate7: 1e-7, version: -1, all: [4]int{-5, 1, 2, 1 << 40}, days: []DayCounts{{Date: "x\u2028y\x01"}}},
		{rate7: 1e21, days: []DayCounts{}}, {rate7: 0.1, days: []DayCounts{}}, {rate7: 123456.7, days: []DayCounts{}},
		{rate7: -0.5, days: []DayCounts{}}, {rate7: 1e-6, days: []DayCounts{}}, {rate7: 5e-324, days: []DayCounts{}},
		{rate7: 1.7976931348623157e308, level: LevelAlerte, days: []DayCounts{}},
	}
	for i, c := range cases {
		want, err := json.Marshal(c.state())
		if err != nil {
			t.Fatal(err)
		}
		if got := c.appendJSON(nil); string(got) != string(want) {
			t.Errorf("case %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

func TestDeclarationJSONMatchesEncodingJSON(t *testing.T) {
	paris, _ := time.LoadLocation("Europe/Paris")
	at := time.Date(2026, 11, 26, 9, 30, 15, 123000000, time.UTC)
	strs := []string{"", "x", "Mairie de Séné", `a"b\c`, "<script>&amp;</script>", "tab\there\nnew\rline\b\f\x00\x1f\x7f",
		"\u2028\u2029", "\xff\xfe invalid", "é\xc3", "日本語 🙂", strings.Repeat("ab", 300)}
	times := []time.Time{at, at.Truncate(time.Second), at.In(paris), {}, time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)}
	for i, s := range strs {
		for j, tm := range times {
			d := Declaration{ID: "0196" + s, Commune: "56121", Date: "2026-11-26", Place: s, Count: i - 3, Note: s,
				IdempotencyKey: s, Declarant: s, DeclarantLabel: s, CreatedAt: tm, Revision: j}
			want, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			if got := d.appendJSON(nil); string(got) != string(want) {
				t.Errorf("%q at %v:\n got %s\nwant %s", s, tm, got, want)
			}
		}
	}
}
