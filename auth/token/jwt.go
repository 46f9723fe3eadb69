package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Defaults used by Verifier when the corresponding field is left zero.
const (
	// DefaultAudience is GoTrue's audience for user tokens.
	DefaultAudience = "authenticated"
	// DefaultLeeway absorbs clock skew between instances and clients.
	DefaultLeeway = 30 * time.Second
	// DefaultMaxTokenSize bounds the work an unauthenticated request can cause.
	// GoTrue tokens are well under 2 KiB even with generous user_metadata.
	DefaultMaxTokenSize = 16 << 10
)

// header is the JOSE header. Members other than these, notably jku, x5u and
// jwk, are deliberately not even decoded: a token must never choose the key
// that verifies it.
type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid,omitempty"`
	Typ string `json:"typ,omitempty"`
	// Crit is decoded only to refuse tokens that carry it: RFC 7515 §4.1.11
	// requires rejecting critical extensions we do not implement, and we
	// implement none.
	Crit json.RawMessage `json:"crit,omitempty"`
}

// b64 is strict so that each token has exactly one encoding; a lenient decoder
// would let the same signature be written several ways.
var b64 = base64.RawURLEncoding.Strict()

// Sign returns the compact JWS of c signed with k under the header
// {"alg":"ES256","typ":"JWT","kid":k.ID}. It refuses claims without exp,
// because a token that never expires could never be verified by Verify and
// would only be a liability if it leaked.
func Sign(k *Key, c *Claims) (string, error) {
	switch {
	case k == nil || k.Private == nil:
		return "", errors.New("token: sign: no private key")
	case k.Alg != AlgES256 || k.Private.Curve != elliptic.P256():
		return "", fmt.Errorf("token: sign: key %q is not an ES256 key", k.ID)
	case k.ID == "":
		return "", errors.New("token: sign: key has no ID")
	case c == nil:
		return "", errors.New("token: sign: no claims")
	case c.ExpiresAt == 0:
		return "", errors.New("token: sign: claims have no exp")
	}
	hdr, err := json.Marshal(header{Alg: AlgES256, Kid: k.ID, Typ: "JWT"})
	if err != nil {
		return "", fmt.Errorf("token: sign: %w", err)
	}
	payload, err := marshalClaims(c)
	if err != nil {
		return "", fmt.Errorf("token: sign: %w", err)
	}
	enc := base64.RawURLEncoding
	hl, pl := enc.EncodedLen(len(hdr)), enc.EncodedLen(len(payload))
	// An ES256 signature is always 64 bytes, so the whole token fits one buffer.
	out := make([]byte, hl+1+pl+1+enc.EncodedLen(64))
	enc.Encode(out, hdr)
	out[hl] = '.'
	enc.Encode(out[hl+1:], payload)
	signingInput := out[:hl+1+pl]
	sig, err := jwt.SigningMethodES256.Sign(string(signingInput), k.Private)
	if err != nil {
		return "", fmt.Errorf("token: sign: %w", err)
	}
	if len(sig) != 64 {
		return "", errors.New("token: sign: unexpected signature length")
	}
	out[len(signingInput)] = '.'
	enc.Encode(out[len(signingInput)+1:], sig)
	return string(out), nil
}

// Verifier checks access tokens. Its fields are read-only once Verify is in use;
// the key lookups are functions so that key rotation and JWKS refresh happen
// behind them without touching the Verifier. A Verifier is safe for concurrent
// use when its lookup functions are.
type Verifier struct {
	// Issuer is the exact iss of tokens signed by local keys or the HS256
	// secret: "<public URL>/auth/v1". Empty rejects every such token.
	Issuer string
	// Audience is the exact aud required; empty means DefaultAudience.
	Audience string
	// Leeway is the clock-skew allowance for exp, nbf and iat; zero means
	// DefaultLeeway and a negative value means none.
	Leeway time.Duration
	// MaxTokenSize is the largest accepted token in bytes; zero or negative
	// means DefaultMaxTokenSize.
	MaxTokenSize int
	// Keys finds a local key (current or still-trusted) by kid. The key's Alg
	// is the only algorithm accepted for that kid.
	Keys func(kid string) (*Key, bool)
	// External, when set, finds a key of an external Supabase project by kid.
	// It is consulted only when Keys has no such kid, and tokens it verifies
	// must carry ExternalIssuer.
	External func(kid string) (*Key, bool)
	// ExternalIssuer is the exact iss of tokens signed by External keys. Empty
	// rejects every such token.
	ExternalIssuer string
	// HS256Secret, when non-empty, is Supabase's legacy shared secret: tokens
	// whose alg is HS256 are verified with it (and carry Issuer). It is the only
	// key HS256 is ever verified with; without it HS256 is refused.
	HS256Secret []byte
	// Now returns the current time; nil means time.Now. Tests set it.
	Now func() time.Time
}

