package webhook

import (
	"errors"
	"testing"
)

// Numbers past what PostgreSQL's numeric (and so jsonb) holds make a body
// unstorable: ParseVapi refuses it, and takes every number that fits.
func TestStorableNumbers(t *testing.T) {
	for num, fits := range map[string]bool{
		"0": true, "-12.5E+3": true, "100000000": true, "1.7e308": true,
		"1e130999": true, "1e131000": false, "123e130998": false,
		"0.001e131002": true, "0.001e131004": false,
		"1e-16000": true, "1e-16001": false, "0.5e-15999": true, "0.5e-16000": false,
		"0e-17000": false, "1e999999999999999999999": false, "1e-999999999999999999999": false,
	} {
		if got := numericFits([]byte(num)); got != fits {
			t.Errorf("numericFits(%s) = %v", num, got)
		}
		body := []byte(`{"message":{"type":"status-update","n":[` + num + `],"s":"1e999999 \" 1e999999"}}`)
		_, err := ParseVapi(body)
		if fits != (err == nil) || (err != nil && !errors.Is(err, ErrBadPayload)) {
			t.Errorf("ParseVapi with %s: %v", num, err)
		}
	}
}
