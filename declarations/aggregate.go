package declarations

import (
	"math"
	"slices"
	"sort"
	"strings"
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

// dayWindow is today and the days before it that states and alert rules
// look at, as date strings: made once a day instead of once per lookup.
type dayWindow struct {
	today string
	days  []string // days[i] is i days before today; days[0] is today
}

// days returns the window the rule needs (at least the 7 days of the rate).
func (r AlertRule) days(today string) *dayWindow {
	t, _ := time.Parse(DateLayout, today)
	w := &dayWindow{today: today, days: make([]string, max(7, r.PeakWindow+1))}
	for i := range w.days {
		w.days[i] = t.AddDate(0, 0, -i).Format(DateLayout)
	}
	return w
}

// window returns today's window, made on the first call of the day.
func (s *Service) window() *dayWindow {
	today := s.cfg.Rules.Today()
	if w := s.win.Load(); w != nil && w.today == today {
		return w
	}
	w := s.cfg.Alerts.days(today)
	s.win.Store(w)
	return w
}

// seriesLocked returns date → counts of a commune, or of the département
// for "" (kept summed as cells change, so that it costs nothing to read).
// Callers hold s.mu and only read it.
func (s *Service) seriesLocked(code string) map[string]*[4]int {
	if code == "" {
		return s.dep
	}
	return s.cells[code]
}

// at returns the counts of one day of a series.
func at(series map[string]*[4]int, day string) [4]int {
	if c := series[day]; c != nil {
		return *c
	}
	return [4]int{}
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

func windowOf(series map[string]*[4]int, pop int, w *dayWindow) windowStats {
	var ws windowStats
	ws.today = sum4(at(series, w.today))
	for _, d := range w.days[:7] {
		ws.last7 += sum4(at(series, d))
	}
	if pop > 0 {
		ws.rate7 = float64(ws.last7) * 100000 / float64(pop)
	}
	return ws
}

// levelLocked applies the AlertRule to one commune ("" = département).
func (s *Service) levelLocked(code string, w *dayWindow) Level {
	return s.cfg.Alerts.level(s.seriesLocked(code), s.population(code), w)
}

func (r AlertRule) level(series map[string]*[4]int, pop int, w *dayWindow) Level {
	lvl := LevelNormal
	last7 := 0
	for _, d := range w.days[:7] {
		last7 += sum4(at(series, d))
	}
	if pop > 0 && last7 >= r.MinCount7 {
		rate := float64(last7) * 100000 / float64(pop)
		for i, th := range r.RateThresholds {
			if rate >= th {
				lvl = Level(i + 1)
			}
		}
	}
	todayN := sum4(at(series, w.today))
	if todayN >= r.PeakMinCount {
		xs := make([]float64, 0, r.PeakWindow)
		for _, d := range w.days[1 : r.PeakWindow+1] {
			xs = append(xs, float64(sum4(at(series, d))))
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

// stateCalc is a commune's state as computed, before it takes the maps of
// a CommuneState: the commit path encodes it directly (appendJSON).
type stateCalc struct {
	code                string
	version             int64
	pop                 int
	total, today, last7 int
	rate7               float64
	level               Level
	days                []DayCounts // sorted by date
	// Counts by place index: all days, today, the last 7 days.
	all, todayBy, last7By [4]int
}

func (s *Service) calcLocked(code string, w *dayWindow) stateCalc {
	series := s.seriesLocked(code)
	c := stateCalc{code: code, pop: s.population(code), days: make([]DayCounts, 0, len(series))}
	ws := windowOf(series, c.pop, w)
	c.today, c.last7, c.rate7 = ws.today, ws.last7, math.Round(ws.rate7*10)/10
	if code != "" {
		c.version = s.versions[code]
	} else {
		c.version = s.depVersion // the département changes whenever a commune does
	}
	weekStart := w.days[6] // the 7-day window is today and the 6 days before
	for d, cp := range series {
		n := *cp
		c.days = append(c.days, DayCounts{Date: d, Domicile: n[0], EHPAD: n[1], Hopital: n[2], Autre: n[3], Total: sum4(n)})
		for i := range n {
			c.all[i] += n[i]
			if d == w.today {
				c.todayBy[i] += n[i]
			}
			if d >= weekStart && d <= w.today {
				c.last7By[i] += n[i]
			}
		}
		c.total += sum4(n)
	}
	slices.SortFunc(c.days, func(a, b DayCounts) int { return strings.Compare(a.Date, b.Date) })
	c.level = s.cfg.Alerts.level(series, c.pop, w)
	return c
}

func (c *stateCalc) state() CommuneState {
	return CommuneState{Code: c.code, Version: c.version, Population: c.pop, Total: c.total, ByPlace: byPlace(c.all),
		Today: c.today, Last7: c.last7, Rate7: c.rate7, Level: c.level, LevelName: c.level.Name(), Days: c.days,
		TodayByPlace: byPlace(c.todayBy), Last7ByPlace: byPlace(c.last7By)}
}

func (s *Service) stateLocked(code string, w *dayWindow) CommuneState {
	c := s.calcLocked(code, w)
	return c.state()
}

func byPlace(c [4]int) map[string]int {
	m := make(map[string]int, len(Places))
	for i, p := range Places {
		m[string(p)] = c[i]
	}
	return m
}

// State returns one commune's current state ("" for the département).
func (s *Service) State(code string) CommuneState {
	w := s.window()
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.stateLocked(code, w)
}

// Snapshot returns every commune's state, sorted by code: what a live-map
// subscriber starts from.
func (s *Service) Snapshot() []CommuneState {
	w := s.window()
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]CommuneState, 0, len(s.cfg.Communes))
	for _, c := range s.cfg.Communes {
		out = append(out, s.stateLocked(c, w))
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
