package postgres

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/auth/password"
	"github.com/voxanne/voxanne/auth/token"
)

// ReuseWindow is how long a spent refresh token still yields its successor (for a
// client that lost the response); after it, presenting the token again revokes
// the whole session.
const ReuseWindow = 10 * time.Second

// mailTokenLifetime bounds signup-confirmation and recovery tokens.
const mailTokenLifetime = time.Hour

// AuthConfig configures the auth service.
type AuthConfig struct {
	// Issuer is the iss of every token: <public URL>/auth/v1.
	Issuer string
	// PublicURL is the external base URL, for links in mails.
	PublicURL     string
	JWTExp        time.Duration
	Autoconfirm   bool
	DisableSignup bool
	Mailer        voxanne.Mailer
	Logger        *slog.Logger
	// Verifier checks access tokens; its key source should be the key ring.
	Verifier *token.Verifier
	// PasswordMinLength is the fewest characters of a new password (at
	// least password.MinLength, the default).
	PasswordMinLength int
	// Revoked is told, right after commit, of every revocation this instance
	// makes, so that its own cache never lags behind (other instances learn of
	// them through NOTIFY).
	Revoked func(voxanne.Revocation)
}

// AuthService implements voxanne.AuthService on PostgreSQL through the auth role.
type AuthService struct {
	db   *DB
	keys *KeyRing
	cfg  AuthConfig
	now  func() time.Time
}

var _ voxanne.AuthService = (*AuthService)(nil)

// NewAuthService returns the auth service.
func NewAuthService(db *DB, keys *KeyRing, cfg AuthConfig) *AuthService {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &AuthService{db: db, keys: keys, cfg: cfg, now: time.Now}
}

func authErr(code, reason, msg string) error {
	return &voxanne.Error{Code: code, Reason: reason, Message: msg}
}

var (
	errInvalidCredentials = authErr(voxanne.EINVALID, voxanne.ReasonInvalidCredentials, "Invalid login credentials")
	errSessionNotFound    = authErr(voxanne.EUNAUTHORIZED, voxanne.ReasonSessionNotFound, "Session from session_id claim in JWT does not exist")
	errOTPInvalid         = authErr(voxanne.EFORBIDDEN, voxanne.ReasonOTPExpired, "Email link is invalid or has expired")
)

// security writes a security event to the log; the org audit log takes these
// events once it exists.
func (s *AuthService) security(ctx context.Context, event string, attrs ...slog.Attr) {
	s.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "security_event", append([]slog.Attr{slog.String("event", event)}, attrs...)...)
}

// normalizeEmail lower-cases and validates an address.
func normalizeEmail(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || len(s) > 254 || !strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".") {
		return "", authErr(voxanne.EINVALID, voxanne.ReasonValidationFailed, "Unable to validate email address: invalid format")
	}
	return s, nil
}

