package voxanne_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/voxanne/voxanne"
)

func TestValidAndCleanText(t *testing.T) {
	for _, c := range []struct {
		in, clean string
		valid     bool
	}{
		{"plain", "plain", true},
		{"ünïcode ✓", "ünïcode ✓", true},
		{"nul\x00here", "nulhere", false},
		{"bad\xffbyte", "bad\uFFFDbyte", false},
		{"cut \xe2\x82", "cut \uFFFD", false},
		{"\x00\xc0\x00", "\uFFFD", false},
	} {
		if got := voxanne.ValidText(c.in); got != c.valid {
			t.Errorf("ValidText(%q) = %v", c.in, got)
		}
		if got := voxanne.CleanText(c.in); got != c.clean || !voxanne.ValidText(got) {
			t.Errorf("CleanText(%q) = %q, want %q", c.in, got, c.clean)
		}
	}
}

func TestCheckAndCleanJSONText(t *testing.T) {
	for _, c := range []struct {
		in, clean string
	}{
		{`{"a":"b"}`, `{"a":"b"}`},
		{`{"a":"\u00e9\n\"\\u0000"}`, `{"a":"\u00e9\n\"\\u0000"}`}, // an escaped backslash, then text
		{`{"a":"x\u0000y"}`, `{"a":"xy"}`},
		{`{"k\u0000":1}`, `{"k":1}`},
		{"{\"a\":\"x\xffy\"}", `{"a":"x` + "\uFFFD" + `y"}`},
		{`{"a":"\ud83d\ude00"}`, `{"a":"\ud83d\ude00"}`}, // a surrogate pair is one character
		{`{"a":"\ud83d"}`, `{"a":"\ufffd"}`},
		{`{"a":"\ude00\ud83d x"}`, `{"a":"\ufffd\ufffd x"}`},
		{`["\u0000", "\U0000"]`, `["", "\U0000"]`}, // \U is no escape: the decoder refuses it
		{"[1]\x00", "[1]\uFFFD"},
	} {
		got := string(voxanne.CleanJSONText([]byte(c.in)))
		if got != c.clean {
			t.Errorf("CleanJSONText(%s) = %s, want %s", c.in, got, c.clean)
		}
		err := voxanne.CheckJSONText([]byte(c.in))
		if (err == nil) != (c.in == c.clean) {
			t.Errorf("CheckJSONText(%s) = %v", c.in, err)
		}
		if err != nil && voxanne.ErrorCode(err) != voxanne.EINVALID {
			t.Errorf("CheckJSONText(%s): code %s", c.in, voxanne.ErrorCode(err))
		}
	}
}

// FuzzCleanJSONText: whatever the input, the cleaned text passes the check,
// clean input is returned unchanged, valid JSON stays valid JSON, and every
// string in it decodes to storable text. Seeds are in testdata/fuzz.
func FuzzCleanJSONText(f *testing.F) {
	f.Add([]byte(`{"message":{"type":"end-of-call-report","summary":"a\u0000b","t":"\ud800"}}`))
	f.Add([]byte("{\"a\":\"\xff\xfe\",\"b\":[\"\\\\u0000\"]}"))
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := string(in)
		out := voxanne.CleanJSONText(in)
		if string(in) != orig {
			t.Fatal("CleanJSONText modified its input")
		}
		if err := voxanne.CheckJSONText(out); err != nil {
			t.Fatalf("cleaned text fails the check: %q -> %q", in, out)
		}
		if voxanne.CheckJSONText(in) == nil && string(out) != orig {
			t.Fatalf("clean text changed: %q -> %q", in, out)
		}
		if !json.Valid(in) {
			return
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.UseNumber() // numbers are not this function's business
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("valid JSON %q cleaned into invalid JSON %q: %v", in, out, err)
		}
		walkStrings(v, func(s string) {
			if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
				t.Fatalf("cleaned JSON %q decodes to %q", out, s)
			}
		})
	})
}

// walkStrings calls f with every key and string of a decoded JSON value.
func walkStrings(v any, f func(string)) {
	switch v := v.(type) {
	case string:
		f(v)
	case []any:
		for _, x := range v {
			walkStrings(x, f)
		}
	case map[string]any:
		for k, x := range v {
			f(k)
			walkStrings(x, f)
		}
	}
}
