package password

import (
	"bufio"
	_ "embed"
	"strings"
	"sync"
	"unicode/utf8"
)

//go:generate go run gencommon.go

// MinLength is the fewest characters (not bytes) a new password may have by
// default (VOXANNE_PASSWORD_MIN_LENGTH may ask for more; CheckMin), the floor
// NIST SP 800-63B sets for user-chosen passwords. It counts
// characters rather than bytes, or a three-character password in a non-Latin
// script would pass.
const MinLength = 8

// MaxLength is the most bytes a new password may have. The limit is generous
// because long passphrases are good; it exists only so that one request cannot
// make the server hash megabytes.
const MaxLength = 1024

// Reasons returned by Check. They are stable wire values: the HTTP layer passes
// them to clients as GoTrue's weak_password reasons.
const (
	// ReasonLength means the password is shorter than MinLength characters
	// or longer than MaxLength bytes.
	ReasonLength = "length"
	// ReasonCommon means the password is on the built-in list of passwords
	// that attackers try first, whatever its length: GoTrue's "pwned".
	ReasonCommon = "pwned"
)

//go:embed common.txt
var commonTxt string

// commonSet is built on first use so that programs that never call Check do
// not pay for the map.
var commonSet = sync.OnceValue(func() map[string]struct{} {
	set := make(map[string]struct{}, strings.Count(commonTxt, "\n"))
	sc := bufio.NewScanner(strings.NewReader(commonTxt))
	for sc.Scan() {
		if line := sc.Text(); line != "" {
			set[line] = struct{}{}
		}
	}
	return set
})

// Check vets a new password and returns why it is unacceptable, or an empty
// slice if it is acceptable. It returns every reason rather than the first so
// that a client can show them all at once, as GoTrue does. Check is for new
// passwords only; existing passwords are never re-vetted at sign-in, so that
// tightening the policy does not lock anyone out.
func Check(password string) []string { return CheckMin(password, MinLength) }

// CheckMin is Check with min characters at least (MinLength when smaller).
func CheckMin(password string, min int) []string {
	min = max(min, MinLength)
	var reasons []string
	if utf8.RuneCountInString(password) < min || len(password) > MaxLength {
		reasons = append(reasons, ReasonLength)
	}
	// The list is lower case; "Password1" is as guessable as "password1".
	if _, ok := commonSet()[strings.ToLower(password)]; ok {
		reasons = append(reasons, ReasonCommon)
	}
	return reasons
}
