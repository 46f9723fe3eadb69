package password

import (
	"bufio"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// Hashes made by an independent argon2id implementation (the Rust argon2 crate
// via @node-rs/argon2) so that interop with hashes imported from other stacks
// is tested, not just agreement of this package with itself.
const (
	// "correct horse battery staple", DefaultParams, salt "voxanne-kat-salt".
	katDefault = "$argon2id$v=19$m=19456,t=2,p=1$dm94YW5uZS1rYXQtc2FsdA$VbGJKTTh4sOE24rwXeeIBfmSY5n1nVF4i+/xSWcPHTk"
	// "password", m=64 t=1 p=1, 8-byte salt, 16-byte key: weak and fast.
	katWeak = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$cWBGus0OsbGgiqOo4og34w"
	// "hunter2hunter2", m=65536 t=3 p=4: stronger than DefaultParams.
	katStrong = "$argon2id$v=19$m=65536,t=3,p=4$dm94YW5uZS1rYXQtc2FsdA$Dw+HBGu4WnaLxGPjlYV+2rUyvo898BNhQjypKg+iv68"
	// The classic crypt_blowfish test vector for "U*U" at cost 5.
	katBcrypt = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
)

func mustVerify(t *testing.T, password, encoded string) (ok, needsRehash bool) {
	t.Helper()
	ok, needsRehash, err := Verify(password, encoded)
	if err != nil {
		t.Fatalf("Verify(%q, %q) error: %v", password, encoded, err)
	}
	return ok, needsRehash
}

func TestHashRoundTrip(t *testing.T) {
	const pw = "correct horse battery staple"
	h, err := Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q does not carry the default parameters", h)
	}
	if ok, rehash := mustVerify(t, pw, h); !ok || rehash {
		t.Errorf("Verify(right password) = ok %v, needsRehash %v; want true, false", ok, rehash)
	}
	h2, err := Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	if h == h2 {
		t.Error("two hashes of one password are equal; salt is not random")
	}
	p, salt, key, err := decodeArgon2id(h)
	if err != nil {
		t.Fatal(err)
	}
	if p != DefaultParams || len(salt) != 16 || len(key) != 32 {
		t.Errorf("decoded params %+v, salt %d bytes, key %d bytes", p, len(salt), len(key))
	}
}

func TestHashEmptyAndUnicode(t *testing.T) {
	for _, pw := range []string{"", "пароль-日本語-🔑", strings.Repeat("x", MaxLength)} {
		h, err := Hash(pw)
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := mustVerify(t, pw, h); !ok {
			t.Errorf("password %q does not verify against its own hash", pw)
		}
		if ok, _ := mustVerify(t, pw+"x", h); ok {
			t.Errorf("password %q+x verifies", pw)
		}
	}
}

func TestVerifyWrongPassword(t *testing.T) {
	h, err := Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"", "correct horse battery stapl", "Correct horse battery staple", "correct horse battery staple "} {
		if ok, rehash := mustVerify(t, pw, h); ok || rehash {
			t.Errorf("Verify(%q) = ok %v, needsRehash %v; want false, false", pw, ok, rehash)
		}
	}
}

func TestVerifyInterop(t *testing.T) {
	tests := []struct {
		name, password, encoded string
		rehash                  bool
	}{
		{"default", "correct horse battery staple", katDefault, false},
		{"weak", "password", katWeak, true},
		{"strong", "hunter2hunter2", katStrong, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash := mustVerify(t, tt.password, tt.encoded)
			if !ok || rehash != tt.rehash {
				t.Errorf("Verify = ok %v, needsRehash %v; want true, %v", ok, rehash, tt.rehash)
			}
			if ok, _ := mustVerify(t, tt.password+"!", tt.encoded); ok {
				t.Error("wrong password verifies")
			}
		})
	}
}

