package webhook

import "testing"

func TestNormalizeE164(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" means not a number
	}{
		{"+14155550132", "+14155550132"},
		{"+1 (415) 555-0132", "+14155550132"},
		{"(415) 555-0132", "+14155550132"},
		{"415.555.0132", "+14155550132"},
		{"4155550132", "+14155550132"},
		{"555-123-4567", "+15551234567"},
		{"14155550132", "+14155550132"},
		{"1-415-555-0132", "+14155550132"},
		{" +44 20 7946 0958 ", "+442079460958"},
		{"0044 20 7946 0958", "+442079460958"},
		{"+33 6 12 34 56 78", "+33612345678"},
		{"tel:+14155550132", "+14155550132"},
		{"+1234567", "+1234567"},                 // 7 digits, the minimum
		{"+123456789012345", "+123456789012345"}, // 15 digits, the maximum
		{"+1234567890123456", ""},                // 16 digits
		{"+123456", ""},                          // 6 digits
		{"+0123456789", ""},                      // leading zero
		{"0612345678", ""},                       // French national number, not NANP
		{"1234567890", ""},                       // area code cannot start with 1
		{"11234567890", ""},                      // ditto after the country code
		{"24155550132", ""},                      // 11 digits not starting with 1
		{"020 7946 0958", ""},                    // national UK number
		{"5550132", ""},                          // local number without area code
		{"", ""},
		{"+", ""},
		{"00", ""},
		{"anonymous", ""},
		{"Anonymous", ""},
		{"restricted", ""},
		{"unknown", ""},
		{"266696687", ""}, // "ANONYMOUS" on a keypad, as some carriers send
		{"sip:+14155550132@sip.example.com", ""},
		{"sip:alice@example.com", ""},
		{"+1415555013a", ""},
		{"++14155550132", ""},
		{"1+4155550132", ""},
		{"+1 415 555 0132 ext. 12", ""},
		{"４１５５５５０１３２", ""}, // full-width digits
	}
	for _, tt := range tests {
		got, ok := NormalizeE164(tt.in)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("NormalizeE164(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.want != "")
		}
	}
}
