package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/auth/token"
	"github.com/voxanne/voxanne/auth/totp"
)

// MFA limits, as GoTrue's defaults where it has one.
const (
	// challengeLifetime is how long a challenge can be answered.
	challengeLifetime = 5 * time.Minute
	// maxFactors bounds a user's factors, verified or not.
	maxFactors = 10
	// unverifiedFactorLifetime is how long an enrolment may wait for its
	// first code before it is cleared away.
	unverifiedFactorLifetime = time.Hour
	// mfaFailLimit wrong codes per factor within mfaFailWindow lock the
	// factor until the window has passed.
	mfaFailLimit  = 5
	mfaFailWindow = 5 * time.Minute
)

// MFAStore implements voxanne.MFAService: TOTP factors in auth.mfa_factors
// (secrets sealed with the key-encryption key when one is configured, as
// signing keys and endpoint secrets are), challenges, and the org policy that
// requires MFA.
type MFAStore struct {
	auth *AuthService
	kek  []byte
	now  func() time.Time
}

var _ voxanne.MFAService = (*MFAStore)(nil)

// NewMFAStore returns the MFA service; kekSecret is
// VOXANNE_KEY_ENCRYPTION_KEY ("": secrets are stored unencrypted).
func NewMFAStore(auth *AuthService, kekSecret string) *MFAStore {
	m := &MFAStore{auth: auth, now: time.Now}
	if kekSecret != "" {
		m.kek = token.DeriveKEK(kekSecret)
	}
	return m
}

var (
	errFactorNotFound = authErr(voxanne.ENOTFOUND, voxanne.ReasonMFAFactorNotFound, "Factor not found")
	errBadTOTP        = authErr(voxanne.EINVALID, voxanne.ReasonMFAVerificationFailed, "Invalid TOTP code entered")
)

func (m *MFAStore) seal(secret []byte) ([]byte, bool, error) {
	if m.kek == nil {
		return secret, false, nil
	}
	sealed, err := token.Seal(m.kek, secret)
	return sealed, true, err
}

func (m *MFAStore) open(b []byte, encrypted bool) ([]byte, error) {
	if !encrypted {
		return b, nil
	}
	if m.kek == nil {
		return nil, errors.New("a TOTP secret is encrypted but no key-encryption key is configured")
	}
	return token.Open(m.kek, b)
}

const factorColumns = `id::text, friendly_name, factor_type, status, created_at, updated_at, last_challenged_at`

func scanFactor(row pgx.CollectableRow) (voxanne.Factor, error) {
	var f voxanne.Factor
	err := row.Scan(&f.ID, &f.FriendlyName, &f.FactorType, &f.Status, &f.CreatedAt, &f.UpdatedAt, &f.LastChallengedAt)
	return f, err
}