func TestVerifyBcrypt(t *testing.T) {
	const pw = "supabase-imported-password"
	b, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	h := string(b)
	if ok, rehash := mustVerify(t, pw, h); !ok || !rehash {
		t.Errorf("Verify(bcrypt, right) = ok %v, needsRehash %v; want true, true", ok, rehash)
	}
	if ok, rehash := mustVerify(t, pw+"x", h); ok || rehash {
		t.Errorf("Verify(bcrypt, wrong) = ok %v, needsRehash %v; want false, false", ok, rehash)
	}
	// Supabase exports may carry any of the three variants; for ASCII
	// passwords they are the same function, so the same hash verifies under
	// every prefix.
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		for enc, pw := range map[string]string{prefix + h[4:]: pw, prefix + katBcrypt[4:]: "U*U"} {
			if ok, rehash := mustVerify(t, pw, enc); !ok || !rehash {
				t.Errorf("Verify(%q) = ok %v, needsRehash %v; want true, true", enc, ok, rehash)
			}
		}
	}
}

func TestVerifyWeakArgon2NeedsRehash(t *testing.T) {
	weaker := []Params{
		{Memory: 64, Time: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 19456, Time: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 19456, Time: 2, Parallelism: 1, SaltLen: 8, KeyLen: 32},
		{Memory: 19456, Time: 2, Parallelism: 1, SaltLen: 16, KeyLen: 16},
	}
	for _, p := range weaker {
		h, err := HashWith("hunter2hunter2", p)
		if err != nil {
			t.Fatal(err)
		}
		if ok, rehash := mustVerify(t, "hunter2hunter2", h); !ok || !rehash {
			t.Errorf("%+v: Verify = ok %v, needsRehash %v; want true, true", p, ok, rehash)
		}
	}
	// More lanes are not weaker, so they must not churn hashes.
	p := DefaultParams
	p.Parallelism = 2
	h, err := HashWith("hunter2hunter2", p)
	if err != nil {
		t.Fatal(err)
	}
	if ok, rehash := mustVerify(t, "hunter2hunter2", h); !ok || rehash {
		t.Errorf("p=2: Verify = ok %v, needsRehash %v; want true, false", ok, rehash)
	}
}

func TestVerifyTampered(t *testing.T) {
	h, err := Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndexByte(h, '$')
	j := strings.LastIndexByte(h[:i], '$')
	// Changing the first character of a base64 field keeps it canonical,
	// so these reach the comparison rather than the parser.
	flip := func(s string, at int) string {
		c := byte('A')
		if s[at] == 'A' {
			c = 'B'
		}
		return s[:at] + string(c) + s[at+1:]
	}
	tests := map[string]string{
		"key":    flip(h, i+1),
		"salt":   flip(h, j+1),
		"memory": strings.Replace(h, "m=19456", "m=19457", 1),
		"time":   strings.Replace(h, "t=2", "t=3", 1),
	}
	for name, enc := range tests {
		if enc == h {
			t.Fatalf("%s: tampering did not change the hash", name)
		}
		if ok, _ := mustVerify(t, "correct horse battery staple", enc); ok {
			t.Errorf("%s: tampered hash %q verifies", name, enc)
		}
	}
}