// base64url marks the bytes of the unpadded base64url alphabet. Checking them
// up front rejects the padding, whitespace and line breaks that
// encoding/base64 would otherwise skip or tolerate.
var base64url = func() (t [256]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		t[c] = true
	}
	return t
}()

// malformed adds a reason to ErrMalformed for logs.
func malformed(reason string) error {
	return fmt.Errorf("%w: %s", ErrMalformed, reason)
}

// Verify checks raw and returns its claims. The checks run in this order, and
// the first failure is returned: size; well-formed compact JWS with a JSON
// header; an algorithm allowed for the header's kid; the signature; exp present
// and not passed; nbf and iat not in the future; iss; aud. Every error wraps
// ErrInvalid, and the specific sentinels (ErrExpired, ErrUnknownKey, ...) can
// be tested with errors.Is.
//
// Claims are decoded only after the signature has verified, so unauthenticated
// input reaches nothing but the header decoder. When aud is an array, the
// returned Claims' Audience is the configured audience that matched.
func (v *Verifier) Verify(raw string) (*Claims, error) {
	maxSize := v.MaxTokenSize
	if maxSize <= 0 {
		maxSize = DefaultMaxTokenSize
	}
	if len(raw) > maxSize {
		return nil, ErrTooLarge
	}

	// Well-formed: exactly three parts, each in the base64url alphabet.
	dot1, dot2 := -1, -1
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '.' {
			switch {
			case dot1 < 0:
				dot1 = i
			case dot2 < 0:
				dot2 = i
			default:
				return nil, malformed("more than three parts")
			}
			continue
		}
		if !base64url[c] {
			return nil, malformed("not base64url")
		}
	}
	if dot2 < 0 {
		return nil, malformed("fewer than three parts")
	}
	if dot1 == 0 {
		return nil, malformed("empty header")
	}

	// One allocation holds a copy of the token (the decoder wants bytes) and
	// the three decoded parts.
	hl := b64.DecodedLen(dot1)
	pl := b64.DecodedLen(dot2 - dot1 - 1)
	sl := b64.DecodedLen(len(raw) - dot2 - 1)
	buf := make([]byte, len(raw)+hl+pl+sl)
	src, dst := buf[:len(raw)], buf[len(raw):]
	copy(src, raw)
	hn, err := b64.Decode(dst[:hl], src[:dot1])
	if err != nil {
		return nil, malformed("header is not base64url")
	}
	pn, err := b64.Decode(dst[hl:hl+pl], src[dot1+1:dot2])
	if err != nil {
		return nil, malformed("payload is not base64url")
	}
	sn, err := b64.Decode(dst[hl+pl:], src[dot2+1:])
	if err != nil {
		return nil, malformed("signature is not base64url")
	}
	hdrJSON, payload, sig := dst[:hn], dst[hl:hl+pn], dst[hl+pl:hl+pl+sn]

	// Everything decoded below shares one allocation; the returned claims
	// point into it.
	s := new(verifyScratch)
	h := &s.hdr
	if err := json.Unmarshal(hdrJSON, h); err != nil {
		return nil, malformed("header is not a JSON object")
	}
	if len(h.Crit) > 0 {
		return nil, malformed("critical header extensions are not supported")
	}

	method, key, issuer, err := v.resolve(h)
	if err != nil {
		return nil, err
	}
	// The signing input is the first two parts exactly as received; slicing the
	// string avoids re-encoding anything.
	if err := method.Verify(raw[:dot2], sig, key); err != nil {
		return nil, ErrSignature
	}

	c, aud := &s.claims, &s.aud
	if err := decodeClaims(payload, c, aud, &s.wire); err != nil {
		return nil, malformed("payload is not a JSON claims object")
	}

	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	t := now().Unix()
	leeway := v.Leeway
	switch {
	case leeway == 0:
		leeway = DefaultLeeway
	case leeway < 0:
		leeway = 0
	}
	// Whole seconds suffice: the claims are integers, and for an integer x
	// "now < x" holds exactly when "floor(now) < x".
	lw := int64(leeway / time.Second)
	if c.ExpiresAt == 0 || t >= satAdd(c.ExpiresAt, lw) {
		return nil, ErrExpired
	}
	if c.NotBefore != 0 && satAdd(t, lw) < c.NotBefore {
		return nil, ErrNotYetValid
	}
	if c.IssuedAt != 0 && satAdd(t, lw) < c.IssuedAt {
		return nil, ErrNotYetValid
	}
	if issuer == "" || c.Issuer != issuer {
		return nil, ErrIssuer
	}
	want := v.Audience
	if want == "" {
		want = DefaultAudience
	}
	if !aud.contains(want) {
		return nil, ErrAudience
	}
	c.Audience = want
	c.KeyID = h.Kid
	return c, nil
}

