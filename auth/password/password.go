// Package password hashes, verifies and vets user passwords for Voxanne's
// Supabase-compatible auth server.
//
// New hashes are argon2id in the PHC string format, so that every stored hash
// carries the parameters it was made with and the parameters can be raised
// later without invalidating old hashes. Verify also accepts the bcrypt hashes
// that a Supabase (GoTrue) export contains, so that imported users can sign in
// with their old passwords; it then reports that the hash should be replaced,
// which the caller does with Hash while it still holds the plaintext.
//
// Stored hashes are treated as untrusted input: a corrupted or hostile row must
// produce an error, never a panic or an allocation the size of the machine.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/voxanne/voxanne"
)

// Each argon2id computation allocates Params.Memory (19 MiB by default) and
// keeps a core busy; a burst of sign-ins or password changes must not turn into
// gigabytes of memory. So at most one hash per core runs at once; the rest wait
// up to MaxWait for a slot and then fail with ErrBusy.
var (
	slots = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))
	// MaxWait is how long a hash waits for a slot before ErrBusy.
	MaxWait = 2 * time.Second
)

// ErrBusy is returned when every hashing slot stayed taken for MaxWait: the
// caller should answer 429 and let the client retry shortly.
var ErrBusy error = voxanne.ReasonErrorf(voxanne.ERATELIMIT, voxanne.ReasonRateLimited,
	"too many password checks at once; retry in a moment")

// Slots returns how many hashes may run at once.
func Slots() int { return cap(slots) }

// running and peak count the hashes in progress, for tests.
var running, peak atomic.Int32

// acquire takes a hashing slot, waiting at most MaxWait.
func acquire() error {
	select {
	case slots <- struct{}{}:
	default:
		t := time.NewTimer(MaxWait)
		defer t.Stop()
		select {
		case slots <- struct{}{}:
		case <-t.C:
			return ErrBusy
		}
	}
	n := running.Add(1)
	for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
	}
	return nil
}

func release() {
	running.Add(-1)
	<-slots
}

// Params are the argon2id cost parameters. They are written into every hash so
// that Verify can check old hashes after DefaultParams has been raised.
type Params struct {
	// Memory is the memory cost in KiB; it is what makes GPU and ASIC
	// guessing expensive, so it is the parameter to raise first.
	Memory uint32
	// Time is the number of passes over the memory.
	Time uint32
	// Parallelism is the number of lanes. Raising it lets the server use
	// more cores per hash but does not make an attacker's work harder.
	Parallelism uint8
	// SaltLen is the length of the random salt in bytes.
	SaltLen uint32
	// KeyLen is the length of the derived key in bytes.
	KeyLen uint32
}

// DefaultParams are the parameters Hash uses and the floor below which Verify
// asks for a rehash. They are OWASP's minimum recommendation for argon2id
// (19 MiB, two passes, one lane), chosen because the auth server hashes on the
// request path and must stay responsive under a burst of sign-ins. Raise them
// only during program initialisation: Hash, Verify and VerifyDummy read them
// without synchronisation.
var DefaultParams = Params{
	Memory:      19 * 1024,
	Time:        2,
	Parallelism: 1,
	SaltLen:     16,
	KeyLen:      32,
}

// Bounds on parameters, whether they come from a caller or from a stored hash.
// The upper bounds exist so that a hostile or corrupted stored hash cannot make
// one sign-in attempt allocate gigabytes or run for minutes; they are far above
// anything this package would produce.
const (
	maxMemory      = 1 << 20 // KiB, i.e. 1 GiB
	maxTime        = 16
	maxParallelism = 16
	minSaltLen     = 8
	maxSaltLen     = 64
	minKeyLen      = 16
	maxKeyLen      = 64

	// maxBcryptCost bounds imported bcrypt hashes for the same reason: each
	// step doubles the work and cost 31 would take days. GoTrue uses cost 10.
	maxBcryptCost = 16

	// maxEncodedLen is longer than any hash that passes the bounds above, so
	// longer input can be rejected before any parsing work.
	maxEncodedLen = 256
)

