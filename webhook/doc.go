// Package webhook verifies and decodes the webhooks that Vapi and Twilio send to
// Voxanne. It holds no state, touches no database and serves no HTTP: an HTTP
// handler reads the raw body, calls VerifyVapi, VerifyTwilio or VerifyTwilioJSON
// on those exact bytes, and only then calls ParseVapi or ParseTwilioSMS.
//
// Verification comes first because parsing attacker-controlled JSON before the
// signature is checked would widen the attack surface for no benefit, and
// because every signature is computed over the raw bytes, which a decode and
// re-encode would not reproduce.
//
// Decoding is deliberately tolerant. Both providers add fields and message types
// without notice and their documentation disagrees with their payloads in places,
// so a field of an unexpected JSON type is treated as absent rather than failing
// the whole delivery: losing one field is better than losing the event.
package webhook

import "errors"

// Errors returned by this package. They are sentinels so that the HTTP layer can
// tell them apart with errors.Is; the returned errors may wrap them with detail
// that is meant for logs only, never for the response body.
var (
	// ErrNotConfigured means no secret or auth token is configured at all. The
	// request is rejected (fail closed) because accepting unauthenticated
	// webhooks would let anyone write calls and messages into any org.
	ErrNotConfigured = errors.New("webhook: no secret configured")

	// ErrNoCredentials means the request carried none of the accepted
	// authentication headers.
	ErrNoCredentials = errors.New("webhook: no credentials")

	// ErrBadSignature means credentials were present but none matched a
	// configured secret, or they were malformed.
	ErrBadSignature = errors.New("webhook: bad signature")

	// ErrStaleTimestamp means an HMAC signature was valid but its timestamp is
	// more than MaxTimestampSkew away from now, so the request may be a replay.
	ErrStaleTimestamp = errors.New("webhook: stale timestamp")

	// ErrBadPayload means the body or form could not be decoded into the
	// expected envelope (invalid JSON, missing message object, missing SID).
	ErrBadPayload = errors.New("webhook: bad payload")
)