// verifyScratch groups what one Verify call decodes so that it costs a single
// allocation. The few extra words it keeps alive behind the returned *Claims
// are cheaper than separate allocations on every request.
type verifyScratch struct {
	claims Claims
	aud    audienceList
	wire   wireClaims
	hdr    header
}

// resolve picks the signing method, key and expected issuer for a header. The
// algorithm comes from the key (or, for HS256, from the operator having set a
// secret), never from the header alone: the header only has to agree.
func (v *Verifier) resolve(h *header) (jwt.SigningMethod, any, string, error) {
	switch h.Alg {
	case AlgHS256:
		// Only the configured secret, never a public key's bytes: that is
		// the classic RS256/ES256-to-HS256 confusion attack.
		if len(v.HS256Secret) == 0 {
			return nil, nil, "", ErrAlgorithm
		}
		return jwt.SigningMethodHS256, v.HS256Secret, v.Issuer, nil
	case AlgES256, AlgRS256:
	default:
		// Includes "none" in any spelling and every algorithm we never issue
		// or accept; refusing here also spares a JWKS refresh for them.
		return nil, nil, "", ErrAlgorithm
	}
	if h.Kid == "" {
		// No lookup or JWKS refresh could help a token that names no key.
		return nil, nil, "", malformed("no kid")
	}
	issuer := v.Issuer
	k, ok := lookup(v.Keys, h.Kid)
	if !ok {
		if k, ok = lookup(v.External, h.Kid); !ok {
			return nil, nil, "", ErrUnknownKey
		}
		issuer = v.ExternalIssuer
	}
	if k.Alg != h.Alg {
		return nil, nil, "", ErrAlgorithm
	}
	// The key's type must match its declared Alg too, so a misconfigured key
	// can never make a golang-jwt method run with an unexpected key type.
	switch pub := k.publicKey().(type) {
	case *ecdsa.PublicKey:
		if k.Alg == AlgES256 && pub.Curve == elliptic.P256() {
			return jwt.SigningMethodES256, pub, issuer, nil
		}
	case *rsa.PublicKey:
		if k.Alg == AlgRS256 && pub.N != nil && pub.N.BitLen() >= minRSABits {
			return jwt.SigningMethodRS256, pub, issuer, nil
		}
	}
	return nil, nil, "", ErrAlgorithm
}

// lookup calls f when it is set and treats a nil key as absent.
func lookup(f func(string) (*Key, bool), kid string) (*Key, bool) {
	if f == nil {
		return nil, false
	}
	k, ok := f(kid)
	return k, ok && k != nil
}

// satAdd adds without wrapping around, so extreme claim values cannot turn an
// expired token into a valid one or the reverse.
func satAdd(a, b int64) int64 {
	switch {
	case b > 0 && a > math.MaxInt64-b:
		return math.MaxInt64
	case b < 0 && a < math.MinInt64-b:
		return math.MinInt64
	}
	return a + b
}

// unixTime converts Unix seconds to a time.Time.
func unixTime(sec int64) time.Time { return time.Unix(sec, 0) }
