package declarations

import (
	"strconv"
	"unicode/utf8"
)

// parseInput reads the common shape of a declaration body without
// reflection: one object whose members are Input's fields, each at most
// once, named exactly, strings without escapes or control characters, the
// count a plain integer, and only white space around. It reports false for
// anything else, which the standard decoder then reads (and accepts or
// refuses) as before, so that what parseInput accepts the standard decoder
// reads the same (FuzzDecodeInput).
func parseInput(b []byte, in *Input) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	var seen [6]bool
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		key, j, ok := plainString(b, i)
		if !ok {
			return false
		}
		i = skipSpace(b, j)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		var field *string
		var k int
		switch key {
		case "commune":
			field, k = &in.Commune, 0
		case "date":
			field, k = &in.Date, 1
		case "place":
			field, k = &in.Place, 2
		case "note":
			field, k = &in.Note, 3
		case "idempotency_key":
			field, k = &in.IdempotencyKey, 4
		case "count":
			k = 5
		default:
			return false // other spellings and unknown fields: the standard decoder decides
		}
		if seen[k] {
			return false
		}
		seen[k] = true
		if field != nil {
			if *field, i, ok = plainString(b, i); !ok {
				return false
			}
		} else if in.Count, i, ok = plainInt(b, i); !ok {
			return false
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return skipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainString reads a string at b[i] that needs no unescaping: valid
// UTF-8, no backslash, no control character. It returns the index after it.
func plainString(b []byte, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", i, false
	}
	start := i + 1
	for j := start; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			s := b[start:j]
			if !utf8.Valid(s) {
				return "", i, false
			}
			return string(s), j + 1, true
		case c == '\\' || c < 0x20:
			return "", i, false
		}
	}
	return "", i, false
}

// plainInt reads a JSON integer at b[i] (no fraction, no exponent, no
// leading zero) small enough for an int on every platform.
func plainInt(b []byte, i int) (int, int, bool) {
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	digits := j
	for j < len(b) && '0' <= b[j] && b[j] <= '9' {
		j++
	}
	n := j - digits
	if n == 0 || n > 9 || (n > 1 && b[digits] == '0') {
		return 0, i, false
	}
	if j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E') {
		return 0, i, false
	}
	v, err := strconv.Atoi(string(b[i:j]))
	if err != nil {
		return 0, i, false
	}
	return v, j, true
}