// factorsOf lists a user's factors, oldest first.
func factorsOf(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, userID string) ([]voxanne.Factor, error) {
	rows, err := q.Query(ctx, `select `+factorColumns+` from auth.mfa_factors where user_id = $1 order by created_at, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list factors: %w", err)
	}
	return pgx.CollectRows(rows, scanFactor)
}

// Factors lists a user's factors.
func (m *MFAStore) Factors(ctx context.Context, userID string) ([]voxanne.Factor, error) {
	return factorsOf(ctx, m.auth.db.auth, userID)
}

// Enroll creates an unverified TOTP factor: the secret, its otpauth:// URI
// and a QR code of it are shown once, here.
func (m *MFAStore) Enroll(ctx context.Context, p *voxanne.Principal, factorType, friendlyName, issuer string) (*voxanne.TOTPEnrollment, error) {
	switch factorType {
	case "totp":
	case "phone":
		return nil, authErr(voxanne.EINVALID, voxanne.ReasonMFAPhoneEnrollDisabled, "MFA enroll is disabled for Phone")
	case "webauthn":
		return nil, authErr(voxanne.EINVALID, voxanne.ReasonMFAWebAuthnEnrollDisabled, "MFA enroll is disabled for WebAuthn")
	default:
		return nil, authErr(voxanne.EINVALID, voxanne.ReasonValidationFailed, "factor_type needs to be totp, phone, or webauthn")
	}
	if len([]rune(friendlyName)) > 200 {
		return nil, authErr(voxanne.EINVALID, voxanne.ReasonValidationFailed, "friendly_name must be at most 200 characters")
	}
	if issuer == "" {
		if u, err := url.Parse(m.auth.cfg.PublicURL); err == nil && u.Host != "" {
			issuer = u.Host
		} else {
			issuer = "Voxanne"
		}
	}
	secret := totp.NewSecret()
	sealed, encrypted, err := m.seal(secret)
	if err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	out := &voxanne.TOTPEnrollment{Type: "totp", FriendlyName: friendlyName}
	var account string
	err = pgx.BeginFunc(ctx, m.auth.db.auth, func(tx pgx.Tx) error {
		// The user's row lock serializes enrolments: the limits below hold.
		if err := tx.QueryRow(ctx, `select coalesce(email, phone, id::text) from auth.users where id = $1 for update`, p.UserID).Scan(&account); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return authErr(voxanne.ENOTFOUND, voxanne.ReasonUserNotFound, "User not found")
			}
			return err
		}
		if _, err := tx.Exec(ctx, `delete from auth.mfa_factors where user_id = $1 and status = 'unverified'
			and created_at < now() - make_interval(secs => $2)`, p.UserID, unverifiedFactorLifetime.Seconds()); err != nil {
			return err
		}
		var total, verified int
		var clash bool
		if err := tx.QueryRow(ctx, `select count(*), count(*) filter (where status = 'verified'),
			coalesce(bool_or(friendly_name = $2 and $2 <> ''), false) from auth.mfa_factors where user_id = $1`,
			p.UserID, friendlyName).Scan(&total, &verified, &clash); err != nil {
			return err
		}
		switch {
		case clash:
			return authErr(voxanne.EINVALID, voxanne.ReasonMFAFactorNameConflict,
				fmt.Sprintf("A factor with the friendly name %q for this user already exists", friendlyName))
		case total >= maxFactors:
			return authErr(voxanne.EINVALID, voxanne.ReasonTooManyEnrolledMFAFactors, "Maximum number of verified factors reached, unenroll to continue")
		case verified > 0 && p.AAL != voxanne.AAL2:
			return authErr(voxanne.EFORBIDDEN, voxanne.ReasonInsufficientAAL, "AAL2 required to enroll a new factor")
		}
		return tx.QueryRow(ctx, `insert into auth.mfa_factors (user_id, friendly_name, factor_type, secret, encrypted)
			values ($1, $2, 'totp', $3, $4) returning id::text`, p.UserID, friendlyName, sealed, encrypted).Scan(&out.ID)
	})
	if err != nil {
		return nil, mapError("enroll factor", err)
	}
	out.TOTP.Secret = totp.EncodeSecret(secret)
	out.TOTP.URI = totp.URI(issuer, account, secret)
	if out.TOTP.QRCode, err = totp.QRCodeSVG(out.TOTP.URI); err != nil {
		return nil, err
	}
	m.auth.security(ctx, "mfa_factor_enrolled", slog.String("user_id", p.UserID), slog.String("factor_id", out.ID))
	return out, nil
}

// Challenge opens a challenge on one of the user's factors; the code that
// answers it must come from the same address within challengeLifetime.
func (m *MFAStore) Challenge(ctx context.Context, p *voxanne.Principal, factorID, ip string) (*voxanne.Challenge, error) {
	c := &voxanne.Challenge{Type: "totp"}
	var created time.Time
	err := pgx.BeginFunc(ctx, m.auth.db.auth, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `update auth.mfa_factors set last_challenged_at = now() where id = $1 and user_id = $2`, factorID, p.UserID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errFactorNotFound
		}
		return tx.QueryRow(ctx, `insert into auth.mfa_challenges (factor_id, ip) values ($1, $2) returning id::text, created_at`,
			factorID, ip).Scan(&c.ID, &created)
	})
	if err != nil {
		return nil, mapError("challenge factor", err)
	}
	c.ExpiresAt = created.Add(challengeLifetime).Unix()
	return c, nil
}

// Verify answers a challenge with a TOTP code. A code is good in its own
// 30-second step and one step either side, and only once: a step at or
// before the last one accepted is refused, so a code seen over someone's
// shoulder cannot be replayed. mfaFailLimit wrong codes lock the factor for
// mfaFailWindow. A right code verifies the factor (the first time), raises
// the session to aal2 and returns its new tokens; the session's other
// refresh tokens are spent (GoTrue swaps them likewise), and the user's other
// aal1 sessions end.
func (m *MFAStore) Verify(ctx context.Context, p *voxanne.Principal, factorID, challengeID, code string, ci voxanne.ClientInfo) (*voxanne.Session, error) {
	if code == "" {
		return nil, authErr(voxanne.EINVALID, voxanne.ReasonValidationFailed, "Code needs to be non-empty")
	}
	if p.SessionID == "" {
		return nil, authErr(voxanne.EUNAUTHORIZED, voxanne.ReasonSessionNotFound, "Session from session_id claim in JWT does not exist")
	}
	var (
		sess    *voxanne.Session
		outcome error
		revoked []voxanne.Revocation
	)
	err := pgx.BeginFunc(ctx, m.auth.db.auth, func(tx pgx.Tx) error {
		var (
			sealed         []byte
			encrypted      bool
			lastStep       int64
			failed         int
			failedSince    *time.Time
			status, chIP   string
			chCreated, now time.Time
			chVerified     *time.Time
			chFound        bool
		)
		err := tx.QueryRow(ctx, `select secret, encrypted, last_step, failed, failed_since, status, now()
			from auth.mfa_factors where id = $1 and user_id = $2 for update`, factorID, p.UserID).
			Scan(&sealed, &encrypted, &lastStep, &failed, &failedSince, &status, &now)
		if errors.Is(err, pgx.ErrNoRows) {
			return errFactorNotFound
		} else if err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `select ip, created_at, verified_at from auth.mfa_challenges where id = $1 and factor_id = $2`,
			challengeID, factorID).Scan(&chIP, &chCreated, &chVerified)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		default:
			chFound = true
		}
		switch {
		case !chFound:
			return authErr(voxanne.EINVALID, voxanne.ReasonMFAFactorNotFound, "MFA factor with the provided challenge ID not found")
		case chVerified != nil || chIP != ci.IP:
			return authErr(voxanne.EINVALID, voxanne.ReasonMFAIPAddressMismatch, "Challenge and verify IP addresses mismatch.")
		case now.Sub(chCreated) > challengeLifetime:
			if _, err := tx.Exec(ctx, `delete from auth.mfa_challenges where id = $1`, challengeID); err != nil {
				return err
			}
			outcome = authErr(voxanne.EINVALID, voxanne.ReasonMFAChallengeExpired,
				fmt.Sprintf("MFA challenge %s has expired, verify against another challenge or create a new challenge.", challengeID))
			return nil
		case failed >= mfaFailLimit && failedSince != nil && now.Sub(*failedSince) < mfaFailWindow:
			return authErr(voxanne.ERATELIMIT, voxanne.ReasonRateLimited, "Too many wrong codes: wait a few minutes before trying again")
		}
		secret, err := m.open(sealed, encrypted)
		if err != nil {
			return fmt.Errorf("open TOTP secret: %w", err)
		}
		step, ok := totp.Validate(secret, code, m.now())
		if !ok || step <= lastStep {
			// Counted and committed: the window restarts once it has passed.
			if _, err := tx.Exec(ctx, `update auth.mfa_factors set
				failed = case when failed_since is null or failed_since < now() - make_interval(secs => $2) then 1 else failed + 1 end,
				failed_since = case when failed_since is null or failed_since < now() - make_interval(secs => $2) then now() else failed_since end
				where id = $1`, factorID, mfaFailWindow.Seconds()); err != nil {
				return err
			}
			outcome = errBadTOTP
			return nil
		}
		if _, err := tx.Exec(ctx, `update auth.mfa_factors set status = 'verified', last_step = $2, failed = 0, failed_since = null,
			updated_at = now() where id = $1`, factorID, step); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `update auth.mfa_challenges set verified_at = now() where id = $1`, challengeID); err != nil {
			return err
		}
		if status != voxanne.FactorVerified {
			// The first verification of a factor clears the user's other
			// unfinished enrolments.
			if _, err := tx.Exec(ctx, `delete from auth.mfa_factors where user_id = $1 and status = 'unverified' and id <> $2`, p.UserID, factorID); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, `update auth.sessions s set aal = 'aal2', factor_id = $3, updated_at = now(),
			amr = jsonb_build_array(jsonb_build_object('method', 'totp', 'timestamp', extract(epoch from now())::bigint))
				|| coalesce((select jsonb_agg(e) from jsonb_array_elements(`+amrSQL+`) e where e->>'method' <> 'totp'), '[]'::jsonb)
			where s.id = $1 and s.user_id = $2 and s.revoked_at is null`, p.SessionID, p.UserID, factorID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return authErr(voxanne.EUNAUTHORIZED, voxanne.ReasonSessionNotFound, "Session from session_id claim in JWT does not exist")
		}
		if revoked, err = revokeSessions(ctx, tx, "user_id = $1 and id <> $2 and aal = 'aal1'", "mfa_verified", p.UserID, p.SessionID); err != nil {
			return err
		}
		sess, err = m.auth.reissue(ctx, tx, p.SessionID, p.UserID)
		return err
	})
	if err != nil {
		return nil, mapError("verify factor", err)
	}
	if outcome != nil {
		m.auth.security(ctx, "mfa_verification_failed", slog.String("user_id", p.UserID), slog.String("factor_id", factorID), slog.String("ip", ci.IP))
		return nil, outcome
	}
	m.auth.announce(revoked)
	m.auth.security(ctx, "mfa_verified", slog.String("user_id", p.UserID), slog.String("factor_id", factorID), slog.String("ip", ci.IP))
	return sess, nil
}

// Unenroll deletes a factor. A verified one needs an aal2 session; sessions
// it raised to aal2 are lowered to aal1 (their tokens say so from their next
// refresh).
func (m *MFAStore) Unenroll(ctx context.Context, p *voxanne.Principal, factorID string) error {
	err := pgx.BeginFunc(ctx, m.auth.db.auth, func(tx pgx.Tx) error {
		var status string
		err := tx.QueryRow(ctx, `select status from auth.mfa_factors where id = $1 and user_id = $2 for update`, factorID, p.UserID).Scan(&status)
		if errors.Is(err, pgx.ErrNoRows) {
			return errFactorNotFound
		} else if err != nil {
			return err
		}
		if status == voxanne.FactorVerified && p.AAL != voxanne.AAL2 {
			return authErr(voxanne.EINVALID, voxanne.ReasonInsufficientAAL, "AAL2 required to unenroll verified factor")
		}
		if _, err := tx.Exec(ctx, `delete from auth.mfa_factors where id = $1`, factorID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `update auth.sessions s set aal = 'aal1', factor_id = null, updated_at = now(),
			amr = coalesce((select jsonb_agg(e) from jsonb_array_elements(`+amrSQL+`) e where e->>'method' <> 'totp'), '[]'::jsonb)
			where s.user_id = $1 and s.factor_id = $2`, p.UserID, factorID)
		return err
	})
	if err != nil {
		return mapError("unenroll factor", err)
	}
	m.auth.security(ctx, "mfa_factor_unenrolled", slog.String("user_id", p.UserID), slog.String("factor_id", factorID))
	return nil
}

// reissue gives session sessionID of userID a new access token (with the
// session's current aal and amr) and a new refresh token; the session's
// unspent refresh tokens are spent, past the reuse window, so presenting one
// again ends the session as any refresh-token reuse does.
func (s *AuthService) reissue(ctx context.Context, tx pgx.Tx, sessionID, userID string) (*voxanne.Session, error) {
	var sa sessionAuth
	var org *string
	if err := tx.QueryRow(ctx, `select `+sessionAuthSQL+`, s.org_id::text from auth.sessions s where s.id = $1`, sessionID).
		Scan(&sa.AAL, &sa.AMR, &org); err != nil {
		return nil, fmt.Errorf("reissue: %w", err)
	}
	if _, err := tx.Exec(ctx, `update auth.refresh_tokens set spent_at = now() - make_interval(secs => $2)
		where session_id = $1 and spent_at is null`, sessionID, (ReuseWindow + time.Second).Seconds()); err != nil {
		return nil, fmt.Errorf("reissue: %w", err)
	}
	refresh := randomToken()
	if _, err := tx.Exec(ctx, `insert into auth.refresh_tokens (token_hash, session_id, user_id) values ($1, $2, $3)`,
		hashToken(refresh), sessionID, userID); err != nil {
		return nil, fmt.Errorf("reissue: %w", err)
	}
	u, err := s.userByID(ctx, tx, userID)
	if err != nil {
		return nil, err
	}
	if u.Factors, err = factorsOf(ctx, tx, userID); err != nil {
		return nil, err
	}
	pref := ""
	if org != nil {
		pref = *org
	}
	orgID, role, err := resolveOrg(ctx, tx, u, pref, false)
	if err != nil {
		return nil, err
	}
	now := s.now()
	access, exp, err := s.accessToken(u, sessionID, orgID, role, sa, now)
	if err != nil {
		return nil, err
	}
	return s.sessionResponse(u, access, exp, refresh, now), nil
}

// SetRequireMFA sets whether the principal's org requires aal2 sessions
// (owner). Every member's cached tokens for the org are revoked by the
// migration's trigger, so every instance applies the policy at the next
// request.
func (m *MFAStore) SetRequireMFA(ctx context.Context, p *voxanne.Principal, require bool, ip string) (*voxanne.Org, error) {
	if err := requireRole(p, voxanne.RoleOwner); err != nil {
		return nil, err
	}
	// An owner proves the policy can be met, and cannot lock themself out,
	// by passing MFA first.
	if require && p.AAL != voxanne.AAL2 {
		return nil, authErr(voxanne.EFORBIDDEN, voxanne.ReasonInsufficientAAL,
			"verify a TOTP factor first (an aal2 session) before requiring MFA of the organization")
	}
	db := m.auth.db
	var o voxanne.Org
	var members []string
	err := db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		var was bool
		if err := tx.QueryRow(ctx, `select require_mfa from organizations where id = coalesce($1, id) for update`, db.org(p)).Scan(&was); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `update organizations set require_mfa = $2, updated_at = now() where id = coalesce($1, id)
			returning `+orgColumns, db.org(p), require).Scan(&o.ID, &o.Name, &o.RequireMFA, &o.CreatedAt, &o.UpdatedAt); err != nil {
			return err
		}
		if was == require {
			return nil
		}
		rows, err := tx.Query(ctx, `select user_id::text from memberships where org_id = coalesce($1, org_id)`, db.org(p))
		if err != nil {
			return err
		}
		if members, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return err
		}
		return appendAudit(ctx, tx, voxanne.AuditEvent{OrgID: p.OrgID, ActorID: p.UserID, Action: voxanne.AuditMFAPolicyChanged,
			TargetType: "org", TargetID: p.OrgID, IP: ip, Details: map[string]any{"require_mfa": require}})
	})
	if err != nil {
		return nil, mapError("set MFA policy", err)
	}
	revs := make([]voxanne.Revocation, 0, len(members))
	for _, u := range members {
		revs = append(revs, voxanne.Revocation{Kind: voxanne.RevokeMembership, UserID: u, OrgID: p.OrgID})
	}
	m.auth.announce(revs)
	return &o, nil
}
