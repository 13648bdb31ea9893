package declarations

import (
	"math"
	"sort"
	"time"
)

// Level is an alert level, shown on the map in the French colour scale.
type Level int

// Levels, lowest first.
const (
	LevelNormal    Level = iota // vert
	LevelVigilance              // jaune
	LevelAlerte                 // orange
	LevelCrise                  // rouge
)

// Name is the level's stable wire name.
func (l Level) Name() string {
	return [...]string{"normal", "vigilance", "alerte", "crise"}[l]
}

// AlertRule decides levels. It is documented in docs/alerts.md; every
// number is configurable.
//
//   - Rate rule: the rolling 7-day count per 100,000 inhabitants reaching
//     RateThresholds[0], [1], [2] gives vigilance, alerte, crise — only
//     when the 7-day count is at least MinCount7, so that one death in a
//     hamlet of 200 is not a "crisis" by arithmetic.
//   - Peak rule: today's count above mean + PeakK·sd of the PeakWindow
//     previous days, and at least PeakMinCount, raises the level to at
//     least alerte.
type AlertRule struct {
	RateThresholds [3]float64
	MinCount7      int
	PeakK          float64
	PeakWindow     int
	PeakMinCount   int
}

func (r AlertRule) withDefaults() AlertRule {
	// France's ordinary mortality is about 18 deaths per 100,000 a week:
	// the defaults are about 1.7×, 2.5× and 3.3× that.
	if r.RateThresholds == [3]float64{} {
		r.RateThresholds = [3]float64{30, 45, 60}
	}
	if r.MinCount7 <= 0 {
		r.MinCount7 = 3
	}
	if r.PeakK <= 0 {
		r.PeakK = 3
	}
	if r.PeakWindow <= 0 {
		r.PeakWindow = 14
	}
	if r.PeakMinCount <= 0 {
		r.PeakMinCount = 3
	}
	return r
}

// AlertEvent is a level change.
type AlertEvent struct {
	Commune string    `json:"commune"` // "" for the département
	From    Level     `json:"from"`
	To      Level     `json:"to"`
	At      time.Time `json:"at"`
}

// DayCounts is one day of a series.
type DayCounts struct {
	Date     string `json:"date"`
	Domicile int    `json:"domicile"`
	EHPAD    int    `json:"ehpad"`
	Hopital  int    `json:"hopital"`
	Autre    int    `json:"autre"`
	Total    int    `json:"total"`
}

// CommuneState is the full current state of one commune (or, with Code
// "", of the département). It is what the live map receives: a state with
// a version, never an increment.
type CommuneState struct {
	Code       string         `json:"code"`
	Version    int64          `json:"version"`
	Population int            `json:"population"`
	Total      int            `json:"total"`
	ByPlace    map[string]int `json:"by_place"`
	Today      int            `json:"today"`
	Last7      int            `json:"last7"`
	Rate7      float64        `json:"rate7"` // per 100,000 over the last 7 days
	Level      Level          `json:"level"`
	LevelName  string         `json:"level_name"`
	Days       []DayCounts    `json:"days"`
	// TodayByPlace and Last7ByPlace split Today and Last7 by place, so
	// that the map can filter any period by place without the series.
	TodayByPlace map[string]int `json:"today_by_place"`
	Last7ByPlace map[string]int `json:"last7_by_place"`
}

// series returns date → counts for a commune, or summed over all for "".
// Callers hold s.mu.
func (s *Service) seriesLocked(code string) map[string][4]int {
	out := map[string][4]int{}
	add := func(days map[string]*[4]int) {
		for d, c := range days {
			v := out[d]
			for i := range v {
				v[i] += c[i]
			}
			out[d] = v
		}
	}
	if code != "" {
		add(s.cells[code])
		return out
	}
	for _, days := range s.cells {
		add(days)
	}
	return out
}

func (s *Service) population(code string) int {
	if code != "" {
		return s.cfg.Population(code)
	}
	return s.depPopulation
}

func sum4(c [4]int) int { return c[0] + c[1] + c[2] + c[3] }

func addDays(day string, n int) string {
	t, _ := time.Parse(DateLayout, day)
	return t.AddDate(0, 0, n).Format(DateLayout)
}

type windowStats struct {
	today, last7 int
	rate7        float64
}

