package totp

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// RFC 6238 Appendix B: 8-digit TOTPs for the three hashes, each with its own
// seed, at the published times.
func TestRFC6238Vectors(t *testing.T) {
	seeds := map[Algorithm][]byte{
		SHA1:   []byte("12345678901234567890"),
		SHA256: []byte("12345678901234567890123456789012"),
		SHA512: []byte("1234567890123456789012345678901234567890123456789012345678901234"),
	}
	vectors := []struct {
		unix                 int64
		sha1, sha256, sha512 string
	}{
		{59, "94287082", "46119246", "90693936"},
		{1111111109, "07081804", "68084774", "25091201"},
		{1111111111, "14050471", "67062674", "99943326"},
		{1234567890, "89005924", "91819424", "93441116"},
		{2000000000, "69279037", "90698825", "38618901"},
		{20000000000, "65353130", "77737706", "47863826"},
	}
	for _, v := range vectors {
		step := Step(time.Unix(v.unix, 0))
		for alg, want := range map[Algorithm]string{SHA1: v.sha1, SHA256: v.sha256, SHA512: v.sha512} {
			if got := HOTP(alg, seeds[alg], step, 8); got != want {
				t.Errorf("T=%d alg %d: %s, want %s", v.unix, alg, got, want)
			}
		}
	}
}

// RFC 4226 Appendix D: the 6-digit HOTP values of counters 0 to 9.
func TestRFC4226Vectors(t *testing.T) {
	want := []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}
	for c, w := range want {
		if got := HOTP(SHA1, []byte("12345678901234567890"), int64(c), 6); got != w {
			t.Errorf("counter %d: %s, want %s", c, got, w)
		}
	}
}

// A code is accepted in its own step and one step either side, never two
// away; a wrong code, a code of another secret or a malformed one never.
func TestValidateWindow(t *testing.T) {
	secret := []byte("12345678901234567890")
	now := time.Unix(1111111111, 0)
	code := Code(secret, now)
	for _, c := range []struct {
		at   time.Time
		ok   bool
		step int64
	}{
		{now, true, Step(now)},
		{now.Add(-Period * time.Second), true, Step(now)},
		{now.Add(Period * time.Second), true, Step(now)},
		{now.Add(-2 * Period * time.Second), false, 0},
		{now.Add(2 * Period * time.Second), false, 0},
	} {
		step, ok := Validate(secret, code, c.at)
		if ok != c.ok || (ok && step != c.step) {
			t.Errorf("at %v: ok %v step %d, want %v %d", c.at, ok, step, c.ok, c.step)
		}
	}
	wrong := []byte(code)
	wrong[0] = '0' + (wrong[0]-'0'+1)%10
	for _, bad := range []string{string(wrong), "", "12345", "1234567", "abcdef", Code([]byte("another secret of twenty"), now)} {
		if _, ok := Validate(secret, bad, now); ok {
			t.Errorf("code %q accepted", bad)
		}
	}
}

func TestSecretAndURI(t *testing.T) {
	s := NewSecret()
	if len(s) != SecretSize {
		t.Fatalf("secret of %d bytes", len(s))
	}
	if other := NewSecret(); string(other) == string(s) {
		t.Fatal("two secrets are equal")
	}
	enc := EncodeSecret(s)
	if strings.Contains(enc, "=") || len(enc) != 32 {
		t.Errorf("encoded secret %q", enc)
	}
	back, err := DecodeSecret(strings.ToLower(enc))
	if err != nil || string(back) != string(s) {
		t.Errorf("decode: %v", err)
	}
	if _, err := DecodeSecret("not base32!"); err == nil {
		t.Error("a bad secret decoded")
	}
	u, err := url.Parse(URI("clinic.example", "ann@clinic.example", s))
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" {
		t.Fatalf("uri %v %v", u, err)
	}
	if u.Query().Get("secret") != enc || u.Query().Get("issuer") != "clinic.example" || u.Path != "/clinic.example:ann@clinic.example" {
		t.Errorf("uri %s", u)
	}
}

// The QR code is an SVG document whose modules form a square with the finder
// patterns' dark corners, and another text gives another code.
func TestQRCodeSVG(t *testing.T) {
	uri := URI("clinic.example", "ann@clinic.example", []byte("12345678901234567890"))
	svg, err := QRCodeSVG(uri)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(svg, `<svg xmlns="http://www.w3.org/2000/svg"`) || !strings.HasSuffix(svg, "</svg>") {
		t.Fatalf("not an SVG document: %.80s", svg)
	}
	// The top-left finder pattern starts right after the 4-module quiet zone.
	if !strings.Contains(svg, `d="M4 4h1v1h-1z`) {
		t.Errorf("no finder pattern at the quiet zone's corner: %.200s", svg)
	}
	other, _ := QRCodeSVG(URI("clinic.example", "bob@clinic.example", []byte("12345678901234567890")))
	if other == svg {
		t.Error("two URIs give the same QR code")
	}
}
