package postgres

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/voxanne/voxanne"
)

// maxCodeAttempts wrong codes kill a mailed token: with a new code at most a
// few times an hour per address (the HTTP layer's mail budget), guessing a
// 6-digit code stays hopeless.
const maxCodeAttempts = 5

var _ voxanne.PasswordlessService = (*AuthService)(nil)

var errCodeInvalid = authErr(voxanne.EFORBIDDEN, voxanne.ReasonOTPExpired, "Token has expired or is invalid")

// newCode returns a uniformly random 6-digit code.
func newCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return fmt.Sprintf("%06d", n.Int64())
}

// codeHash binds a code to its recipient: the same digits mailed to two
// people are two different tokens.
func codeHash(recipient, code string) []byte {
	h := sha256.Sum256([]byte(strings.ToLower(recipient) + "\x00" + code))
	return h[:]
}

// newOTP stores a single-use token of kind for u that works both as a link
// (the returned token, hashed at rest) and as a 6-digit code typed with the
// address (hashed with it), for an hour.
func (s *AuthService) newOTP(ctx context.Context, tx pgx.Tx, u *userRow, kind string) (link, code string, err error) {
	link, code = randomToken(), newCode()
	_, err = tx.Exec(ctx, `insert into auth.one_time_tokens (user_id, token_type, token_hash, code_hash, email, expires_at)
		values ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))`,
		u.ID, kind, hashToken(link), codeHash(u.Email, code), u.Email, mailTokenLifetime.Seconds())
	if err != nil {
		return "", "", fmt.Errorf("create %s token: %w", kind, err)
	}
	return link, code, nil
}

// linkFor is the mailed link of a token: GET /auth/v1/verify, which signs in
// and redirects to redirectTo (checked there) or the site.
func (s *AuthService) linkFor(token, kind, redirectTo string) string {
	l := s.verifyLink(token, kind)
	if redirectTo != "" {
		l += "&redirect_to=" + url.QueryEscape(redirectTo)
	}
	return l
}

// userByEmail reads a user by address (nil when there is none), locking the
// row for the transaction.
func userByEmail(ctx context.Context, tx pgx.Tx, email string) (*userRow, error) {
	u, err := scanUser(tx.QueryRow(ctx, "select "+userColumns+" from auth.users where email = $1 for update", email))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return u, err
}

// createPasswordless creates an unconfirmed user without a password (the
// sign-up trigger makes their org, or joins an invitation's).
func (s *AuthService) createPasswordless(ctx context.Context, tx pgx.Tx, email, hash string, data map[string]any) (*userRow, error) {
	if data == nil {
		data = map[string]any{}
	}
	if err := checkUserMetadata(data); err != nil {
		return nil, err
	}
	u, err := scanUser(tx.QueryRow(ctx, `insert into auth.users (email, encrypted_password, raw_app_meta_data, raw_user_meta_data)
		values ($1, $2, '{"provider":"email","providers":["email"]}', $3) returning `+userColumns, email, hash, data))
	if err != nil {
		if err := invitationError(err); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

// SendOTP mails a magic link and a 6-digit code that signs in (and confirms
// the address). An unknown address is signed up first, unless CreateUser is
// false (422 otp_disabled) or sign-ups are off. Phone codes are not offered
// here (the HTTP layer answers for them).
func (s *AuthService) SendOTP(ctx context.Context, in voxanne.OTPInput, ci voxanne.ClientInfo) error {
	email, err := normalizeEmail(in.Email)
	if err != nil {
		return err
	}
	var link, code string
	err = pgx.BeginFunc(ctx, s.db.auth, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "select set_config('voxanne.client_ip', $1, true)", ci.IP); err != nil {
			return err
		}
		u, err := userByEmail(ctx, tx, email)
		if err != nil {
			return err
		}
		if u == nil {
			if !in.CreateUser || s.cfg.DisableSignup {
				return authErr(voxanne.EINVALID, voxanne.ReasonOTPDisabled, "Signups not allowed for otp")
			}
			if u, err = s.createPasswordless(ctx, tx, email, "", in.Data); err != nil {
				return err
			}
			s.security(ctx, "user_signed_up", slog.String("user_id", u.ID), slog.String("ip", ci.IP), slog.String("via", "otp"))
		}
		link, code, err = s.newOTP(ctx, tx, u, "magiclink")
		return err
	})
	if err != nil {
		return mapError("send otp", err)
	}
	s.sendMail(ctx, email, "Your Voxanne sign-in link",
		"To sign in, open this link:\n\n"+s.linkFor(link, "magiclink", in.RedirectTo)+
			"\n\nOr enter this code: "+code+"\n\nThe link and the code work once, for one hour. If it was not you, ignore this mail.")
	return nil
}

// verifyKinds are the token kinds each /verify type redeems: "email" is
// GoTrue's type for a typed mail code of any kind.
var verifyKinds = map[string][]string{
	"signup":    {"signup"},
	"magiclink": {"magiclink"},
	"email":     {"signup", "magiclink", "invite"},
	"recovery":  {"recovery"},
	"invite":    {"invite"},
}