func (s *Service) windowLocked(series map[string][4]int, pop int, today string) windowStats {
	var w windowStats
	w.today = sum4(series[today])
	for i := 0; i < 7; i++ {
		w.last7 += sum4(series[addDays(today, -i)])
	}
	if pop > 0 {
		w.rate7 = float64(w.last7) * 100000 / float64(pop)
	}
	return w
}

// levelLocked applies the AlertRule to one commune ("" = département).
func (s *Service) levelLocked(code string) Level {
	today := s.cfg.Rules.Today()
	series := s.seriesLocked(code)
	return s.cfg.Alerts.level(series, s.population(code), today)
}

func (r AlertRule) level(series map[string][4]int, pop int, today string) Level {
	lvl := LevelNormal
	last7 := 0
	for i := 0; i < 7; i++ {
		last7 += sum4(series[addDays(today, -i)])
	}
	if pop > 0 && last7 >= r.MinCount7 {
		rate := float64(last7) * 100000 / float64(pop)
		for i, th := range r.RateThresholds {
			if rate >= th {
				lvl = Level(i + 1)
			}
		}
	}
	todayN := sum4(series[today])
	if todayN >= r.PeakMinCount {
		var xs []float64
		for i := 1; i <= r.PeakWindow; i++ {
			xs = append(xs, float64(sum4(series[addDays(today, -i)])))
		}
		mean, sd := meanSD(xs)
		if float64(todayN) > mean+r.PeakK*sd && lvl < LevelAlerte {
			lvl = LevelAlerte
		}
	}
	return lvl
}

func meanSD(xs []float64) (mean, sd float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		sd += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(sd / float64(len(xs)))
}

func (s *Service) stateLocked(code string) CommuneState {
	series := s.seriesLocked(code)
	pop := s.population(code)
	today := s.cfg.Rules.Today()
	w := s.windowLocked(series, pop, today)
	st := CommuneState{Code: code, Population: pop, ByPlace: map[string]int{}, Today: w.today, Last7: w.last7,
		Rate7: math.Round(w.rate7*10) / 10, Days: []DayCounts{}}
	if code != "" {
		st.Version = s.versions[code]
	} else {
		for _, v := range s.versions {
			st.Version += v // the département changes whenever a commune does
		}
	}
	st.TodayByPlace, st.Last7ByPlace = map[string]int{}, map[string]int{}
	for _, p := range Places {
		st.ByPlace[string(p)] = 0
		st.TodayByPlace[string(p)] = 0
		st.Last7ByPlace[string(p)] = 0
	}
	weekStart := addDays(today, -6) // the 7-day window is today and the 6 days before
	for d, c := range series {
		st.Days = append(st.Days, DayCounts{Date: d, Domicile: c[0], EHPAD: c[1], Hopital: c[2], Autre: c[3], Total: sum4(c)})
		for i, p := range Places {
			st.ByPlace[string(p)] += c[i]
			if d == today {
				st.TodayByPlace[string(p)] += c[i]
			}
			if d >= weekStart && d <= today {
				st.Last7ByPlace[string(p)] += c[i]
			}
		}
		st.Total += sum4(c)
	}
	sort.Slice(st.Days, func(i, j int) bool { return st.Days[i].Date < st.Days[j].Date })
	st.Level = s.cfg.Alerts.level(series, pop, today)
	st.LevelName = st.Level.Name()
	return st
}

// State returns one commune's current state ("" for the département).
func (s *Service) State(code string) CommuneState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.stateLocked(code)
}

// Snapshot returns every commune's state, sorted by code: what a live-map
// subscriber starts from.
func (s *Service) Snapshot() []CommuneState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]CommuneState, 0, len(s.cfg.Communes))
	for _, c := range s.cfg.Communes {
		out = append(out, s.stateLocked(c))
	}
	return out
}

// ExportRow is one line of the CSV export.
type ExportRow struct {
	Commune string
	Date    string
	Place   string
	Count   int
}

// ExportRows returns, for every commune × day that has a declaration, one
// row per place (zeros included, so the table is rectangular and an amended
// to-zero day stays visible), sorted by commune, date, place.
func (s *Service) ExportRows() []ExportRow {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []ExportRow
	for commune, days := range s.cells {
		for d, c := range days {
			for i, p := range Places {
				out = append(out, ExportRow{Commune: commune, Date: d, Place: string(p), Count: c[i]})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Commune != b.Commune {
			return a.Commune < b.Commune
		}
		if a.Date != b.Date {
			return a.Date < b.Date
		}
		return placeIndex(a.Place) < placeIndex(b.Place)
	})
	return out
}
