package voxanne

import (
	"context"
	"time"
)

// Identity is one way a user signs in, as GoTrue lists it in the user object:
// Voxanne users have an "email" identity, or a "phone" one for users who sign
// in with a phone number.
type Identity struct {
	IdentityID   string         `json:"identity_id"`
	ID           string         `json:"id"`
	UserID       string         `json:"user_id"`
	IdentityData map[string]any `json:"identity_data"`
	Provider     string         `json:"provider"`
	LastSignInAt *time.Time     `json:"last_sign_in_at,omitempty"`
	CreatedAt    time.Time      `json:"created_at"`
	UpdatedAt    time.Time      `json:"updated_at"`
	Email        string         `json:"email,omitempty"`
}

// Factor is an MFA factor in GoTrue's shape (only TOTP is offered).
type Factor struct {
	ID               string     `json:"id"`
	FriendlyName     string     `json:"friendly_name,omitempty"`
	FactorType       string     `json:"factor_type"`
	Status           string     `json:"status"`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
	LastChallengedAt *time.Time `json:"last_challenged_at"`
	Phone            *string    `json:"phone"`
}

// Factor states.
const (
	FactorUnverified = "unverified"
	FactorVerified   = "verified"
)

// Assurance levels of a session: aal1 after one factor (a password, a mailed
// link or code), aal2 after a verified TOTP code too.
const (
	AAL1 = "aal1"
	AAL2 = "aal2"
)

// TOTPEnrollment is the answer to enrolling a TOTP factor: the secret, its
// otpauth:// URI and the URI as a QR code in SVG. The secret is shown only
// here.
type TOTPEnrollment struct {
	ID           string `json:"id"`
	Type         string `json:"type"`
	FriendlyName string `json:"friendly_name"`
	TOTP         struct {
		QRCode string `json:"qr_code"`
		Secret string `json:"secret"`
		URI    string `json:"uri"`
	} `json:"totp"`
}

// Challenge is an MFA challenge: the code that answers it must be sent before
// ExpiresAt (Unix seconds).
type Challenge struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	ExpiresAt int64  `json:"expires_at"`
}

// MFAService runs TOTP factors for /auth/v1/factors and the dashboard. Every
// method acts for the principal's user and session.
type MFAService interface {
	// Enroll creates an unverified TOTP factor; issuer names the service in
	// authenticator apps ("" uses the public URL's host).
	Enroll(ctx context.Context, p *Principal, factorType, friendlyName, issuer string) (*TOTPEnrollment, error)
	Challenge(ctx context.Context, p *Principal, factorID, ip string) (*Challenge, error)
	// Verify checks a code against a challenge; a valid code raises the
	// session to aal2 (and verifies a new factor) and returns the session's
	// new tokens.
	Verify(ctx context.Context, p *Principal, factorID, challengeID, code string, ci ClientInfo) (*Session, error)
	// Unenroll deletes a factor (a verified one needs an aal2 session).
	Unenroll(ctx context.Context, p *Principal, factorID string) error
	Factors(ctx context.Context, userID string) ([]Factor, error)
	// SetRequireMFA sets the org policy (owner).
	SetRequireMFA(ctx context.Context, p *Principal, require bool, ip string) (*Org, error)
}

// OTPInput asks for a passwordless sign-in: a magic link and a 6-digit code
// by mail, or a code by SMS.
type OTPInput struct {
	Email string
	Phone string
	// CreateUser signs up an unknown address (GoTrue's default: true).
	CreateUser bool
	Data       map[string]any
	// RedirectTo is where the mailed link should land (checked by the HTTP
	// layer against the allowed origins).
	RedirectTo string
}

// GenerateLinkInput is an operator's POST /admin/generate_link.
type GenerateLinkInput struct {
	Type       string
	Email      string
	Password   string
	Data       map[string]any
	RedirectTo string
}

// GeneratedLink is the answer of generate_link: the user and the link's
// parts, as GoTrue returns them (auth-js splits them into properties and
// user).
type GeneratedLink struct {
	User             *User
	ActionLink       string `json:"action_link"`
	EmailOTP         string `json:"email_otp"`
	HashedToken      string `json:"hashed_token"`
	VerificationType string `json:"verification_type"`
	RedirectTo       string `json:"redirect_to"`
}

// PasswordlessService is the passwordless and operator part of /auth/v1:
// mailed links and codes, invitations by operators, generated links,
// resends, reauthentication and SMS codes.
type PasswordlessService interface {
	// SendOTP mails a magic link with a 6-digit code (or texts a code). It
	// answers the same whether or not the address has an account, unless
	// CreateUser is false and it has none (GoTrue's otp_disabled).
	SendOTP(ctx context.Context, in OTPInput, ci ClientInfo) error
	// InviteUser creates an unconfirmed user without a password and mails
	// them a link that signs them in, to choose a password.
	InviteUser(ctx context.Context, email string, data map[string]any, redirectTo string) (*User, error)
	GenerateLink(ctx context.Context, in GenerateLinkInput) (*GeneratedLink, error)
	// Resend mails a signup (or email change) confirmation again.
	Resend(ctx context.Context, kind, email, phone string, ci ClientInfo) error
	// Reauthenticate mails the signed-in user a nonce that a password change
	// may carry.
	Reauthenticate(ctx context.Context, p *Principal) error
	// SpendNonce checks and spends a nonce mailed by Reauthenticate.
	SpendNonce(ctx context.Context, p *Principal, nonce string) error
}
