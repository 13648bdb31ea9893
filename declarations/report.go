package declarations

import (
	"bufio"
	"net/http"
	"strconv"
	"time"
)

func (a *API) export(w http.ResponseWriter, r *http.Request, actor Actor) {
	if !actor.Operator {
		fail(w, ErrForbidden)
		return
	}
	rows := a.Svc.ExportRows()
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="declarations-`+a.Svc.Rules().Today()+`.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	bw := bufio.NewWriter(w)
	// The BOM makes French Excel read UTF-8 (accents in commune names);
	// ';' is the list separator of a French locale.
	bw.WriteString("\ufeffcode_insee;commune;date;lieu;deces\r\n")
	for _, row := range rows {
		bw.WriteString(row.Commune + ";" + csvField(a.Name(row.Commune)) + ";" + row.Date + ";" + row.Place + ";" + strconv.Itoa(row.Count) + "\r\n")
	}
	_ = bw.Flush()
}

// ReportLine is one commune in the morning report.
type ReportLine struct {
	Code      string         `json:"code"`
	Name      string         `json:"name"`
	ByPlace   map[string]int `json:"by_place"`
	Total     int            `json:"total"`
	Previous  int            `json:"previous"` // the day before
	Change    int            `json:"change"`
	Last7     int            `json:"last7"`
	Rate7     float64        `json:"rate7"`
	Level     Level          `json:"level"`
	LevelName string         `json:"level_name"`
}

// Report is the morning report: one day's figures (yesterday by default).
type Report struct {
	Date        string       `json:"date"`
	GeneratedAt time.Time    `json:"generated_at"`
	Departement ReportLine   `json:"departement"`
	Communes    []ReportLine `json:"communes"` // communes with deaths that day or the day before
	InAlert     []ReportLine `json:"in_alert"`
	NotDeclared []ReportLine `json:"not_declared"` // no declaration for that day
	AlertEvents []AlertEvent `json:"alert_events"`
}

// Report builds the morning report for day.
func (s *Service) Report(day string, name CommuneNamer) Report {
	w := s.window()
	prevDay := addDays(day, -1)
	s.mu.RLock()
	defer s.mu.RUnlock()
	rep := Report{Date: day, GeneratedAt: s.cfg.Rules.Now().UTC(), Communes: []ReportLine{}, InAlert: []ReportLine{},
		NotDeclared: []ReportLine{}, AlertEvents: append([]AlertEvent{}, s.events...)}
	line := func(code string) (ReportLine, bool) {
		series := s.seriesLocked(code)
		_, declared := series[day]
		c, prev := at(series, day), at(series, prevDay)
		st := s.stateLocked(code, w)
		l := ReportLine{Code: code, ByPlace: map[string]int{}, Total: sum4(c), Previous: sum4(prev),
			Last7: st.Last7, Rate7: st.Rate7, Level: st.Level, LevelName: st.LevelName}
		if code != "" {
			l.Name = name(code)
		}
		l.Change = l.Total - l.Previous
		for i, p := range Places {
			l.ByPlace[string(p)] = c[i]
		}
		return l, declared
	}
	rep.Departement, _ = line("")
	rep.Departement.Name = "Département"
	for _, code := range s.cfg.Communes {
		l, declared := line(code)
		if l.Total > 0 || l.Previous > 0 {
			rep.Communes = append(rep.Communes, l)
		}
		if l.Level > LevelNormal {
			rep.InAlert = append(rep.InAlert, l)
		}
		if !declared {
			rep.NotDeclared = append(rep.NotDeclared, l)
		}
	}
	return rep
}

func (a *API) report(w http.ResponseWriter, r *http.Request, actor Actor) {
	if !actor.Operator {
		fail(w, ErrForbidden)
		return
	}
	day := r.URL.Query().Get("date")
	if day == "" {
		day = addDays(a.Svc.Rules().Today(), -1)
	}
	if _, err := time.Parse(DateLayout, day); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "bad_date", Message: "date: AAAA-MM-JJ"})
		return
	}
	writeJSON(w, http.StatusOK, a.Svc.Report(day, a.Name))
}