func TestVerifyMalformed(t *testing.T) {
	const salt, key = "c2FsdHNhbHRzYWx0c2FsdA", "cWBGus0OsbGgiqOo4og34wcWBGus0OsbGgiqOo4og34w"
	tests := []struct{ name, encoded string }{
		{"empty", ""},
		{"plaintext", "hunter2hunter2"},
		{"dollar only", "$"},
		{"argon2i", "$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + key},
		{"argon2d", "$argon2d$v=19$m=19456,t=2,p=1$" + salt + "$" + key},
		{"scrypt", "$scrypt$ln=16,r=8,p=1$" + salt + "$" + key},
		{"prefix only", "$argon2id$"},
		{"old version", "$argon2id$v=16$m=19456,t=2,p=1$" + salt + "$" + key},
		{"no version", "$argon2id$m=19456,t=2,p=1$" + salt + "$" + key},
		{"missing key", "$argon2id$v=19$m=19456,t=2,p=1$" + salt},
		{"missing salt and key", "$argon2id$v=19$m=19456,t=2,p=1"},
		{"empty key", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$"},
		{"extra field", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key + "$" + key},
		{"missing p", "$argon2id$v=19$m=19456,t=2$" + salt + "$" + key},
		{"extra param", "$argon2id$v=19$m=19456,t=2,p=1,k=1$" + salt + "$" + key},
		{"param order", "$argon2id$v=19$t=2,m=19456,p=1$" + salt + "$" + key},
		{"empty m", "$argon2id$v=19$m=,t=2,p=1$" + salt + "$" + key},
		{"signed m", "$argon2id$v=19$m=+19456,t=2,p=1$" + salt + "$" + key},
		{"negative t", "$argon2id$v=19$m=19456,t=-2,p=1$" + salt + "$" + key},
		{"leading zero", "$argon2id$v=19$m=019456,t=2,p=1$" + salt + "$" + key},
		{"hex m", "$argon2id$v=19$m=0x4c00,t=2,p=1$" + salt + "$" + key},
		{"huge m", "$argon2id$v=19$m=99999999999999999999,t=2,p=1$" + salt + "$" + key},
		{"m over uint32", "$argon2id$v=19$m=4294967296,t=2,p=1$" + salt + "$" + key},
		{"m over cap", "$argon2id$v=19$m=1048577,t=2,p=1$" + salt + "$" + key},
		{"m below 8p", "$argon2id$v=19$m=15,t=1,p=2$" + salt + "$" + key},
		{"zero m", "$argon2id$v=19$m=0,t=2,p=1$" + salt + "$" + key},
		{"zero t", "$argon2id$v=19$m=19456,t=0,p=1$" + salt + "$" + key},
		{"t over cap", "$argon2id$v=19$m=19456,t=17,p=1$" + salt + "$" + key},
		{"zero p", "$argon2id$v=19$m=19456,t=2,p=0$" + salt + "$" + key},
		{"p over cap", "$argon2id$v=19$m=19456,t=2,p=17$" + salt + "$" + key},
		{"p over uint8", "$argon2id$v=19$m=19456,t=2,p=257$" + salt + "$" + key},
		{"bad base64 salt", "$argon2id$v=19$m=19456,t=2,p=1$!!!!!!!!!!!!!!!!!!!!!!$" + key},
		{"bad base64 key", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + strings.Repeat("*", 43)},
		{"url base64", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + strings.Repeat("_", 43)},
		{"newline in base64", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key[:20] + "\r\n" + key[20:]},
		{"padded base64", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "==$" + key},
		{"non-canonical base64", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdB$" + key},
		{"salt too short", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$" + key},
		{"salt too long", "$argon2id$v=19$m=19456,t=2,p=1$" + strings.Repeat("A", 100) + "$" + key},
		{"key too short", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$cWBGus0Osb"},
		{"key too long", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + strings.Repeat("A", 88)},
		{"way too long", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + strings.Repeat("A", 100000)},
		{"bcrypt 2x", "$2x$" + katBcrypt[4:]},
		{"bcrypt 2", "$2$05$" + katBcrypt[7:] + "C"},
		{"bcrypt 3a", "$3a$" + katBcrypt[4:]},
		{"bcrypt cost 3", "$2a$03$" + katBcrypt[7:]},
		{"bcrypt cost 31", "$2a$31$" + katBcrypt[7:]},
		{"bcrypt cost 17", "$2b$17$" + katBcrypt[7:]},
		{"bcrypt cost letters", "$2a$1a$" + katBcrypt[7:]},
		{"bcrypt short", katBcrypt[:59]},
		{"bcrypt long", katBcrypt + "C"},
		{"bcrypt alphabet", katBcrypt[:59] + "+"},
		{"bcrypt no cost separator", "$2a$05C" + katBcrypt[7:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			ok, rehash, err := Verify("password", tt.encoded)
			if err == nil || !errors.Is(err, ErrMalformedHash) {
				t.Errorf("Verify(%q) error = %v, want ErrMalformedHash", tt.encoded, err)
			}
			if ok || rehash {
				t.Errorf("Verify(%q) = ok %v, needsRehash %v alongside an error", tt.encoded, ok, rehash)
			}
			// Rejection must come from the parser, before any hashing.
			if d := time.Since(start); d > 200*time.Millisecond {
				t.Errorf("rejecting %q took %v", tt.name, d)
			}
		})
	}
}

func TestHashWithInvalidParams(t *testing.T) {
	tests := map[string]Params{
		"zero":           {},
		"zero time":      {Memory: 19456, Time: 0, Parallelism: 1, SaltLen: 16, KeyLen: 32},
		"zero lanes":     {Memory: 19456, Time: 2, Parallelism: 0, SaltLen: 16, KeyLen: 32},
		"memory cap":     {Memory: maxMemory + 1, Time: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32},
		"memory per p":   {Memory: 31, Time: 1, Parallelism: 4, SaltLen: 16, KeyLen: 32},
		"short salt":     {Memory: 19456, Time: 2, Parallelism: 1, SaltLen: 4, KeyLen: 32},
		"huge key":       {Memory: 19456, Time: 2, Parallelism: 1, SaltLen: 16, KeyLen: 1 << 30},
		"too many lanes": {Memory: 19456, Time: 2, Parallelism: 255, SaltLen: 16, KeyLen: 32},
	}
	for name, p := range tests {
		if h, err := HashWith("x", p); !errors.Is(err, ErrInvalidParams) {
			t.Errorf("%s: HashWith(%+v) = %q, %v; want ErrInvalidParams", name, p, h, err)
		}
	}
}

func TestDefaultParamsMeetOWASP(t *testing.T) {
	p := DefaultParams
	if p.Memory < 19456 || p.Time < 2 || p.Parallelism < 1 || p.SaltLen < 16 || p.KeyLen < 32 {
		t.Errorf("DefaultParams %+v are below OWASP's argon2id minimum", p)
	}
	if err := p.validate(); err != nil {
		t.Errorf("DefaultParams are out of bounds: %v", err)
	}
}

func TestVerifyDummy(t *testing.T) {
	h, err := Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	VerifyDummy("warm up the lazily made dummy hash")
	if _, _, err := Verify("x", dummyHash); err != nil {
		t.Fatalf("dummy hash %q does not parse: %v", dummyHash, err)
	}
	if !strings.HasPrefix(dummyHash, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("dummy hash %q does not use DefaultParams", dummyHash)
	}
	if testing.Short() {
		return
	}
	// The minimum of several runs is robust to a busy machine; the bound is
	// loose because its job is to catch a dummy that skips the work.
	fastest := func(f func()) time.Duration {
		best := time.Duration(1<<63 - 1)
		for range 5 {
			start := time.Now()
			f()
			best = min(best, time.Since(start))
		}
		return best
	}
	genuine := fastest(func() { _, _, _ = Verify("wrong password", h) })
	dummy := fastest(func() { VerifyDummy("wrong password") })
	if dummy < genuine/3 || dummy > genuine*3 {
		t.Errorf("VerifyDummy took %v, a real Verify %v; want them comparable", dummy, genuine)
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name, password string
		want           []string
	}{
		{"empty", "", []string{ReasonLength}},
		{"short", "abc12!", []string{ReasonLength}},
		{"seven", "Tr0ub4d", []string{ReasonLength}},
		{"seven runes, many bytes", "пароль7", []string{ReasonLength}},
		{"eight runes, many bytes", "日本語のパスワード", nil},
		{"too long", strings.Repeat("a1", MaxLength/2+1), []string{ReasonLength}},
		{"max length", strings.Repeat("a1b2", MaxLength/4), nil},
		{"common", "password", []string{ReasonCommon}},
		{"common digits", "12345678", []string{ReasonCommon}},
		{"common mixed case", "PassWord1", []string{ReasonCommon}},
		{"common keyboard", "qwertyuiop", []string{ReasonCommon}},
		{"common season", "Summer2024!", []string{ReasonCommon}},
		{"common iloveyou", "iloveyou1", []string{ReasonCommon}},
		{"ok passphrase", "correct horse battery staple", nil},
		{"ok random", "vT9#qL2!mZ", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Check(tt.password); !slices.Equal(got, tt.want) {
				t.Errorf("Check(%q) = %q, want %q", tt.password, got, tt.want)
			}
		})
	}
}

// TestCommonList keeps the embedded list in the shape Check relies on: lower
// case (Check lowers its input), no shorter than MinLength (shorter ones are
// dead weight), and sorted and unique so that diffs of regenerations are
// readable.
func TestCommonList(t *testing.T) {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(commonTxt))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) < 1000 {
		t.Errorf("common.txt has %d entries, want at least 1000", len(lines))
	}
	for i, l := range lines {
		if l != strings.ToLower(l) || l != strings.TrimSpace(l) || utf8.RuneCountInString(l) < MinLength || !utf8.ValidString(l) {
			t.Errorf("common.txt line %d %q is not a trimmed lower-case entry of at least %d characters", i+1, l, MinLength)
		}
		if i > 0 && lines[i-1] >= l {
			t.Errorf("common.txt line %d %q is out of order or duplicated", i+1, l)
		}
	}
	if len(commonSet()) != len(lines) {
		t.Errorf("commonSet has %d entries, file %d", len(commonSet()), len(lines))
	}
}

// fuzzSeeds are also stored under testdata/fuzz/FuzzVerify so that plain
// `go test` runs them without the fuzzing engine.
var fuzzSeeds = []string{
	katWeak,
	katDefault,
	katBcrypt,
	"",
	"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$",
	"$argon2id$v=19$m=4294967295,t=4294967295,p=255$c2FsdHNhbHQ$cWBGus0OsbGgiqOo4og34w",
	"$argon2id$v=19$m=64,t=1,p=1$$$",
	"$2a$31$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
	"$2a$04$",
}

// FuzzVerify feeds arbitrary stored hashes to Verify. Beyond "never panics" it
// checks that the argon2id parser accepts only canonical strings and that
// errors never come with ok or needsRehash set. Inputs that parse but would be
// slow to hash are checked by the parser only, to keep the fuzzer fast; the
// parameter caps that bound them are tested in TestVerifyMalformed.
func FuzzVerify(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, encoded string) {
		p, salt, key, perr := decodeArgon2id(encoded)
		if perr == nil {
			if got := encodeArgon2id(p, salt, key); got != encoded {
				t.Fatalf("decodeArgon2id accepted non-canonical %q (canonical %q)", encoded, got)
			}
			if p.Memory > 256 || p.Time > 2 {
				return
			}
		} else if !errors.Is(perr, ErrMalformedHash) {
			t.Fatalf("decodeArgon2id(%q) error %v is not ErrMalformedHash", encoded, perr)
		}
		if cost, err := checkBcrypt(encoded); err == nil && cost > 5 {
			return
		}
		ok, rehash, err := Verify("password", encoded)
		if err != nil {
			if ok || rehash {
				t.Fatalf("Verify(%q) = %v, %v with error %v", encoded, ok, rehash, err)
			}
			if !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("Verify(%q) error %v is not ErrMalformedHash", encoded, err)
			}
		}
		if strings.HasPrefix(encoded, "$argon2id$") && (perr == nil) != (err == nil) {
			t.Fatalf("parser error %v but Verify error %v for %q", perr, err, encoded)
		}
		if !ok && rehash {
			t.Fatalf("Verify(%q) asks to rehash a password that did not match", encoded)
		}
	})
}

func BenchmarkHash(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Hash("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	h, err := Hash("correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, _, err := Verify("correct horse battery staple", h); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	Check("warm up the lazily built set")
	b.ReportAllocs()
	for b.Loop() {
		Check("Correct Horse Battery Staple")
	}
}
