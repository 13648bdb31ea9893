package declarations

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecodeInput feeds arbitrary bodies to the strict decoder, as the API
// does (through http.MaxBytesReader), into both body types. It must never
// panic; it must refuse with a 400 or 413 cause only; and what it accepts
// must be exactly one JSON value that the standard decoder reads the same.
//
//	go test -run '^$' -fuzz FuzzDecodeInput -fuzztime 30s ./declarations
func FuzzDecodeInput(f *testing.F) {
	seeds := []string{
		`{"commune":"56121","date":"2026-11-26","place":"ehpad","count":2,"note":"","idempotency_key":"0123456789abcdef"}`,
		`{"count":0,"reason":"doublon"}`,
		`{"date":"2026-11-25","place":"hopital","note":"é","reason":"x"}`,
		`{"commune":"56121"} `,
		`{"commune":"56121"}{}`,
		`{"commune":"56121"} x`,
		`{"commune":"56121","commune":"56003"}`,
		`{"COMMUNE":"56121"}`,
		`{"count":1e400}`,
		`{"count":-0}`,
		`{"note":"\ud800"}`,
		"{\"note\":\"\xff\"}",
		`{"extra":1}`,
		`null`,
		`[]`,
		`"x"`,
		``,
		`{`,
		`{"count":` + strings.Repeat("9", 40) + `}`,
		`{"note":"` + strings.Repeat("a", MaxBodyBytes) + `"}`,
		`{}` + strings.Repeat(" ", MaxBodyBytes),
		// The shapes parseInput reads itself, and their near misses.
		` {"commune":"56121","date":"2026-11-26","place":"domicile","count":1,"note":"é","idempotency_key":"k-0123456789"} `,
		`{}`, ` { } `, `{"count":-0}`, `{"count":01}`, `{"count":1.0}`, `{"count":1e2}`, `{"count":-}`, `{"count":}`,
		`{"count":123456789}`, `{"count":1234567890}`, `{"count":-999999999}`, `{"count":"1"}`, `{"count":null}`,
		`{"commune":"a","commune":"b"}`, `{"Commune":"x"}`, `{"note":"\u00e9"}`, `{"note":"a\tb"}`, "{\"note\":\"a\tb\"}",
		`{"note":"a"}x`, `{"note":"a",}`, `{,}`, `{"note" "a"}`, `{"note":"a"`, `{"note":"a}`, `{"note":"a"}}`,
		"\ufeff{}", `{"count":1,"reason":"x"}`, `{"date":"2026-11-26"}` + "\n\t\r ", "{\"note\":\"\xff\"}",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecode(t, data, func() any { return new(Input) })
		checkDecode(t, data, func() any { return new(Amendment) })
	})
}

func checkDecode(t *testing.T, data []byte, fresh func() any) {
	v := fresh()
	body := http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(bytes.NewReader(data)), MaxBodyBytes)
	err := DecodeInput(body, v)
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			if len(data) <= MaxBodyBytes {
				t.Fatalf("too large for %d bytes: %v", len(data), err)
			}
		case errors.Is(err, errBadJSON):
		default:
			t.Fatalf("error that maps to neither 400 nor 413: %v", err)
		}
		return
	}
	if len(data) > MaxBodyBytes {
		t.Fatalf("accepted %d bytes, over the %d limit", len(data), MaxBodyBytes)
	}
	if !json.Valid(data) {
		t.Fatalf("accepted invalid JSON %q", data)
	}
	// The standard decoder, just as strict, must read the same values.
	w := fresh()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(w); err != nil {
		t.Fatalf("accepted %q, which the standard decoder refuses: %v", data, err)
	}
	if !reflect.DeepEqual(v, w) {
		t.Fatalf("decoded %#v, standard decoder %#v", v, w)
	}
	// What was accepted survives a round trip.
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	again := fresh()
	if err := DecodeInput(bytes.NewReader(out), again); err != nil {
		t.Fatalf("re-encoded %s refused: %v", out, err)
	}
	if !reflect.DeepEqual(v, again) {
		t.Fatalf("round trip changed %#v into %#v", v, again)
	}
}
