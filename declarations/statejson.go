package declarations

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// appendJSON appends c's CommuneState as encoding/json would encode it,
// byte for byte (TestStateJSONMatchesEncodingJSON), without reflection nor
// the state's maps: every commit encodes the state of each commune it
// changed, and the committer's time is the intake's bound. (A MarshalJSON
// method on CommuneState would be inherited by the structs that embed it,
// losing their own fields.)
func (c *stateCalc) appendJSON(b []byte) []byte {
	b = slices.Grow(b, 320+80*len(c.days))
	b = append(b, `{"code":`...)
	b = appendString(b, c.code)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, c.version, 10)
	b = append(b, `,"population":`...)
	b = strconv.AppendInt(b, int64(c.pop), 10)
	b = append(b, `,"total":`...)
	b = strconv.AppendInt(b, int64(c.total), 10)
	b = append(b, `,"by_place":`...)
	b = appendByPlace(b, &c.all)
	b = append(b, `,"today":`...)
	b = strconv.AppendInt(b, int64(c.today), 10)
	b = append(b, `,"last7":`...)
	b = strconv.AppendInt(b, int64(c.last7), 10)
	b = append(b, `,"rate7":`...)
	b = appendFloat(b, c.rate7)
	b = append(b, `,"level":`...)
	b = strconv.AppendInt(b, int64(c.level), 10)
	b = append(b, `,"level_name":`...)
	b = appendString(b, c.level.Name())
	b = append(b, `,"days":[`...)
	for i, d := range c.days {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"date":`...)
		b = appendString(b, d.Date)
		b = append(b, `,"domicile":`...)
		b = strconv.AppendInt(b, int64(d.Domicile), 10)
		b = append(b, `,"ehpad":`...)
		b = strconv.AppendInt(b, int64(d.EHPAD), 10)
		b = append(b, `,"hopital":`...)
		b = strconv.AppendInt(b, int64(d.Hopital), 10)
		b = append(b, `,"autre":`...)
		b = strconv.AppendInt(b, int64(d.Autre), 10)
		b = append(b, `,"total":`...)
		b = strconv.AppendInt(b, int64(d.Total), 10)
		b = append(b, '}')
	}
	b = append(b, `],"today_by_place":`...)
	b = appendByPlace(b, &c.todayBy)
	b = append(b, `,"last7_by_place":`...)
	b = appendByPlace(b, &c.last7By)
	return append(b, '}')
}

// placesByName are the place indexes in the order of their names, the
// order in which encoding/json writes a map's keys.
var placesByName = func() []int {
	idx := []int{0, 1, 2, 3}
	slices.SortFunc(idx, func(a, b int) int { return strings.Compare(string(Places[a]), string(Places[b])) })
	return idx
}()

// appendByPlace encodes counts by place index as the map byPlace makes.
func appendByPlace(b []byte, c *[4]int) []byte {
	b = append(b, '{')
	for n, i := range placesByName {
		if n > 0 {
			b = append(b, ',')
		}
		b = appendString(b, string(Places[i]))
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(c[i]), 10)
	}
	return append(b, '}')
}

// appendString appends s as a JSON string exactly as encoding/json writes
// it (HTML-safe: <, > and & escaped; invalid UTF-8 as U+FFFD).
func appendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendFloat formats like encoding/json's float64 encoder.
func appendFloat(b []byte, f float64) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		q, _ := json.Marshal(f) // an error there: json.Marshal of the state would fail too
		return append(b, q...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendJSON appends d as encoding/json would encode it, byte for byte
// (TestDeclarationJSONMatchesEncodingJSON): it is every 201's body.
func (d *Declaration) appendJSON(b []byte) []byte {
	if y := d.CreatedAt.Year(); y < 0 || y > 9999 {
		return b // encoding/json refuses such a time too: nothing is written
	}
	b = append(b, `{"id":`...)
	b = appendString(b, d.ID)
	b = append(b, `,"commune":`...)
	b = appendString(b, d.Commune)
	b = append(b, `,"date":`...)
	b = appendString(b, d.Date)
	b = append(b, `,"place":`...)
	b = appendString(b, d.Place)
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, int64(d.Count), 10)
	b = append(b, `,"note":`...)
	b = appendString(b, d.Note)
	b = append(b, `,"idempotency_key":`...)
	b = appendString(b, d.IdempotencyKey)
	b = append(b, `,"declarant":`...)
	b = appendString(b, d.Declarant)
	if d.DeclarantLabel != "" {
		b = append(b, `,"declarant_label":`...)
		b = appendString(b, d.DeclarantLabel)
	}
	b = append(b, `,"created_at":"`...)
	b = d.CreatedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","revision":`...)
	b = strconv.AppendInt(b, int64(d.Revision), 10)
	return append(b, '}')
}