// checkPassword vets a new password against the configured minimum length
// and the list of common passwords: GoTrue's weak_password, in its words.
func (s *AuthService) checkPassword(pw string) error {
	min := max(s.cfg.PasswordMinLength, password.MinLength)
	reasons := password.CheckMin(pw, min)
	if len(reasons) == 0 {
		return nil
	}
	var msgs []string
	for _, r := range reasons {
		switch r {
		case password.ReasonLength:
			msgs = append(msgs, fmt.Sprintf("Password should be at least %d characters.", min))
		case password.ReasonCommon:
			msgs = append(msgs, "Password is known to be weak and easy to guess, please choose a different one.")
		}
	}
	return &voxanne.Error{Code: voxanne.EINVALID, Reason: voxanne.ReasonWeakPassword, Message: strings.Join(msgs, " "),
		Details: map[string]any{"weak_password": map[string]any{"reasons": reasons}}}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashToken(t string) []byte {
	h := sha256.Sum256([]byte(t))
	return h[:]
}

// successor derives the refresh token that replaces parent. Being a function of
// the session's secret and the parent, it can be handed out again to a client that
// lost the first response, and no refresh token is ever stored in plain text.
func successor(secret []byte, parent string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(parent))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// userRow is a user with the fields only the service sees.
type userRow struct {
	voxanne.User
	hash string
}

const userColumns = `id, aud, role, coalesce(email, ''), email_confirmed_at, last_sign_in_at, raw_app_meta_data,
	raw_user_meta_data, created_at, updated_at, encrypted_password, coalesce(phone, ''), phone_confirmed_at`

func scanUser(row pgx.Row) (*userRow, error) {
	u := &userRow{}
	err := row.Scan(&u.ID, &u.Aud, &u.Role, &u.Email, &u.EmailConfirmedAt, &u.LastSignInAt,
		&u.AppMetadata, &u.UserMetadata, &u.CreatedAt, &u.UpdatedAt, &u.hash, &u.Phone, &u.PhoneConfirmedAt)
	if err != nil {
		return nil, err
	}
	u.ConfirmedAt = u.EmailConfirmedAt
	if u.ConfirmedAt == nil {
		u.ConfirmedAt = u.PhoneConfirmedAt
	}
	u.Identities = identities(&u.User)
	if u.AppMetadata == nil {
		u.AppMetadata = map[string]any{}
	}
	if u.UserMetadata == nil {
		u.UserMetadata = map[string]any{}
	}
	return u, nil
}

func (s *AuthService) userByID(ctx context.Context, q pgx.Tx, id string) (*userRow, error) {
	u, err := scanUser(q.QueryRow(ctx, "select "+userColumns+" from auth.users where id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, authErr(voxanne.ENOTFOUND, voxanne.ReasonUserNotFound, "User not found")
	}
	return u, err
}

// resolveOrg picks the org a session acts for: preferred if the user is still a
// member, else (with fallback) the user's oldest membership, else none. It
// stamps the choice into app_metadata so the user object and the next sign-in
// agree with the token.
func resolveOrg(ctx context.Context, tx pgx.Tx, u *userRow, preferred string, fallback bool) (orgID, role string, err error) {
	err = tx.QueryRow(ctx, `select org_id::text, role from memberships where user_id = $1 and ($3 or org_id::text = $2)
		order by (org_id::text = $2) desc, created_at, org_id limit 1`, u.ID, preferred, fallback).Scan(&orgID, &role)
	if errors.Is(err, pgx.ErrNoRows) {
		orgID, role, err = "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("resolve org: %w", err)
	}
	cur, _ := u.AppMetadata["org_id"].(string)
	curRole, _ := u.AppMetadata["org_role"].(string)
	if cur != orgID || curRole != role {
		patch := map[string]any{"org_id": nil, "org_role": nil}
		if orgID != "" {
			patch = map[string]any{"org_id": orgID, "org_role": role}
		}
		var meta map[string]any
		err = tx.QueryRow(ctx, `update auth.users set raw_app_meta_data = jsonb_strip_nulls(raw_app_meta_data || $2::jsonb),
			updated_at = now() where id = $1 returning raw_app_meta_data`, u.ID, patch).Scan(&meta)
		if err != nil {
			return "", "", fmt.Errorf("stamp org: %w", err)
		}
		u.AppMetadata = meta
	}
	return orgID, role, nil
}

// sessionAuth is how a session was authenticated: its assurance level and
// GoTrue's amr entries (newest first), as auth.sessions keeps them.
type sessionAuth struct {
	AAL string
	AMR []token.AMREntry
}

// sessionAuthSQL reads a session's sessionAuth columns (alias s); sessions
// made before migration 0014 have no amr and were password sign-ins.
const sessionAuthSQL = `s.aal, ` + amrSQL

// amrSQL is the amr of session s.
const amrSQL = `coalesce(s.amr, jsonb_build_array(jsonb_build_object(
	'method', 'password', 'timestamp', extract(epoch from s.created_at)::bigint)))`

// accessToken signs the access token of a session.
func (s *AuthService) accessToken(u *userRow, sessionID, orgID, orgRole string, sa sessionAuth, now time.Time) (string, int64, error) {
	k := s.keys.Current()
	exp := now.Add(s.cfg.JWTExp).Unix()
	provider := "email"
	if u.Email == "" {
		provider = "phone"
	}
	c := &token.Claims{
		Issuer: s.cfg.Issuer, Subject: u.ID, Audience: token.DefaultAudience,
		ExpiresAt: exp, IssuedAt: now.Unix(), Email: u.Email, Phone: u.Phone,
		Role: token.RoleAuthenticated, AAL: sa.AAL, AMR: sa.AMR,
		SessionID:    sessionID,
		UserMetadata: u.UserMetadata,
		AppMetadata:  token.AppMetadata{Provider: provider, Providers: []string{provider}, OrgID: orgID, OrgRole: orgRole},
	}
	raw, err := token.Sign(k, c)
	return raw, exp, err
}

func (s *AuthService) sessionResponse(u *userRow, access string, exp int64, refresh string, now time.Time) *voxanne.Session {
	user := u.User
	return &voxanne.Session{AccessToken: access, TokenType: "bearer", ExpiresIn: exp - now.Unix(),
		ExpiresAt: exp, RefreshToken: refresh, User: &user}
}

// Authentication methods of a session (GoTrue's amr method names).
const (
	methodPassword = "password"
	methodOTP      = "otp"
	methodTOTP     = "totp"
)

// newSession starts an aal1 session for u, authenticated by method (in
// preferredOrg when still a member).
func (s *AuthService) newSession(ctx context.Context, tx pgx.Tx, u *userRow, preferredOrg string, ci voxanne.ClientInfo, method string) (*voxanne.Session, error) {
	return s.startSession(ctx, tx, u, preferredOrg, ci, method, "")
}

// newSessionLike starts a session for u in org that keeps how the session
// from was authenticated (its aal and amr): an org switch is no new sign-in.
func (s *AuthService) newSessionLike(ctx context.Context, tx pgx.Tx, u *userRow, org string, ci voxanne.ClientInfo, from string) (*voxanne.Session, error) {
	// A session that is not found (an external project's token has none)
	// makes a plain password-strength session.
	return s.startSession(ctx, tx, u, org, ci, methodPassword, from)
}

func (s *AuthService) startSession(ctx context.Context, tx pgx.Tx, u *userRow, preferredOrg string, ci voxanne.ClientInfo, method, from string) (*voxanne.Session, error) {
	orgID, role, err := resolveOrg(ctx, tx, u, preferredOrg, true)
	if err != nil {
		return nil, err
	}
	var sessionID string
	var sa sessionAuth
	err = tx.QueryRow(ctx, `insert into auth.sessions as s (user_id, org_id, user_agent, ip, aal, amr, factor_id)
		select $1, nullif($2, '')::uuid, $3, $4, coalesce(f.aal, 'aal1'),
			coalesce(f.amr, jsonb_build_array(jsonb_build_object('method', $5::text, 'timestamp', extract(epoch from now())::bigint))),
			f.factor_id
		from (select 1) one left join (select `+sessionAuthSQL+` as amr, s.factor_id
			from auth.sessions s where s.id = nullif($6, '')::uuid and s.user_id = $1) f on true
		returning `+sessionAuthSQL+`, s.id`, u.ID, orgID, ci.UserAgent, ci.IP, method, from).Scan(&sa.AAL, &sa.AMR, &sessionID)
	if err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	refresh := randomToken()
	if _, err := tx.Exec(ctx, `insert into auth.refresh_tokens (token_hash, session_id, user_id) values ($1, $2, $3)`,
		hashToken(refresh), sessionID, u.ID); err != nil {
		return nil, fmt.Errorf("create refresh token: %w", err)
	}
	now := s.now()
	access, exp, err := s.accessToken(u, sessionID, orgID, role, sa, now)
	if err != nil {
		return nil, err
	}
	return s.sessionResponse(u, access, exp, refresh, now), nil
}

// SignUp creates a user (the database trigger creates their organization) and,
// with autoconfirm, signs them in; otherwise it mails a confirmation link.
func (s *AuthService) SignUp(ctx context.Context, in voxanne.SignUpInput, ci voxanne.ClientInfo) (*voxanne.User, *voxanne.Session, error) {
	if s.cfg.DisableSignup {
		return nil, nil, authErr(voxanne.EINVALID, voxanne.ReasonSignupDisabled, "Signups not allowed for this instance")
	}
	email, err := normalizeEmail(in.Email)
	if err != nil {
		return nil, nil, err
	}
	if err := s.checkPassword(in.Password); err != nil {
		return nil, nil, err
	}
	if err := checkUserMetadata(in.Data); err != nil {
		return nil, nil, err
	}
	hash, err := password.Hash(in.Password)
	if err != nil {
		return nil, nil, fmt.Errorf("sign up: %w", err)
	}
	data := in.Data
	if data == nil {
		data = map[string]any{}
	}
	var (
		sess     *voxanne.Session
		u        *userRow
		otpToken string
	)
	err = pgx.BeginFunc(ctx, s.db.auth, func(tx pgx.Tx) error {
		// The sign-up trigger records it when the sign-up joins an org
		// through an invitation.
		if _, err := tx.Exec(ctx, "select set_config('voxanne.client_ip', $1, true)", ci.IP); err != nil {
			return err
		}
		var err error
		u, err = scanUser(tx.QueryRow(ctx, `insert into auth.users (email, encrypted_password, email_confirmed_at, raw_app_meta_data, raw_user_meta_data)
			values ($1, $2, case when $3 then now() end, '{"provider":"email","providers":["email"]}', $4)
			returning `+userColumns, email, hash, s.cfg.Autoconfirm, data))
		if err != nil {
			if err := invitationError(err); err != nil {
				return err
			}
			if voxanne.ErrorCode(mapError("", err)) == voxanne.ECONFLICT {
				return authErr(voxanne.EINVALID, voxanne.ReasonUserAlreadyExists, "User already registered")
			}
			return fmt.Errorf("insert user: %w", err)
		}
		// A sign-up through an invitation is confirmed: the invitation came
		// by mail to this address.
		if u.EmailConfirmedAt == nil {
			otpToken, err = s.newMailToken(ctx, tx, u, "signup")
			return err
		}
		if _, err := tx.Exec(ctx, "update auth.users set last_sign_in_at = now() where id = $1", u.ID); err != nil {
			return err
		}
		now := s.now().UTC()
		u.LastSignInAt = &now
		sess, err = s.newSession(ctx, tx, u, "", ci, methodPassword)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	s.security(ctx, "user_signed_up", slog.String("user_id", u.ID), slog.String("ip", ci.IP))
	if otpToken != "" {
		s.sendMail(ctx, email, "Confirm your Voxanne account",
			"Confirm your email address to finish signing up:\n\n"+s.verifyLink(otpToken, "signup")+"\n\nThe link expires in one hour.")
	}
	return &u.User, sess, nil
}

// SignInWithPassword checks the credentials and starts a session. An unknown
// email and a wrong password answer alike and take the same time.
func (s *AuthService) SignInWithPassword(ctx context.Context, emailIn, pw string, ci voxanne.ClientInfo) (*voxanne.Session, error) {
	email, err := normalizeEmail(emailIn)
	if err != nil {
		if err := password.VerifyDummy(pw); err != nil {
			return nil, err
		}
		return nil, errInvalidCredentials
	}
	u, err := scanUser(s.db.auth.QueryRow(ctx, "select "+userColumns+" from auth.users where email = $1", email))
	if errors.Is(err, pgx.ErrNoRows) {
		if err := password.VerifyDummy(pw); err != nil {
			return nil, err
		}
		s.security(ctx, "sign_in_failed", slog.String("reason", "unknown_email"), slog.String("ip", ci.IP))
		return nil, errInvalidCredentials
	} else if err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	ok, rehash, err := password.Verify(pw, u.hash)
	if errors.Is(err, password.ErrBusy) {
		return nil, err
	}
	if err != nil && u.hash != "" {
		s.cfg.Logger.Error("stored password hash unreadable", "user_id", u.ID, "error", err)
	}
	if !ok {
		if u.hash == "" {
			if err := password.VerifyDummy(pw); err != nil {
				return nil, err
			}
		}
		s.security(ctx, "sign_in_failed", slog.String("user_id", u.ID), slog.String("reason", "wrong_password"), slog.String("ip", ci.IP))
		return nil, errInvalidCredentials
	}
	if u.EmailConfirmedAt == nil {
		return nil, authErr(voxanne.EINVALID, voxanne.ReasonEmailNotConfirmed, "Email not confirmed")
	}
	var sess *voxanne.Session
	err = pgx.BeginFunc(ctx, s.db.auth, func(tx pgx.Tx) error {
		if rehash {
			// Imported bcrypt (or weaker argon2id) hashes move to current parameters.
			if h, err := password.Hash(pw); err == nil {
				if _, err := tx.Exec(ctx, "update auth.users set encrypted_password = $2 where id = $1", u.ID, h); err != nil {
					return err
				}
			}
		}
		if err := tx.QueryRow(ctx, "update auth.users set last_sign_in_at = now() where id = $1 returning last_sign_in_at", u.ID).Scan(&u.LastSignInAt); err != nil {
			return err
		}
		pref, _ := u.AppMetadata["org_id"].(string)
		var err error
		if sess, err = s.newSession(ctx, tx, u, pref, ci, methodPassword); err != nil {
			return err
		}
		if org, _ := u.AppMetadata["org_id"].(string); org != "" {
			return appendAudit(ctx, tx, voxanne.AuditEvent{OrgID: org, ActorID: u.ID, Action: voxanne.AuditSignIn,
				TargetType: "session", IP: ci.IP})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	s.security(ctx, "sign_in", slog.String("user_id", u.ID), slog.String("ip", ci.IP))
	return sess, nil
}

// Refresh rotates a refresh token: the first use yields the successor; a repeat
// within ReuseWindow yields the same successor; a repeat after it revokes the
// session. The token's row lock makes concurrent refreshes agree on one successor.
func (s *AuthService) Refresh(ctx context.Context, refresh string, ci voxanne.ClientInfo) (*voxanne.Session, error) {
	if refresh == "" {
		return nil, authErr(voxanne.EINVALID, voxanne.ReasonRefreshTokenNotFound, "Invalid Refresh Token: Refresh Token Not Found")
	}
	var (
		sess    *voxanne.Session
		outcome error
		revoked []voxanne.Revocation
	)
	err := pgx.BeginFunc(ctx, s.db.auth, func(tx pgx.Tx) error {
		var (
			tokenID            int64
			sessionID, userID  string
			spentAt, revokedAt *time.Time
			revokedReason, org *string
			secret             []byte
			sa                 sessionAuth
			now                time.Time
		)
		err := tx.QueryRow(ctx, `select rt.id, rt.session_id, rt.user_id, rt.spent_at, s.revoked_at, s.revoked_reason,
			s.secret, s.org_id::text, `+sessionAuthSQL+`, now()
			from auth.refresh_tokens rt join auth.sessions s on s.id = rt.session_id
			where rt.token_hash = $1 for update of rt`, hashToken(refresh)).
			Scan(&tokenID, &sessionID, &userID, &spentAt, &revokedAt, &revokedReason, &secret, &org, &sa.AAL, &sa.AMR, &now)
		if errors.Is(err, pgx.ErrNoRows) {
			outcome = authErr(voxanne.EINVALID, voxanne.ReasonRefreshTokenNotFound, "Invalid Refresh Token: Refresh Token Not Found")
			return nil
		} else if err != nil {
			return err
		}
		if revokedAt != nil {
			outcome = errSessionNotFound
			if revokedReason != nil && *revokedReason == "refresh_token_reuse" {
				outcome = authErr(voxanne.EINVALID, voxanne.ReasonRefreshTokenAlreadyUsed, "Invalid Refresh Token: Already Used")
			} else {
				outcome = authErr(voxanne.EINVALID, voxanne.ReasonSessionNotFound, "Session not found")
			}
			return nil
		}
		next := successor(secret, refresh)
		switch {
		case spentAt == nil:
			if _, err := tx.Exec(ctx, "update auth.refresh_tokens set spent_at = now() where id = $1", tokenID); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `insert into auth.refresh_tokens (token_hash, session_id, user_id, parent_id)
				values ($1, $2, $3, $4)`, hashToken(next), sessionID, userID, tokenID); err != nil {
				return err
			}
		case now.Sub(*spentAt) <= ReuseWindow:
			// A client that lost the response: same successor, fresh access token.
		default:
			if revoked, err = revokeSessions(ctx, tx, "id = $1", "refresh_token_reuse", sessionID); err != nil {
				return err
			}
			s.security(ctx, "refresh_token_reuse", slog.String("user_id", userID), slog.String("session_id", sessionID), slog.String("ip", ci.IP))
			outcome = authErr(voxanne.EINVALID, voxanne.ReasonRefreshTokenAlreadyUsed, "Invalid Refresh Token: Already Used")
			return nil
		}
		u, err := s.userByID(ctx, tx, userID)
		if err != nil {
			return err
		}
		pref := ""
		if org != nil {
			pref = *org
		}
		// A session stays in its org. If the user left it (or was removed,
		// or it was deleted), the session goes on without an org: never
		// silently in another one. The client learns it from the token and
		// /api/me, and picks an org by switching.
		orgID, role, err := resolveOrg(ctx, tx, u, pref, false)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `update auth.sessions set refreshed_at = now(), updated_at = now(),
			org_id = nullif($2, '')::uuid where id = $1`, sessionID, orgID); err != nil {
			return err
		}
		t := s.now()
		access, exp, err := s.accessToken(u, sessionID, orgID, role, sa, t)
		if err != nil {
			return err
		}
		sess = s.sessionResponse(u, access, exp, next, t)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	s.announce(revoked)
	return sess, outcome
}

// revokeSessions ends the sessions matching where (over auth.sessions) and
// their refresh tokens, returning the revocations to announce after commit.
func revokeSessions(ctx context.Context, tx pgx.Tx, where, reason string, args ...any) ([]voxanne.Revocation, error) {
	reasonArg := fmt.Sprintf("$%d", len(args)+1)
	rows, err := tx.Query(ctx, `with ended as (
			update auth.sessions set revoked_at = now(), revoked_reason = `+reasonArg+`, updated_at = now()
			where revoked_at is null and `+where+` returning id, user_id),
		spent as (update auth.refresh_tokens set revoked = true where session_id in (select id from ended))
		select id::text, user_id::text from ended`,
		append(args, reason)...)
	if err != nil {
		return nil, fmt.Errorf("revoke sessions: %w", err)
	}
	revs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (voxanne.Revocation, error) {
		rev := voxanne.Revocation{Kind: voxanne.RevokeSession}
		err := r.Scan(&rev.SessionID, &rev.UserID)
		return rev, err
	})
	if err != nil {
		return nil, fmt.Errorf("revoke sessions: %w", err)
	}
	return revs, nil
}

// announce tells this instance's cache of revocations just committed.
func (s *AuthService) announce(revs []voxanne.Revocation) {
	if s.cfg.Revoked == nil {
		return
	}
	for _, r := range revs {
		s.cfg.Revoked(r)
	}
}

// User returns a user by id.
func (s *AuthService) User(ctx context.Context, id string) (*voxanne.User, error) {
	u, err := scanUser(s.db.auth.QueryRow(ctx, "select "+userColumns+" from auth.users where id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, authErr(voxanne.ENOTFOUND, voxanne.ReasonUserNotFound, "User not found")
	} else if err != nil {
		return nil, fmt.Errorf("get user: %w", err)
	}
	if u.Factors, err = factorsOf(ctx, s.db.auth, id); err != nil {
		return nil, err
	}
	return &u.User, nil
}

// UpdateUser changes the caller's password and/or metadata. A new password ends
// the user's other sessions.
func (s *AuthService) UpdateUser(ctx context.Context, p *voxanne.Principal, in voxanne.UserUpdate) (*voxanne.User, error) {
	var hash string
	if in.Password != nil {
		if err := s.checkPassword(*in.Password); err != nil {
			return nil, err
		}
		var err error
		if hash, err = password.Hash(*in.Password); err != nil {
			return nil, err
		}
	}
	var u *userRow
	var revoked []voxanne.Revocation
	err := pgx.BeginFunc(ctx, s.db.auth, func(tx pgx.Tx) error {
		var err error
		u, err = scanUser(tx.QueryRow(ctx, `update auth.users set
			encrypted_password = coalesce(nullif($2, ''), encrypted_password),
			raw_user_meta_data = case when $3::jsonb is null then raw_user_meta_data
				else jsonb_strip_nulls(raw_user_meta_data || $3::jsonb) end,
			updated_at = now()
			where id = $1 returning `+userColumns, p.UserID, hash, in.Data))
		if errors.Is(err, pgx.ErrNoRows) {
			return authErr(voxanne.ENOTFOUND, voxanne.ReasonUserNotFound, "User not found")
		} else if err != nil {
			return err
		}
		// The merged metadata is what tokens will carry.
		if err := checkUserMetadata(u.UserMetadata); err != nil {
			return err
		}
		if hash != "" {
			if err := spendMailTokens(ctx, tx, p.UserID); err != nil {
				return err
			}
			revoked, err = revokeSessions(ctx, tx, "user_id = $1 and id <> $2", "password_changed", p.UserID, p.SessionID)
		}
		return err
	})
	if err != nil {
		return nil, mapError("update user", err)
	}
	s.announce(revoked)
	if hash != "" {
		s.security(ctx, "password_changed", slog.String("user_id", p.UserID))
	}
	return &u.User, nil
}

// Logout ends the caller's session (local), their other sessions (others) or
// all of them (global).
func (s *AuthService) Logout(ctx context.Context, p *voxanne.Principal, scope string) error {
	var where string
	args := []any{p.UserID}
	switch scope {
	case "", voxanne.ScopeGlobal:
		scope, where = voxanne.ScopeGlobal, "user_id = $1"
	case voxanne.ScopeLocal:
		where, args = "user_id = $1 and id = $2", append(args, p.SessionID)
	case voxanne.ScopeOthers:
		where, args = "user_id = $1 and id <> $2", append(args, p.SessionID)
	default:
		return authErr(voxanne.EINVALID, voxanne.ReasonValidationFailed, "scope must be global, local or others")
	}
	var revoked []voxanne.Revocation
	err := pgx.BeginFunc(ctx, s.db.auth, func(tx pgx.Tx) error {
		var err error
		if revoked, err = revokeSessions(ctx, tx, where, "logout", args...); err != nil {
			return err
		}
		if p.OrgID == "" {
			return nil
		}
		return appendAudit(ctx, tx, voxanne.AuditEvent{OrgID: p.OrgID, ActorID: p.UserID, Action: voxanne.AuditSignOut,
			TargetType: "session", TargetID: p.SessionID, Details: map[string]any{"scope": scope}})
	})
	if err != nil {
		return err
	}
	s.announce(revoked)
	s.security(ctx, "sign_out", slog.String("user_id", p.UserID), slog.String("session_id", p.SessionID), slog.String("scope", scope))
	return nil
}

// newMailToken stores a single-use token of kind for u and returns it.
func (s *AuthService) newMailToken(ctx context.Context, tx pgx.Tx, u *userRow, kind string) (string, error) {
	t := randomToken()
	_, err := tx.Exec(ctx, `insert into auth.one_time_tokens (user_id, token_type, token_hash, email, expires_at)
		values ($1, $2, $3, $4, now() + make_interval(secs => $5))`, u.ID, kind, hashToken(t), u.Email, mailTokenLifetime.Seconds())
	if err != nil {
		return "", fmt.Errorf("create %s token: %w", kind, err)
	}
	return t, nil
}

// spendMailTokens invalidates every outstanding recovery and confirmation
// link of a user: after a password change or a completed recovery, a link
// mailed earlier (perhaps to an inbox someone else reads) must not sign in.
func spendMailTokens(ctx context.Context, tx pgx.Tx, userID string) error {
	if _, err := tx.Exec(ctx, `update auth.one_time_tokens set used_at = now()
		where user_id = $1 and used_at is null`, userID); err != nil {
		return fmt.Errorf("invalidate mailed links: %w", err)
	}
	return nil
}

func (s *AuthService) verifyLink(t, kind string) string {
	return s.cfg.PublicURL + "/auth/v1/verify?type=" + kind + "&token_hash=" + t
}

// sendMail sends in the background, so that whether an address exists cannot be
// read from how long a request takes; failures are logged.
func (s *AuthService) sendMail(ctx context.Context, to, subject, body string) {
	if s.cfg.Mailer == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := s.cfg.Mailer.Send(ctx, voxanne.Mail{To: to, Subject: subject, Body: body}); err != nil {
			s.cfg.Logger.Error("send mail", "subject", subject, "error", err)
		}
	}()
}

// Recover mails a password-recovery link if the address belongs to a user. It
// answers the same either way, and as fast: the lookup, the token and the mail
// happen after the answer, so its timing says nothing about the address.
func (s *AuthService) Recover(ctx context.Context, emailIn string, ci voxanne.ClientInfo) error {
	email, err := normalizeEmail(emailIn)
	if err != nil {
		return err
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := s.recover(ctx, email, ci); err != nil {
			s.cfg.Logger.Error("password recovery", "error", err)
		}
	}()
	return nil
}

func (s *AuthService) recover(ctx context.Context, email string, ci voxanne.ClientInfo) error {
	var t string
	err := pgx.BeginFunc(ctx, s.db.auth, func(tx pgx.Tx) error {
		u, err := scanUser(tx.QueryRow(ctx, "select "+userColumns+" from auth.users where email = $1", email))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		} else if err != nil {
			return err
		}
		t, err = s.newMailToken(ctx, tx, u, "recovery")
		return err
	})
	if err != nil || t == "" {
		return err
	}
	s.security(ctx, "recovery_requested", slog.String("ip", ci.IP))
	s.sendMail(ctx, email, "Reset your Voxanne password",
		"Someone asked to reset the password of this account. To sign in and choose a new password, open:\n\n"+
			s.verifyLink(t, "recovery")+"\n\nThe link expires in one hour. If it was not you, ignore this mail.")
	return nil
}

// Verify completes a mailed flow (signup confirmation, recovery, magic link,
// invitation, or a typed 6-digit code of any of them) and starts a session.
// Each token works once and for an hour; a wrong code counts against the
// address's outstanding ones.
func (s *AuthService) Verify(ctx context.Context, in voxanne.VerifyInput, ci voxanne.ClientInfo) (*voxanne.Session, error) {
	kinds, ok := verifyKinds[in.Type]
	if !ok {
		return nil, authErr(voxanne.EINVALID, voxanne.ReasonValidationFailed, "Verify requires a verification type: signup, email, magiclink, recovery or invite")
	}
	if in.TokenHash == "" && (in.Token == "" || in.Email == "") {
		return nil, authErr(voxanne.EINVALID, voxanne.ReasonValidationFailed, "Verify requires either a token_hash or a token with an email")
	}
	var sess *voxanne.Session
	var outcome error
	var kind string
	err := pgx.BeginFunc(ctx, s.db.auth, func(tx pgx.Tx) error {
		userID, email, k, out, err := redeemToken(ctx, tx, in, kinds)
		if err != nil || out != nil {
			outcome = out
			return err
		}
		kind = k
		u, err := scanUser(tx.QueryRow(ctx, `update auth.users set
			email_confirmed_at = coalesce(email_confirmed_at, now()), last_sign_in_at = now(), updated_at = now()
			where id = $1 and email = $2 returning `+userColumns, userID, email))
		if errors.Is(err, pgx.ErrNoRows) {
			return errOTPInvalid // the address changed since the mail went out
		} else if err != nil {
			return err
		}
		if kind == "recovery" {
			// A completed recovery spends the user's other links too.
			if err := spendMailTokens(ctx, tx, u.ID); err != nil {
				return err
			}
		}
		pref, _ := u.AppMetadata["org_id"].(string)
		// GoTrue's POST /verify issues every session with "otp".
		sess, err = s.newSession(ctx, tx, u, pref, ci, methodOTP)
		return err
	})
	if err != nil {
		return nil, mapError("verify", err)
	}
	if outcome != nil {
		return nil, outcome
	}
	s.security(ctx, "verified_"+kind, slog.String("user_id", sess.User.ID), slog.String("ip", ci.IP))
	return sess, nil
}

// JWKS returns the trusted public keys.
func (s *AuthService) JWKS(ctx context.Context) ([]byte, error) { return s.keys.JWKS(), nil }

// ServiceRoleToken signs a service_role token valid for ttl; the key stays
// trusted after a rotation until it expires.
func (s *AuthService) ServiceRoleToken(ctx context.Context, ttl time.Duration) (string, error) {
	k := s.keys.Current()
	now := s.now()
	exp := now.Add(ttl)
	if err := s.keys.noteLongToken(ctx, k.ID, exp); err != nil {
		return "", fmt.Errorf("service role token: %w", err)
	}
	return token.Sign(k, &token.Claims{Issuer: s.cfg.Issuer, Subject: "service_role", Audience: token.DefaultAudience,
		ExpiresAt: exp.Unix(), IssuedAt: now.Unix(), Role: token.RoleServiceRole})
}