// argon2idPrefix starts every PHC string this package writes. Only version 19
// (0x13) is accepted because it is the only one x/crypto/argon2 computes.
const argon2idPrefix = "$argon2id$v=19$"

// ErrMalformedHash is returned, wrapped with a description, when a stored hash
// cannot be parsed or lies outside the accepted bounds. It means the stored
// value is damaged or was never a password hash, not that the password is
// wrong, so callers should log it rather than show it to the user.
var ErrMalformedHash = errors.New("password: malformed hash")

// ErrInvalidParams is returned by HashWith for parameters that Verify would
// refuse, so that no hash is ever written that this package cannot check.
var ErrInvalidParams = errors.New("password: invalid argon2id parameters")

// b64 is the PHC string encoding: standard alphabet without padding. Strict
// mode rejects non-zero trailing bits so each hash has exactly one spelling.
var b64 = base64.RawStdEncoding.Strict()

// Hash returns an argon2id hash of password made with DefaultParams, in PHC
// string format, ready to be stored.
func Hash(password string) (string, error) {
	return HashWith(password, DefaultParams)
}

// HashWith is Hash with explicit parameters. It exists for tests and for
// migrations to stronger parameters; production code should call Hash so that
// all hashes move together when DefaultParams changes.
func HashWith(password string, p Params) (string, error) {
	if err := p.validate(); err != nil {
		return "", err
	}
	if err := acquire(); err != nil {
		return "", err
	}
	defer release()
	return hashUnbounded(password, p)
}

// hashUnbounded computes a hash without taking a slot.
func hashUnbounded(password string, p Params) (string, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: reading salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Parallelism, p.KeyLen)
	return encodeArgon2id(p, salt, key), nil
}

// Verify reports whether password matches the stored hash encoded, which may
// be an argon2id PHC string or a bcrypt hash ($2a$, $2b$ or $2y$) imported from
// Supabase.
//
// needsRehash is only meaningful when ok is true: it asks the caller to store
// Hash(password) in place of encoded, because encoded is bcrypt or uses
// parameters weaker than DefaultParams. A wrong password is ok == false with a
// nil error; err is non-nil only when encoded itself is unusable.
//
// As with any bcrypt implementation, only the first 72 bytes of the password
// count against a bcrypt hash; that is kept so that imported users whose
// password is longer can still sign in, after which the rehash removes the
// limit.
func Verify(password, encoded string) (ok, needsRehash bool, err error) {
	if len(encoded) > maxEncodedLen {
		return false, false, malformed("hash is %d bytes long", len(encoded))
	}
	switch {
	case strings.HasPrefix(encoded, "$argon2id$"):
		p, salt, want, err := decodeArgon2id(encoded)
		if err != nil {
			return false, false, err
		}
		if err := acquire(); err != nil {
			return false, false, err
		}
		defer release()
		got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Parallelism, p.KeyLen)
		if subtle.ConstantTimeCompare(got, want) != 1 {
			return false, false, nil
		}
		return true, p.weakerThan(DefaultParams), nil
	case strings.HasPrefix(encoded, "$2"):
		if _, err := checkBcrypt(encoded); err != nil {
			return false, false, err
		}
		if err := acquire(); err != nil {
			return false, false, err
		}
		defer release()
		err := bcrypt.CompareHashAndPassword([]byte(encoded), []byte(password))
		switch {
		case err == nil:
			return true, true, nil
		case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
			return false, false, nil
		default:
			return false, false, fmt.Errorf("%w: %v", ErrMalformedHash, err)
		}
	default:
		return false, false, malformed("unknown hash algorithm")
	}
}

var (
	dummyOnce sync.Once
	dummyHash string
)

