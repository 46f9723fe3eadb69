// Package voxanne holds Voxanne's domain types, service interfaces and its one
// error type. It imports only the standard library; the postgres, http, auth and
// jobs packages implement or use what is declared here, and cmd/voxanne wires them.
package voxanne

import (
	"errors"
	"fmt"
)

// Error codes are neutral: only the HTTP layer maps them to statuses and wire codes.
const (
	EINVALID      = "invalid"      // malformed input
	EUNAUTHORIZED = "unauthorized" // no or bad credentials
	EFORBIDDEN    = "forbidden"    // authenticated but not allowed
	ENOTFOUND     = "not_found"    // no such object in the caller's scope
	ECONFLICT     = "conflict"     // uniqueness or state conflict
	ETOOLARGE     = "too_large"    // body over the limit
	EMETHOD       = "method"       // a known path with a method it does not take
	ERATELIMIT    = "rate_limited" // too many requests
	EUNAVAILABLE  = "unavailable"  // a dependency is down
	EINTERNAL     = "internal"     // anything else
)

// Error is Voxanne's one error type. Code is one of the E* constants; Reason is a
// wire-level error code (for example "weak_password") that the HTTP layer may use
// instead of the default for Code; Message is safe to show to the caller.
type Error struct {
	Code    string
	Reason  string
	Message string
	// Details carries structured, caller-safe extra data (for example the reasons
	// of a weak password).
	Details map[string]any
	// Err is the underlying cause, never shown to callers.
	Err error
}

// Error returns the code and message, and the wrapped error when there is one:
// for logs, never for the caller (the HTTP layer shows Message only).
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap returns the underlying error, for errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ReasonErrorf returns an *Error that also names a wire-level reason code.
func ReasonErrorf(code, reason, format string, args ...any) *Error {
	return &Error{Code: code, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for any
// other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// Org roles, from most to least powerful.
const (
	RoleOwner  = "owner"
	RoleAdmin  = "admin"
	RoleMember = "member"
)

// Principal is who a request acts for, taken only from a verified token: the org
// is never chosen by anything else the caller sends.
type Principal struct {
	UserID    string
	Email     string
	SessionID string
	// OrgID is the active organization (app_metadata.org_id).
	OrgID string
	// OrgRole is the caller's role in OrgID (owner, admin or member).
	OrgRole string
	// Role is the token's database role: "authenticated" or "service_role".
	Role string
	// AAL is the session's assurance level as the token says: "aal1", or
	// "aal2" after a verified TOTP code.
	AAL string
	// OrgRequiresMFA says the active org requires aal2 sessions (read with
	// the token's membership, and revoked with it when the policy changes).
	OrgRequiresMFA bool
}

// NeedsMFA reports whether the principal's org requires MFA and its session
// has not passed it: tenant routes answer 403 mfa_required.
func (p *Principal) NeedsMFA() bool {
	return p.OrgID != "" && p.OrgRequiresMFA && p.AAL != AAL2
}
