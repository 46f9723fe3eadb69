package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names read by VerifyVapi and VerifyTwilio. They are exported so that
// handlers, tests and the CLI that sends sample events agree on one spelling.
const (
	// HeaderVapiSecret carries Vapi's legacy static server-URL secret.
	HeaderVapiSecret = "X-Vapi-Secret"
	// HeaderVapiSignature is named by some 2025 Vapi docs as carrying the same
	// static secret, so a plain match there is accepted too.
	HeaderVapiSignature = "X-Vapi-Signature"
	// HeaderSignature carries the hex HMAC-SHA256 of a Vapi HMAC credential.
	HeaderSignature = "X-Signature"
	// HeaderTimestamp carries the timestamp covered by HeaderSignature.
	HeaderTimestamp = "X-Timestamp"
	// HeaderTwilioSignature carries Twilio's base64 HMAC-SHA1 signature.
	HeaderTwilioSignature = "X-Twilio-Signature"
)

// MaxTimestampSkew bounds how far the X-Timestamp of an HMAC-signed Vapi request
// may be from the receiver's clock, in either direction. Past requests beyond it
// could be replays; future ones beyond it mean a broken clock on one side, and
// accepting them would let a captured request be replayed for longer.
const MaxTimestampSkew = 5 * time.Minute

// millisecondThreshold decides whether a numeric timestamp is in seconds or
// milliseconds. Vapi does not document which it sends. 1e11 seconds is the year
// 5138 and 1e11 milliseconds is March 1973, so no plausible value of either unit
// falls on the wrong side.
const millisecondThreshold = 1e11

// VapiSecrets holds the configured Vapi server-URL secrets. Previous exists so a
// secret can be rotated without dropping deliveries: both are accepted until the
// operator clears Previous. An empty string means "not set".
type VapiSecrets struct {
	Current, Previous string
}

// list returns the non-empty secrets; an empty secret must never match, or a
// request with an empty header would authenticate against an unset secret.
func (s VapiSecrets) list() []string {
	var out []string
	for _, v := range []string{s.Current, s.Previous} {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// VerifyVapi authenticates a Vapi server message. It must be called with the raw
// request body, before any decoding. The request is accepted when any of these
// matches one of the non-empty secrets:
//
//   - X-Vapi-Secret: <secret> (or the same value in X-Vapi-Signature);
//   - Authorization: Bearer <secret>;
//   - X-Signature: hex(HMAC-SHA256(secret, X-Timestamp + "." + body)), with an
//     optional "sha256=" prefix and hex in either case, where X-Timestamp is unix
//     seconds or milliseconds within MaxTimestampSkew of now.
//
// It returns ErrNotConfigured when no secret is set, ErrNoCredentials when none
// of those headers is present, ErrStaleTimestamp when the only valid credential
// is an HMAC whose timestamp is out of range, and ErrBadSignature otherwise.
func VerifyVapi(h http.Header, body []byte, secrets VapiSecrets, now time.Time) error {
	keys := secrets.list()
	if len(keys) == 0 {
		return ErrNotConfigured
	}

	presented := false

	// Static secrets: every candidate header is checked against every secret,
	// with no early exit on the header side, so timing does not reveal which
	// header was close.
	var static []string
	if v := h.Get(HeaderVapiSecret); v != "" {
		static = append(static, v)
	}
	if v := h.Get(HeaderVapiSignature); v != "" {
		static = append(static, v)
	}
	if v, ok := bearerToken(h.Get("Authorization")); ok {
		static = append(static, v)
	}
	if len(static) > 0 {
		presented = true
		if matchStatic(static, keys) {
			return nil
		}
	}

	sig := h.Get(HeaderSignature)
	if sig == "" {
		if !presented {
			return ErrNoCredentials
		}
		return ErrBadSignature
	}
	ts := h.Get(HeaderTimestamp)
	if ts == "" {
		return fmt.Errorf("%w: %s without %s", ErrBadSignature, HeaderSignature, HeaderTimestamp)
	}
	mac, ok := decodeHexSignature(sig)
	if !ok {
		return fmt.Errorf("%w: %s is not hex", ErrBadSignature, HeaderSignature)
	}
	matched := false
	for _, k := range keys {
		if hmac.Equal(mac, vapiMAC(k, ts, body)) {
			matched = true
		}
	}
	if !matched {
		return ErrBadSignature
	}
	// The timestamp is checked only after the MAC so that ErrStaleTimestamp
	// always means "authentic but too old or too new", which is what an
	// operator needs to tell a clock problem from an attack.
	at, ok := parseUnixTimestamp(ts)
	if !ok {
		return fmt.Errorf("%w: %s is not a unix time", ErrBadSignature, HeaderTimestamp)
	}
	if d := now.Sub(at); d > MaxTimestampSkew || d < -MaxTimestampSkew {
		return fmt.Errorf("%w: %s is %s from now", ErrStaleTimestamp, HeaderTimestamp, d.Round(time.Second))
	}
	return nil
}

// SignVapi returns the hex HMAC-SHA256 signature that Vapi's HMAC credential puts
// in X-Signature for the given timestamp and raw body. The CLI uses it to send
// signed sample events; tests use it to build valid requests.
func SignVapi(secret, timestamp string, body []byte) string {
	return hex.EncodeToString(vapiMAC(secret, timestamp, body))
}

func vapiMAC(secret, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// matchStatic compares every candidate with every secret through SHA-256
// digests. Hashing first makes both sides 32 bytes, so
// subtle.ConstantTimeCompare does not return early on a length mismatch and the
// secret's length does not leak through timing.
func matchStatic(candidates, secrets []string) bool {
	ok := 0
	for _, c := range candidates {
		cd := sha256.Sum256([]byte(c))
		for _, s := range secrets {
			sd := sha256.Sum256([]byte(s))
			ok |= subtle.ConstantTimeCompare(cd[:], sd[:])
		}
	}
	return ok == 1
}

// bearerToken extracts the credential of an "Authorization: Bearer x" header.
// The scheme is case-insensitive as RFC 7235 requires.
func bearerToken(v string) (string, bool) {
	const scheme = "bearer "
	if len(v) <= len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", false
	}
	t := strings.TrimSpace(v[len(scheme):])
	return t, t != ""
}

// decodeHexSignature strips an optional "sha256=" prefix (any case) and decodes
// the hex, which encoding/hex accepts in either case.
func decodeHexSignature(sig string) ([]byte, bool) {
	sig = strings.TrimSpace(sig)
	const prefix = "sha256="
	if len(sig) >= len(prefix) && strings.EqualFold(sig[:len(prefix)], prefix) {
		sig = sig[len(prefix):]
	}
	b, err := hex.DecodeString(sig)
	if err != nil || len(b) != sha256.Size {
		return nil, false
	}
	return b, true
}

// parseUnixTimestamp reads decimal unix seconds or milliseconds, deciding the
// unit by magnitude. Signs, fractions and spaces are rejected: the string is
// part of the signed payload, so a sender has no reason to vary its format.
func parseUnixTimestamp(s string) (time.Time, bool) {
	if s == "" || len(s) > 19 {
		return time.Time{}, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return time.Time{}, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	if n >= millisecondThreshold {
		return time.UnixMilli(n), true
	}
	return time.Unix(n, 0), true
}
