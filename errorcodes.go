package voxanne

// Wire error codes: the "code" (or GoTrue's "error_code") a client sees. This
// is the one list of them; an *Error names one as its Reason when the default
// of its Code is not precise enough, and the HTTP layer maps Codes to the
// defaults. docs/api.md documents each (a test keeps the two in step).
const (
	// Defaults of the neutral codes (http maps EINVALID to validation_failed,
	// and so on).
	ReasonValidationFailed = "validation_failed"
	ReasonBadJWT           = "bad_jwt"
	ReasonForbidden        = "forbidden"
	ReasonNotFound         = "not_found"
	ReasonConflict         = "conflict"
	ReasonTooLarge         = "request_entity_too_large"
	ReasonMethodNotAllowed = "method_not_allowed"
	ReasonRateLimited      = "over_request_rate_limit"
	ReasonUnavailable      = "unavailable"
	ReasonUnexpected       = "unexpected_failure"

	// Authentication of /api and /auth/v1.
	ReasonNoAuthorization  = "no_authorization"
	ReasonSessionRevoked   = "session_revoked"
	ReasonSessionNotFound  = "session_not_found"
	ReasonNotAdmin         = "not_admin"
	ReasonNoActiveOrg      = "no_active_org"
	ReasonInvalidSignature = "invalid_signature"
	ReasonBadJSON          = "bad_json"

	// The auth server (GoTrue's codes).
	ReasonInvalidCredentials      = "invalid_credentials"
	ReasonEmailNotConfirmed       = "email_not_confirmed"
	ReasonUserAlreadyExists       = "user_already_exists"
	ReasonEmailExists             = "email_exists"
	ReasonWeakPassword            = "weak_password"
	ReasonSignupDisabled          = "signup_disabled"
	ReasonUserNotFound            = "user_not_found"
	ReasonRefreshTokenNotFound    = "refresh_token_not_found"
	ReasonRefreshTokenAlreadyUsed = "refresh_token_already_used"
	ReasonOTPExpired              = "otp_expired"
	ReasonOverEmailSendRateLimit  = "over_email_send_rate_limit"

	// Invitations, MFA, passwordless and phone sign-in (GoTrue's codes, and
	// mfa_required, Voxanne's own for an org that requires MFA).
	ReasonInviteNotFound             = "invite_not_found"
	ReasonMFARequired                = "mfa_required"
	ReasonInsufficientAAL            = "insufficient_aal"
	ReasonMFAFactorNotFound          = "mfa_factor_not_found"
	ReasonMFAVerificationFailed      = "mfa_verification_failed"
	ReasonMFAChallengeExpired        = "mfa_challenge_expired"
	ReasonMFAFactorNameConflict      = "mfa_factor_name_conflict"
	ReasonMFAIPAddressMismatch       = "mfa_ip_address_mismatch"
	ReasonTooManyEnrolledMFAFactors  = "too_many_enrolled_mfa_factors"
	ReasonMFAPhoneEnrollDisabled     = "mfa_phone_enroll_not_enabled"
	ReasonMFAWebAuthnEnrollDisabled  = "mfa_webauthn_enroll_not_enabled"
	ReasonOTPDisabled                = "otp_disabled"
	ReasonOverSMSSendRateLimit       = "over_sms_send_rate_limit"
	ReasonSMSSendFailed              = "sms_send_failed"
	ReasonPhoneExists                = "phone_exists"
	ReasonPhoneNotConfirmed          = "phone_not_confirmed"
	ReasonReauthenticationNotValid   = "reauthentication_not_valid"
	ReasonAnonymousProviderDisabled  = "anonymous_provider_disabled"
	ReasonProviderDisabled           = "provider_disabled"
	ReasonPhoneProviderDisabled      = "phone_provider_disabled"
	ReasonSAMLProviderDisabled       = "saml_provider_disabled"
	ReasonWeb3ProviderDisabled       = "web3_provider_disabled"
	ReasonManualLinkingDisabled      = "manual_linking_disabled"
	ReasonOAuthProviderNotSupported  = "oauth_provider_not_supported"
	ReasonSingleIdentityNotDeletable = "single_identity_not_deletable"
	ReasonIdentityNotFound           = "identity_not_found"
)

// WireCodes lists every wire error code above.
var WireCodes = []string{
	ReasonValidationFailed, ReasonBadJWT, ReasonForbidden, ReasonNotFound, ReasonConflict, ReasonTooLarge,
	ReasonMethodNotAllowed,
	ReasonRateLimited, ReasonUnavailable, ReasonUnexpected,
	ReasonNoAuthorization, ReasonSessionRevoked, ReasonSessionNotFound, ReasonNotAdmin, ReasonNoActiveOrg,
	ReasonInvalidSignature, ReasonBadJSON,
	ReasonInvalidCredentials, ReasonEmailNotConfirmed, ReasonUserAlreadyExists, ReasonEmailExists,
	ReasonWeakPassword, ReasonSignupDisabled, ReasonUserNotFound, ReasonRefreshTokenNotFound,
	ReasonRefreshTokenAlreadyUsed, ReasonOTPExpired, ReasonOverEmailSendRateLimit,
	ReasonInviteNotFound, ReasonMFARequired, ReasonInsufficientAAL, ReasonMFAFactorNotFound,
	ReasonMFAVerificationFailed, ReasonMFAChallengeExpired, ReasonMFAFactorNameConflict,
	ReasonMFAIPAddressMismatch, ReasonTooManyEnrolledMFAFactors, ReasonMFAPhoneEnrollDisabled,
	ReasonMFAWebAuthnEnrollDisabled, ReasonOTPDisabled, ReasonOverSMSSendRateLimit, ReasonSMSSendFailed,
	ReasonPhoneExists, ReasonPhoneNotConfirmed, ReasonReauthenticationNotValid,
	ReasonAnonymousProviderDisabled, ReasonProviderDisabled, ReasonPhoneProviderDisabled,
	ReasonSAMLProviderDisabled, ReasonWeb3ProviderDisabled, ReasonManualLinkingDisabled,
	ReasonOAuthProviderNotSupported, ReasonSingleIdentityNotDeletable, ReasonIdentityNotFound,
}
