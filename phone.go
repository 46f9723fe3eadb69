package voxanne

import "strings"

// NormalizeE164 returns s as an E.164 number (+ followed by 7 to 15 digits, the
// first not 0) and true, or "" and false when s is not a dialable number. It
// removes spaces, dashes, parentheses and dots; accepts a leading "+" or the
// international prefix "00"; and, since Voxanne's numbers are mostly North
// American, treats 10 digits as a NANP number (+1 added) and 11 digits starting
// with 1 as NANP with its country code (+ added). A "tel:" prefix is accepted.
//
// Bare digit strings of other lengths are rejected rather than guessed at, and
// so are 10- or 11-digit strings whose area code starts with 0 or 1 (no NANP
// area code does): a national number such as French 06 12 34 56 78 must not
// become a US one. SIP URIs and caller-ID placeholders such as "anonymous",
// "restricted" or "unknown" are rejected.
func NormalizeE164(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if len(s) > 4 && strings.EqualFold(s[:4], "tel:") {
		s = s[4:]
	}
	digits := make([]byte, 0, len(s))
	plus := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits = append(digits, c)
		case c == ' ' || c == '\t' || c == '-' || c == '(' || c == ')' || c == '.':
			// Formatting only.
		case c == '+' && !plus && len(digits) == 0:
			plus = true
		default:
			return "", false
		}
	}

	var e164 string
	switch {
	case plus:
		e164 = "+" + string(digits)
	case len(digits) > 2 && digits[0] == '0' && digits[1] == '0':
		e164 = "+" + string(digits[2:])
	case len(digits) == 10 && isNANPAreaStart(digits[0]):
		e164 = "+1" + string(digits)
	case len(digits) == 11 && digits[0] == '1' && isNANPAreaStart(digits[1]):
		e164 = "+" + string(digits)
	default:
		return "", false
	}
	if !isE164(e164) {
		return "", false
	}
	return e164, true
}

// isNANPAreaStart reports whether c can begin a NANP area code (2-9).
func isNANPAreaStart(c byte) bool { return c >= '2' && c <= '9' }

// isE164 matches ^\+[1-9]\d{6,14}$ without the regexp package's overhead on a
// hot path.
func isE164(s string) bool {
	if len(s) < 8 || len(s) > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9' {
		return false
	}
	for i := 2; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
