package voxanne

import (
	"context"
	"time"
)

// User is an account as the auth API shows it (GoTrue's shape).
type User struct {
	ID               string         `json:"id"`
	Aud              string         `json:"aud"`
	Role             string         `json:"role"`
	Email            string         `json:"email"`
	Phone            string         `json:"phone"`
	EmailConfirmedAt *time.Time     `json:"email_confirmed_at,omitempty"`
	PhoneConfirmedAt *time.Time     `json:"phone_confirmed_at,omitempty"`
	ConfirmedAt      *time.Time     `json:"confirmed_at,omitempty"`
	LastSignInAt     *time.Time     `json:"last_sign_in_at,omitempty"`
	AppMetadata      map[string]any `json:"app_metadata"`
	UserMetadata     map[string]any `json:"user_metadata"`
	Identities       []Identity     `json:"identities"`
	// Factors are the user's MFA factors (GoTrue lists them only when there
	// are any).
	Factors     []Factor  `json:"factors,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	IsAnonymous bool      `json:"is_anonymous"`
}

// Session is what a successful sign-in, refresh or verification returns.
type Session struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	ExpiresAt    int64  `json:"expires_at"`
	RefreshToken string `json:"refresh_token"`
	User         *User  `json:"user"`
}

// ClientInfo describes where an auth request came from, for sessions and the
// security log.
type ClientInfo struct {
	IP        string
	UserAgent string
}

// SignUpInput is a sign-up request.
type SignUpInput struct {
	Email    string
	Password string
	// Data becomes user_metadata; data.org_name names the new organization.
	Data map[string]any
}

// UserUpdate is a user's change to their own account; nil fields are unchanged.
type UserUpdate struct {
	Password *string
	Data     map[string]any
}

// AdminUserInput creates or changes a user through the admin API; nil fields are
// unchanged (or defaulted on create).
type AdminUserInput struct {
	Email        *string
	Password     *string
	EmailConfirm *bool
	UserMetadata map[string]any
	AppMetadata  map[string]any
}

// VerifyInput completes a mailed flow (signup confirmation or recovery) with
// either the token hash of the mailed link or the token and the email.
type VerifyInput struct {
	Type      string
	Token     string
	TokenHash string
	Email     string
}

// Logout scopes.
const (
	ScopeGlobal = "global"
	ScopeLocal  = "local"
	ScopeOthers = "others"
)

// AuthService is the identity provider behind /auth/v1.
type AuthService interface {
	SignUp(ctx context.Context, in SignUpInput, ci ClientInfo) (*User, *Session, error)
	SignInWithPassword(ctx context.Context, email, password string, ci ClientInfo) (*Session, error)
	Refresh(ctx context.Context, refreshToken string, ci ClientInfo) (*Session, error)
	User(ctx context.Context, userID string) (*User, error)
	UpdateUser(ctx context.Context, p *Principal, in UserUpdate) (*User, error)
	Logout(ctx context.Context, p *Principal, scope string) error
	Recover(ctx context.Context, email string, ci ClientInfo) error
	Verify(ctx context.Context, in VerifyInput, ci ClientInfo) (*Session, error)
	// JWKS returns the public keys that verify tokens, as a JWK Set document.
	JWKS(ctx context.Context) ([]byte, error)

	ListUsers(ctx context.Context, page, perPage int) ([]*User, int, error)
	CreateUser(ctx context.Context, in AdminUserInput) (*User, error)
	UpdateUserByID(ctx context.Context, id string, in AdminUserInput) (*User, error)
	// DeleteUser deletes a user. orphanedOrgs says what becomes of orgs the
	// user is the last owner of: "" refuses (ECONFLICT naming them), "delete"
	// deletes them, "transfer" hands them to another member.
	DeleteUser(ctx context.Context, id, orphanedOrgs string) error
}

// Mail is one message to send.
type Mail struct {
	To      string
	Subject string
	Body    string
}

// Mailer sends mail.
type Mailer interface {
	Send(ctx context.Context, m Mail) error
}

// Revocation kinds.
const (
	RevokeSession    = "session"    // a session ended (logout, reuse, password change)
	RevokeMembership = "membership" // a user's role in an org changed, or they left it
	RevokeUser       = "user"       // a user was deleted
)

// Revocation says that tokens issued before it for its session, membership or
// user must no longer be accepted.
type Revocation struct {
	Kind      string `json:"kind"`
	SessionID string `json:"session_id"`
	UserID    string `json:"user_id"`
	OrgID     string `json:"org_id"`
}