// VerifyDummy does the work of a Verify against a DefaultParams hash and
// discards the result. Call it when the account does not exist so that an
// attacker cannot tell "no such email" from "wrong password" by timing. The
// dummy hash is made on first use rather than at start-up so that programs
// which never sign anyone in do not pay for it. Its error is ErrBusy when no
// hashing slot came free: the caller answers exactly as a real verification
// would have, so a busy server tells nothing about which accounts exist.
func VerifyDummy(password string) error {
	dummyOnce.Do(func() {
		// A random secret means no password can match the dummy, so a bug
		// that used the result could not let anyone in.
		//
		// Hash fails only when DefaultParams are out of bounds, which also
		// breaks every sign-up and so cannot go unnoticed; until it is fixed
		// the dummy verification fails fast.
		// It is made once, outside the slots, so that a busy first moment
		// cannot leave the process without one.
		dummyHash, _ = hashUnbounded(rand.Text(), DefaultParams)
	})
	_, _, err := Verify(password, dummyHash)
	if errors.Is(err, ErrBusy) {
		return err
	}
	return nil
}

// validate applies the bounds that decodeArgon2id applies to stored hashes.
func (p Params) validate() error {
	switch {
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("%w: time %d not in [1, %d]", ErrInvalidParams, p.Time, maxTime)
	case p.Parallelism < 1 || p.Parallelism > maxParallelism:
		return fmt.Errorf("%w: parallelism %d not in [1, %d]", ErrInvalidParams, p.Parallelism, maxParallelism)
	case p.Memory < 8*uint32(p.Parallelism) || p.Memory > maxMemory:
		// RFC 9106 requires at least 8 KiB per lane.
		return fmt.Errorf("%w: memory %d KiB not in [%d, %d]", ErrInvalidParams, p.Memory, 8*uint32(p.Parallelism), maxMemory)
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("%w: salt length %d not in [%d, %d]", ErrInvalidParams, p.SaltLen, minSaltLen, maxSaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("%w: key length %d not in [%d, %d]", ErrInvalidParams, p.KeyLen, minKeyLen, maxKeyLen)
	}
	return nil
}

// weakerThan reports whether any cost of p is below that of q. Parallelism is
// left out because more lanes do not cost an attacker more work.
func (p Params) weakerThan(q Params) bool {
	return p.Memory < q.Memory || p.Time < q.Time || p.SaltLen < q.SaltLen || p.KeyLen < q.KeyLen
}

// encodeArgon2id writes the PHC string; decodeArgon2id accepts exactly the
// strings it can produce.
func encodeArgon2id(p Params, salt, key []byte) string {
	b := make([]byte, 0, 64+b64.EncodedLen(len(salt))+b64.EncodedLen(len(key)))
	b = append(b, argon2idPrefix...)
	b = append(b, "m="...)
	b = strconv.AppendUint(b, uint64(p.Memory), 10)
	b = append(b, ",t="...)
	b = strconv.AppendUint(b, uint64(p.Time), 10)
	b = append(b, ",p="...)
	b = strconv.AppendUint(b, uint64(p.Parallelism), 10)
	b = append(b, '$')
	b = b64.AppendEncode(b, salt)
	b = append(b, '$')
	b = b64.AppendEncode(b, key)
	return string(b)
}

// decodeArgon2id parses $argon2id$v=19$m=M,t=T,p=P$SALT$KEY. It is strict
// (fixed parameter order, no leading zeros, canonical base64) so that each
// accepted string is exactly what encodeArgon2id would write for it, and it
// checks every length before allocating.
func decodeArgon2id(s string) (p Params, salt, key []byte, err error) {
	if len(s) > maxEncodedLen {
		return p, nil, nil, malformed("hash is %d bytes long", len(s))
	}
	rest, ok := strings.CutPrefix(s, argon2idPrefix)
	if !ok {
		if strings.HasPrefix(s, "$argon2id$") {
			return p, nil, nil, malformed("unsupported argon2id version")
		}
		return p, nil, nil, malformed("not an argon2id hash")
	}
	fields := strings.Split(rest, "$")
	if len(fields) != 3 {
		return p, nil, nil, malformed("argon2id hash has %d fields after the version, want 3", len(fields))
	}
	params := strings.Split(fields[0], ",")
	if len(params) != 3 {
		return p, nil, nil, malformed("argon2id hash has %d parameters, want m, t and p", len(params))
	}
	m, err := decimalParam(params[0], "m=", maxMemory)
	if err != nil {
		return p, nil, nil, err
	}
	t, err := decimalParam(params[1], "t=", maxTime)
	if err != nil {
		return p, nil, nil, err
	}
	par, err := decimalParam(params[2], "p=", maxParallelism)
	if err != nil {
		return p, nil, nil, err
	}
	p = Params{Memory: m, Time: t, Parallelism: uint8(par)}

	if salt, err = decodeBounded(fields[1], "salt", minSaltLen, maxSaltLen); err != nil {
		return p, nil, nil, err
	}
	if key, err = decodeBounded(fields[2], "key", minKeyLen, maxKeyLen); err != nil {
		return p, nil, nil, err
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	if err := p.validate(); err != nil {
		return p, nil, nil, fmt.Errorf("%w: %v", ErrMalformedHash, err)
	}
	return p, salt, key, nil
}

// decimalParam parses "name=digits" with no sign and no leading zeros.
func decimalParam(s, name string, limit uint32) (uint32, error) {
	digits, ok := strings.CutPrefix(s, name)
	if !ok {
		return 0, malformed("argon2id parameter %q does not start with %q", s, name)
	}
	if digits == "" || len(digits) > 10 || (digits[0] == '0' && len(digits) > 1) {
		return 0, malformed("argon2id parameter %q is not 1 to 10 digits without leading zeros", s)
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, malformed("argon2id parameter %q is not 1 to 10 digits without leading zeros", s)
		}
	}
	v, err := strconv.ParseUint(digits, 10, 32)
	if err != nil || v > uint64(limit) {
		return 0, malformed("argon2id parameter %q exceeds %d", s, limit)
	}
	return uint32(v), nil
}

// decodeBounded checks the encoded length before decoding so that the
// allocation is bounded by maxBytes whatever the input.
func decodeBounded(s, what string, minBytes, maxBytes int) ([]byte, error) {
	if len(s) < b64.EncodedLen(minBytes) || len(s) > b64.EncodedLen(maxBytes) {
		return nil, malformed("argon2id %s has %d base64 characters, too few or too many for %d to %d bytes", what, len(s), minBytes, maxBytes)
	}
	// encoding/base64 skips '\r' and '\n' even in strict mode, which would let
	// one hash have many spellings, so the alphabet is checked first.
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return nil, malformed("argon2id %s has a character outside the base64 alphabet", what)
		}
	}
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, malformed("argon2id %s: %v", what, err)
	}
	if len(b) < minBytes || len(b) > maxBytes {
		return nil, malformed("argon2id %s is %d bytes, want %d to %d", what, len(b), minBytes, maxBytes)
	}
	return b, nil
}

