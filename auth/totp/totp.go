// Package totp implements time-based one-time passwords (RFC 6238, on HOTP of
// RFC 4226) as authenticator apps use them: HMAC-SHA1, 6 digits, 30-second
// steps, and otpauth:// URIs for enrolment. It is pure: storing secrets and
// remembering used steps is the caller's work.
package totp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"hash"
	"net/url"
	"strings"
	"time"
)

// Defaults of authenticator apps, which is what Voxanne issues.
const (
	Period = 30 // seconds per step
	Digits = 6
	// SecretSize is the secret's length in bytes: 160 bits, RFC 4226's
	// recommendation for HMAC-SHA1.
	SecretSize = 20
)

// Algorithm is the HMAC hash of a TOTP.
type Algorithm int

// The hashes RFC 6238 defines; authenticator apps use SHA1.
const (
	SHA1 Algorithm = iota
	SHA256
	SHA512
)

func (a Algorithm) new() func() hash.Hash {
	switch a {
	case SHA256:
		return sha256.New
	case SHA512:
		return sha512.New
	}
	return sha1.New
}

// encoding is base32 without padding, as otpauth URIs write secrets.
var encoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewSecret returns a random secret.
func NewSecret() []byte {
	b := make([]byte, SecretSize)
	_, _ = rand.Read(b) // never fails on supported platforms
	return b
}

// EncodeSecret writes a secret as authenticator apps take it: base32, no
// padding.
func EncodeSecret(secret []byte) string { return encoding.EncodeToString(secret) }

// DecodeSecret reads a base32 secret (case and padding are ignored).
func DecodeSecret(s string) ([]byte, error) {
	s = strings.TrimRight(strings.ToUpper(strings.ReplaceAll(s, " ", "")), "=")
	b, err := encoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, errors.New("totp: secret is not base32")
	}
	return b, nil
}

// Step is the time step of t: Unix seconds / Period.
func Step(t time.Time) int64 { return t.Unix() / Period }

// HOTP computes RFC 4226's HOTP value of counter with digits digits.
func HOTP(alg Algorithm, secret []byte, counter int64, digits int) string {
	m := hmac.New(alg.new(), secret)
	var c [8]byte
	binary.BigEndian.PutUint64(c[:], uint64(counter))
	m.Write(c[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	out := []byte(strings.Repeat("0", digits))
	v := bin % mod
	for i := digits - 1; i >= 0; i-- {
		out[i] = byte('0' + v%10)
		v /= 10
	}
	return string(out)
}

// Code is the 6-digit SHA1 code of secret at t.
func Code(secret []byte, t time.Time) string { return HOTP(SHA1, secret, Step(t), Digits) }

// Validate checks code against the steps of t and one step either side (a
// clock a little off, a code typed as it changed) and returns the step it
// matched, so that the caller can refuse that step and the ones before it
// from then on. Every candidate is compared in constant time.
func Validate(secret []byte, code string, t time.Time) (step int64, ok bool) {
	if len(code) != Digits {
		return 0, false
	}
	now := Step(t)
	for s := now - 1; s <= now+1; s++ {
		if subtle.ConstantTimeCompare([]byte(HOTP(SHA1, secret, s, Digits)), []byte(code)) == 1 && !ok {
			step, ok = s, true
		}
	}
	return step, ok
}

// URI is the otpauth:// URI of a TOTP factor, as authenticator apps read it
// from a QR code (Google Authenticator's Key Uri Format).
func URI(issuer, account string, secret []byte) string {
	label := url.PathEscape(issuer) + ":" + url.PathEscape(account)
	q := url.Values{}
	q.Set("secret", EncodeSecret(secret))
	q.Set("issuer", issuer)
	q.Set("algorithm", "SHA1")
	q.Set("digits", "6")
	q.Set("period", "30")
	return "otpauth://totp/" + label + "?" + q.Encode()
}