// redeemToken spends the token of one of kinds that in names: by its link
// token, or by the code typed with the address. A wrong code counts against
// the address's outstanding codes (committed: outcome is returned with a nil
// error so the transaction keeps the count).
func redeemToken(ctx context.Context, tx pgx.Tx, in voxanne.VerifyInput, kinds []string) (userID, email, kind string, outcome, err error) {
	if in.TokenHash == "" && len(in.Token) == 6 && in.Email != "" {
		addr := strings.ToLower(strings.TrimSpace(in.Email))
		err = tx.QueryRow(ctx, `update auth.one_time_tokens set used_at = now() where id = (
				select id from auth.one_time_tokens where code_hash = $1 and token_type = any($2) and email = $3
					and used_at is null and expires_at > now() and attempts < $4
				order by created_at desc limit 1 for update)
			returning user_id, email, token_type`, codeHash(addr, in.Token), kinds, addr, maxCodeAttempts).Scan(&userID, &email, &kind)
		if errors.Is(err, pgx.ErrNoRows) {
			_, err = tx.Exec(ctx, `update auth.one_time_tokens set attempts = attempts + 1
				where email = $1 and code_hash is not null and used_at is null and expires_at > now()`, addr)
			return "", "", "", errCodeInvalid, err
		}
		return userID, email, kind, nil, err
	}
	t := in.TokenHash
	if t == "" {
		t = in.Token
	}
	// With an address, the token must be that address's: another one
	// leaves it unspent.
	err = tx.QueryRow(ctx, `update auth.one_time_tokens set used_at = now()
		where token_hash = $1 and token_type = any($2) and used_at is null and expires_at > now()
			and ($3 = '' or email = $3)
		returning user_id, email, token_type`, hashToken(t), kinds, strings.ToLower(strings.TrimSpace(in.Email))).Scan(&userID, &email, &kind)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", "", errOTPInvalid, nil
	}
	return userID, email, kind, nil, err
}

// InviteUser creates an unconfirmed user without a password and mails them a
// link that signs them in (confirming the address), to choose a password on
// the dashboard's reset page (or redirectTo).
func (s *AuthService) InviteUser(ctx context.Context, emailIn string, data map[string]any, redirectTo string) (*voxanne.User, error) {
	email, err := normalizeEmail(emailIn)
	if err != nil {
		return nil, err
	}
	var u *userRow
	var link string
	err = pgx.BeginFunc(ctx, s.db.auth, func(tx pgx.Tx) error {
		existing, err := userByEmail(ctx, tx, email)
		if err != nil {
			return err
		}
		if existing != nil {
			return authErr(voxanne.EINVALID, voxanne.ReasonEmailExists, "A user with this email address has already been registered")
		}
		if u, err = s.createPasswordless(ctx, tx, email, "", data); err != nil {
			return err
		}
		link, _, err = s.newOTP(ctx, tx, u, "invite")
		return err
	})
	if err != nil {
		return nil, mapError("invite user", err)
	}
	if redirectTo == "" {
		redirectTo = s.cfg.PublicURL + "/reset"
	}
	s.security(ctx, "admin_user_invited", slog.String("user_id", u.ID))
	s.sendMail(ctx, email, "You are invited to Voxanne",
		"You were invited to Voxanne. To sign in and choose a password, open:\n\n"+s.linkFor(link, "invite", redirectTo)+
			"\n\nThe link works once, for one hour.")
	return &u.User, nil
}

// GenerateLink makes the link (and code) of a mail without sending it, for
// an operator to deliver: signup (with a password; the user is created),
// invite (the user is created), magiclink and recovery (the user must exist).
func (s *AuthService) GenerateLink(ctx context.Context, in voxanne.GenerateLinkInput) (*voxanne.GeneratedLink, error) {
	email, err := normalizeEmail(in.Email)
	if err != nil {
		return nil, err
	}
	kind := in.Type
	switch kind {
	case "signup", "invite", "magiclink", "recovery":
	case "email_change_current", "email_change_new":
		return nil, authErr(voxanne.EINVALID, voxanne.ReasonValidationFailed, "Changing the email address is not supported")
	default:
		return nil, authErr(voxanne.EINVALID, voxanne.ReasonValidationFailed, "Invalid link type: use signup, invite, magiclink or recovery")
	}
	var hash string
	if kind == "signup" {
		if hash, err = s.adminHash(voxanne.AdminUserInput{Password: &in.Password}); err != nil {
			return nil, err
		}
	}
	out := &voxanne.GeneratedLink{VerificationType: kind, RedirectTo: in.RedirectTo}
	var u *userRow
	err = pgx.BeginFunc(ctx, s.db.auth, func(tx pgx.Tx) error {
		var err error
		if u, err = userByEmail(ctx, tx, email); err != nil {
			return err
		}
		switch {
		case u == nil && (kind == "magiclink" || kind == "recovery"):
			return authErr(voxanne.ENOTFOUND, voxanne.ReasonUserNotFound, "User with this email not found")
		case u != nil && (kind == "signup" || kind == "invite"):
			return authErr(voxanne.EINVALID, voxanne.ReasonEmailExists, "A user with this email address has already been registered")
		case u == nil:
			if u, err = s.createPasswordless(ctx, tx, email, hash, in.Data); err != nil {
				return err
			}
		}
		out.HashedToken, out.EmailOTP, err = s.newOTP(ctx, tx, u, kind)
		return err
	})
	if err != nil {
		return nil, mapError("generate link", err)
	}
	if out.RedirectTo == "" {
		out.RedirectTo = s.cfg.PublicURL + "/"
		if kind == "invite" || kind == "recovery" {
			out.RedirectTo = s.cfg.PublicURL + "/reset"
		}
	}
	out.ActionLink = s.linkFor(out.HashedToken, kind, out.RedirectTo)
	out.User = &u.User
	s.security(ctx, "admin_link_generated", slog.String("user_id", u.ID), slog.String("type", kind))
	return out, nil
}