// checkBcrypt validates a bcrypt hash before it reaches x/crypto/bcrypt, which
// would otherwise accept variants we do not want ($2x$ marks hashes made by a
// buggy implementation) and run any cost up to 31. It returns the cost.
func checkBcrypt(s string) (int, error) {
	// $2?$CC$ followed by 22 characters of salt and 31 of hash.
	const bcryptLen = 60
	if len(s) != bcryptLen {
		return 0, malformed("bcrypt hash is %d bytes, want %d", len(s), bcryptLen)
	}
	switch s[:4] {
	case "$2a$", "$2b$", "$2y$":
	default:
		return 0, malformed("unsupported bcrypt variant %q", s[:4])
	}
	if s[4] < '0' || s[4] > '9' || s[5] < '0' || s[5] > '9' || s[6] != '$' {
		return 0, malformed("bcrypt cost is not two digits")
	}
	cost := int(s[4]-'0')*10 + int(s[5]-'0')
	if cost < bcrypt.MinCost || cost > maxBcryptCost {
		return 0, malformed("bcrypt cost %d not in [%d, %d]", cost, bcrypt.MinCost, maxBcryptCost)
	}
	for i := 7; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '/') {
			return 0, malformed("bcrypt hash has a character outside its alphabet")
		}
	}
	return cost, nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedHash, fmt.Sprintf(format, args...))
}
