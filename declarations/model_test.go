package declarations

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

func testRules() Rules {
	return Rules{
		KnownCommune: func(c string) bool { return c == "56121" },
		EventStart:   "2026-11-01",
		MaxCount:     200,
		Location:     time.FixedZone("CET", 3600),
		// 23:30 UTC is already the 27th in Paris.
		Now: func() time.Time { return time.Date(2026, 11, 26, 23, 30, 0, 0, time.UTC) },
	}
}

func TestValidate(t *testing.T) {
	ok := Input{Commune: "56121", Date: "2026-11-26", Place: "ehpad", Count: 2, IdempotencyKey: "0b6c1f0e-2d4c-4a51-9d8e-1c2b3a4d5e6f"}
	cases := []struct {
		name  string
		edit  func(*Input)
		codes []string
	}{
		{"valid", func(*Input) {}, nil},
		{"today in local time", func(i *Input) { i.Date = "2026-11-27" }, nil},
		{"unknown commune", func(i *Input) { i.Commune = "99999" }, []string{"unknown_commune"}},
		{"future", func(i *Input) { i.Date = "2026-11-28" }, []string{"date_in_future"}},
		{"before event", func(i *Input) { i.Date = "2026-10-31" }, []string{"date_before_event"}},
		{"bad date", func(i *Input) { i.Date = "26/11/2026" }, []string{"bad_date"}},
		{"impossible date", func(i *Input) { i.Date = "2026-02-30" }, []string{"bad_date"}},
		{"unknown place", func(i *Input) { i.Place = "rue" }, []string{"unknown_place"}},
		{"zero", func(i *Input) { i.Count = 0 }, []string{"count_out_of_range"}},
		{"negative", func(i *Input) { i.Count = -3 }, []string{"count_out_of_range"}},
		{"too many", func(i *Input) { i.Count = 201 }, []string{"count_out_of_range"}},
		{"long note", func(i *Input) { i.Note = strings.Repeat("é", 501) }, []string{"note_too_long"}},
		{"bad utf8 note", func(i *Input) { i.Note = "\xff" }, []string{"note_too_long"}},
		{"short key", func(i *Input) { i.IdempotencyKey = "abc" }, []string{"bad_idempotency_key"}},
		{"key with spaces", func(i *Input) { i.IdempotencyKey = "a b c d e f g h" }, []string{"bad_idempotency_key"}},
		{"everything wrong", func(i *Input) { *i = Input{} }, []string{"unknown_commune", "bad_date", "unknown_place", "count_out_of_range", "bad_idempotency_key"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := ok
			c.edit(&in)
			err := testRules().Validate(in)
			if len(c.codes) == 0 {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v is not a ValidationError", err)
			}
			var got []string
			for _, f := range ve.Errors {
				got = append(got, f.Code)
				if f.Message == "" || f.English == "" {
					t.Errorf("%s: missing message", f.Code)
				}
			}
			if strings.Join(got, ",") != strings.Join(c.codes, ",") {
				t.Fatalf("codes %v, want %v", got, c.codes)
			}
		})
	}
}

func TestAlertRule(t *testing.T) {
	r := AlertRule{}.withDefaults()
	today := "2026-11-26"
	series := func(days map[int]int) map[string]*[4]int {
		out := map[string]*[4]int{}
		for ago, n := range days {
			out[addDays(today, -ago)] = &[4]int{n, 0, 0, 0}
		}
		return out
	}
	cases := []struct {
		name string
		days map[int]int
		pop  int
		want Level
	}{
		{"nothing", nil, 10000, LevelNormal},
		{"ordinary week", map[int]int{0: 1, 2: 1}, 10000, LevelNormal},        // 20/100k
		{"vigilance", map[int]int{1: 1, 3: 1, 5: 1}, 10000, LevelVigilance},   // 30/100k
		{"alerte by rate", map[int]int{1: 2, 3: 1, 5: 2}, 10000, LevelAlerte}, // 50/100k
		{"crise by rate", map[int]int{1: 3, 3: 2, 5: 2}, 10000, LevelCrise},   // 70/100k
		{"hamlet: rate high, count low", map[int]int{1: 2}, 200, LevelNormal}, // 1000/100k but 2 deaths
		{"old deaths leave the window", map[int]int{8: 10, 9: 10}, 10000, LevelNormal},
		{"peak over a quiet fortnight", map[int]int{0: 4}, 100000, LevelAlerte}, // rate 4/100k, peak
		{"no peak when usual", map[int]int{0: 4, 1: 4, 2: 4, 3: 5, 4: 3, 5: 4, 6: 4, 7: 4, 8: 5, 9: 3, 10: 4, 11: 4, 12: 4, 13: 4, 14: 4}, 1000000, LevelNormal},
	}
	for _, c := range cases {
		if got := r.level(series(c.days), c.pop, r.days(today)); got != c.want {
			t.Errorf("%s: level %s, want %s", c.name, got.Name(), c.want.Name())
		}
	}
}

// validKey is the documented pattern, written as a loop.
func TestValidKeyIsThePattern(t *testing.T) {
	pattern := regexp.MustCompile(`^[A-Za-z0-9_-]{8,100}$`)
	keys := []string{"", "abcdefg", "abcdefgh", strings.Repeat("a", 100), strings.Repeat("a", 101), "0b6c1f0e-2d4c-4a51-9d8e-1c2b3a4d5e6f",
		"abc_DEF-123", "abcdefg\n", "abcdefgé", "abcdefg.", "abcd efgh", "ABCDEFGH~", "\x00abcdefgh", "ZZZZZZZZ", "zzzzzzzz", "@@@@@@@@", "[[[[[[[[", "````````", "{{{{{{{{", "////////", "::::::::"}
	for c := 0; c < 256; c++ {
		keys = append(keys, strings.Repeat("k", 7)+string(rune(c)), strings.Repeat("k", 7)+string([]byte{byte(c)}))
	}
	for _, k := range keys {
		if got, want := validKey(k), pattern.MatchString(k); got != want {
			t.Errorf("validKey(%q) = %v, the pattern says %v", k, got, want)
		}
	}
}
