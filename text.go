package voxanne

import (
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Text that Voxanne stores must be valid UTF-8 without NUL characters:
// PostgreSQL refuses both in text and jsonb columns. Input from clients is
// checked at the edge (ValidText, CheckJSONText: 400 validation_failed); input
// from providers that has already been authenticated is cleaned instead
// (CleanText, CleanJSONText), so that a delivery is stored and processed rather
// than retried forever.

// ValidText reports whether s is valid UTF-8 without NUL characters.
func ValidText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// CleanText returns s with each invalid UTF-8 sequence replaced by U+FFFD and
// its NUL characters dropped.
func CleanText(s string) string {
	if ValidText(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

// CheckJSONText reports (EINVALID, validation_failed) whether a string of the JSON text b, a
// key or a value, is not valid text: invalid UTF-8, a \u0000 escape or an
// unpaired surrogate escape (which encoding/json would silently turn into
// U+FFFD). It looks at strings only: whether b is JSON is the decoder's
// business.
func CheckJSONText(b []byte) error {
	if _, bad := scanJSONText(b, false); bad {
		return ReasonErrorf(EINVALID, ReasonValidationFailed, "the body has a string that is not valid UTF-8 text or contains a NUL character")
	}
	return nil
}

// CleanJSONText returns the JSON text b with its strings made storable: each
// invalid UTF-8 byte (or raw NUL, which JSON never has) becomes U+FFFD,
// \u0000 escapes are dropped and unpaired surrogate escapes become \ufffd. It
// returns b itself when there is nothing to clean, and never modifies b.
func CleanJSONText(b []byte) []byte {
	out, _ := scanJSONText(b, true)
	return out
}

// scanJSONText walks the JSON text b and reports whether it has text that is
// not storable; with clean it also returns the cleaned text (b when clean).
func scanJSONText(b []byte, clean bool) ([]byte, bool) {
	var out []byte // the cleaned text so far, up to b[from]
	from, bad := 0, false
	// replace drops b[i:j] in favour of with.
	replace := func(i, j int, with string) {
		bad = true
		if clean {
			out = append(append(out, b[from:i]...), with...)
			from = j
		}
	}
	inString := false
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == 0:
			// JSON has no raw NUL: like an invalid byte (dropping it could
			// make a \u0000 escape of its neighbours).
			replace(i, i+1, "\uFFFD")
			i++
		case c >= utf8.RuneSelf:
			if r, n := utf8.DecodeRune(b[i:]); r == utf8.RuneError && n == 1 {
				replace(i, i+1, "\uFFFD")
				i++
			} else {
				i += n
			}
		case c == '"':
			inString = !inString
			i++
		case c == '\\' && inString:
			i += escapeLen(b[i:], replace, i)
		default:
			i++
		}
		if bad && !clean {
			return nil, true
		}
	}
	if !bad || !clean {
		return b, bad
	}
	return append(out, b[from:]...), bad
}

// escapeLen returns the length of the escape sequence at the start of b (a
// backslash), reporting \u0000 and unpaired surrogates through replace (whose
// offsets are relative to at).
func escapeLen(b []byte, replace func(i, j int, with string), at int) int {
	if len(b) < 2 || b[1] != 'u' {
		return min(2, len(b)) // a one-character escape, or a truncated text
	}
	r, ok := hex4(b[2:])
	if !ok {
		return 2 // malformed: the decoder refuses it
	}
	switch {
	case r == 0:
		replace(at, at+6, "")
	case utf16.IsSurrogate(r):
		if r < 0xDC00 && len(b) >= 12 && b[6] == '\\' && b[7] == 'u' {
			if r2, ok := hex4(b[8:]); ok && r2 >= 0xDC00 && r2 <= 0xDFFF {
				return 12 // a high and a low surrogate: one character
			}
		}
		replace(at, at+6, `\ufffd`)
	}
	return 6
}

// hex4 decodes the four hex digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