// Resend mails a signup confirmation again to an address that has one
// outstanding (any earlier one stops working). It answers the same whether
// or not there was one.
func (s *AuthService) Resend(ctx context.Context, kind, emailIn, phone string, ci voxanne.ClientInfo) error {
	switch kind {
	case "signup", "email_change":
	case "sms", "phone_change":
		return authErr(voxanne.EINVALID, voxanne.ReasonPhoneProviderDisabled, "Phone logins are disabled")
	default:
		return authErr(voxanne.EINVALID, voxanne.ReasonValidationFailed, "Missing one of these types: signup, email_change, sms, phone_change")
	}
	email, err := normalizeEmail(emailIn)
	if err != nil {
		return err
	}
	if kind == "email_change" {
		return nil // email changes are not offered: never one to resend
	}
	var link, code string
	err = pgx.BeginFunc(ctx, s.db.auth, func(tx pgx.Tx) error {
		u, err := userByEmail(ctx, tx, email)
		if err != nil || u == nil || u.EmailConfirmedAt != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `update auth.one_time_tokens set used_at = now()
			where user_id = $1 and token_type = 'signup' and used_at is null`, u.ID); err != nil {
			return err
		}
		link, code, err = s.newOTP(ctx, tx, u, "signup")
		return err
	})
	if err != nil || link == "" {
		return mapError("resend", err)
	}
	s.sendMail(ctx, email, "Confirm your Voxanne account",
		"Confirm your email address to finish signing up:\n\n"+s.verifyLink(link, "signup")+
			"\n\nOr enter this code: "+code+"\n\nThe link and the code expire in one hour.")
	return nil
}

// Reauthenticate mails the signed-in user a 6-digit nonce that a password
// change (PUT /user with nonce) spends.
func (s *AuthService) Reauthenticate(ctx context.Context, p *voxanne.Principal) error {
	var code, email string
	err := pgx.BeginFunc(ctx, s.db.auth, func(tx pgx.Tx) error {
		u, err := s.userByID(ctx, tx, p.UserID)
		if err != nil {
			return err
		}
		if u.Email == "" {
			return authErr(voxanne.EINVALID, voxanne.ReasonValidationFailed, "Reauthentication needs an email address")
		}
		if _, err := tx.Exec(ctx, `update auth.one_time_tokens set used_at = now()
			where user_id = $1 and token_type = 'reauthentication' and used_at is null`, u.ID); err != nil {
			return err
		}
		email = u.Email
		_, code, err = s.newOTP(ctx, tx, u, "reauthentication")
		return err
	})
	if err != nil {
		return mapError("reauthenticate", err)
	}
	s.sendMail(ctx, email, "Your Voxanne confirmation code",
		"Enter this code to confirm the change to your account: "+code+"\n\nIt works once, for one hour.")
	return nil
}

// SpendNonce checks and spends a reauthentication nonce of the user (a
// wrong one counts against it, like a wrong mail code).
func (s *AuthService) SpendNonce(ctx context.Context, p *voxanne.Principal, nonce string) error {
	var outcome error
	err := pgx.BeginFunc(ctx, s.db.auth, func(tx pgx.Tx) error {
		var email string
		if err := tx.QueryRow(ctx, "select coalesce(email, '') from auth.users where id = $1", p.UserID).Scan(&email); err != nil {
			return err
		}
		_, _, _, out, err := redeemToken(ctx, tx, voxanne.VerifyInput{Token: nonce, Email: email}, []string{"reauthentication"})
		outcome = out
		return err
	})
	if err != nil {
		return mapError("reauthentication", err)
	}
	if outcome != nil {
		return authErr(voxanne.EINVALID, voxanne.ReasonReauthenticationNotValid, "Requested nonce is invalid or has expired")
	}
	return nil
}
