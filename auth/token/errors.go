package token

import "errors"

// ErrInvalid is wrapped by every verification error, so a caller can answer all
// of them with one 401 bad_jwt while still logging the precise reason.
var ErrInvalid = errors.New("token: invalid")

// Verification errors, one per check of Verify. Each wraps ErrInvalid.
var (
	// ErrTooLarge means the token is longer than Verifier.MaxTokenSize.
	ErrTooLarge = invalid("token: too large")
	// ErrMalformed means the token is not a well-formed compact JWS whose
	// header and payload are JSON objects.
	ErrMalformed = invalid("token: malformed")
	// ErrAlgorithm means the header's alg is not the one allowed for its key:
	// "none", HS256 without a configured secret, or an alg that differs from
	// the key's Alg.
	ErrAlgorithm = invalid("token: algorithm not allowed")
	// ErrUnknownKey means no configured key has the header's kid. It is kept
	// apart from the others so that a caller can refresh an external JWKS
	// (rate-limited, since anyone can send an unknown kid) and try again.
	ErrUnknownKey = invalid("token: unknown key")
	// ErrSignature means the signature does not verify.
	ErrSignature = invalid("token: bad signature")
	// ErrExpired means exp is missing or has passed, beyond the leeway.
	ErrExpired = invalid("token: expired")
	// ErrNotYetValid means nbf or iat is in the future, beyond the leeway.
	ErrNotYetValid = invalid("token: not yet valid")
	// ErrIssuer means iss is not the issuer expected for the signing key.
	ErrIssuer = invalid("token: wrong issuer")
	// ErrAudience means aud does not contain the configured audience.
	ErrAudience = invalid("token: wrong audience")
)

// invalidError is a verification error that wraps ErrInvalid while keeping its
// own short message.
type invalidError struct{ msg string }

func invalid(msg string) error { return &invalidError{msg: msg} }

func (e *invalidError) Error() string { return e.msg }

func (e *invalidError) Unwrap() error { return ErrInvalid }
