package http

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/auth"
)

// AuthSettings are the auth options GET /auth/v1/settings reports.
type AuthSettings struct {
	DisableSignup bool
	Autoconfirm   bool
}

// maxBody is the request body limit of every JSON endpoint.
const maxBody = 1 << 20

// apiVersionHeader selects GoTrue's newer error format and is echoed back.
const apiVersionHeader = "X-Supabase-Api-Version"

// unprocessable are the auth error codes GoTrue answers with 422 (for
// invalid input; a forbidden one keeps its 403).
var unprocessable = map[string]bool{
	voxanne.ReasonUserAlreadyExists: true, voxanne.ReasonWeakPassword: true,
	voxanne.ReasonSignupDisabled: true, voxanne.ReasonEmailExists: true,
	voxanne.ReasonInsufficientAAL: true, voxanne.ReasonMFAFactorNotFound: true,
	voxanne.ReasonMFAVerificationFailed: true, voxanne.ReasonMFAChallengeExpired: true,
	voxanne.ReasonMFAFactorNameConflict: true, voxanne.ReasonMFAIPAddressMismatch: true,
	voxanne.ReasonTooManyEnrolledMFAFactors: true, voxanne.ReasonMFAPhoneEnrollDisabled: true,
	voxanne.ReasonMFAWebAuthnEnrollDisabled: true, voxanne.ReasonOTPDisabled: true,
	voxanne.ReasonPhoneExists: true, voxanne.ReasonAnonymousProviderDisabled: true,
	voxanne.ReasonPhoneProviderDisabled: true, voxanne.ReasonWeb3ProviderDisabled: true,
	voxanne.ReasonSingleIdentityNotDeletable: true,
}

// authStatus maps an error to GoTrue's status and error code.
func authStatus(err error) (int, string, string, map[string]any) {
	var e *voxanne.Error
	if !errors.As(err, &e) {
		return http.StatusInternalServerError, "unexpected_failure", "Unexpected failure", nil
	}
	status, code, msg := apiError(err)
	if e.Code == voxanne.EINVALID && unprocessable[e.Reason] {
		status = http.StatusUnprocessableEntity
	}
	if e.Code == voxanne.EINVALID && e.Reason == "" {
		code = "validation_failed"
	}
	return status, code, msg, e.Details
}

// writeAuthError writes err in GoTrue's format: {code, message} when the request
// names an API version (2024-01-01 or later, echoed back), else the legacy
// {code: status, error_code, msg}.
func (s *Server) writeAuthError(w http.ResponseWriter, r *http.Request, err error) {
	err = s.unavailable(r, err)
	status, code, msg, details := authStatus(err)
	if status >= 500 {
		s.logFailure(r, status, err)
	}
	body := map[string]any{}
	for k, v := range details {
		body[k] = v
	}
	if v := r.Header.Get(apiVersionHeader); apiVersionAtLeast2024(v) {
		w.Header().Set(apiVersionHeader, v)
		body["code"], body["message"] = code, msg
	} else {
		body["code"], body["error_code"], body["msg"] = status, code, msg
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	retryAfter(w, status)
	_ = writeJSON(w, status, body)
}

func apiVersionAtLeast2024(v string) bool {
	t, err := time.Parse("2006-01-02", v)
	return err == nil && !t.Before(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
}

// authRoute registers an /auth/v1 handler whose errors use GoTrue's formats.
func (s *Server) authRoute(pattern string, h func(http.ResponseWriter, *http.Request) error) {
	s.register(pattern)
	check := queryCheck(pattern)
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if v := r.Header.Get(apiVersionHeader); apiVersionAtLeast2024(v) {
			w.Header().Set(apiVersionHeader, v)
		}
		err := check(r)
		if err == nil {
			err = h(w, r)
		}
		if err != nil {
			s.writeAuthError(w, r, err)
		}
	})
}

func (s *Server) registerAuth() {
	s.authRoute("POST /auth/v1/signup", s.handleSignUp)
	s.authRoute("POST /auth/v1/token", s.handleToken)
	s.authRoute("GET /auth/v1/user", s.handleGetUser)
	s.authRoute("PUT /auth/v1/user", s.handleUpdateUser)
	s.authRoute("POST /auth/v1/logout", s.handleLogout)
	s.authRoute("POST /auth/v1/recover", s.handleRecover)
	s.authRoute("POST /auth/v1/verify", s.handleVerify)
	s.authRoute("GET /auth/v1/verify", s.handleVerifyLink)
	s.authRoute("GET /auth/v1/.well-known/jwks.json", s.handleJWKS)
	s.authRoute("GET /auth/v1/settings", s.handleSettings)
	s.authRoute("GET /auth/v1/health", s.handleAuthHealth)
	s.authRoute("GET /auth/v1/admin/users", s.admin(s.handleAdminListUsers))
	s.authRoute("POST /auth/v1/admin/users", s.admin(s.handleAdminCreateUser))
	s.authRoute("GET /auth/v1/admin/users/{id}", s.admin(s.handleAdminGetUser))
	s.authRoute("PUT /auth/v1/admin/users/{id}", s.admin(s.handleAdminUpdateUser))
	s.authRoute("DELETE /auth/v1/admin/users/{id}", s.admin(s.handleAdminDeleteUser))
	s.registerMFA()
	s.registerPasswordless()
	s.authRoute("/auth/v1/", func(w http.ResponseWriter, r *http.Request) error {
		return s.noRoute(w, r, "no such auth endpoint")
	})
}

// decodeJSON reads a JSON object body of at most maxBody bytes. Unknown fields
// are ignored: clients such as auth-js send more than the server uses. A
// string with a NUL character or invalid UTF-8 is validation_failed.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return voxanne.ReasonErrorf(voxanne.EINVALID, voxanne.ReasonBadJSON, "the body must be application/json")
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return voxanne.ReasonErrorf(voxanne.ETOOLARGE, voxanne.ReasonTooLarge, "the body is larger than %d bytes", maxBody)
		}
		return voxanne.ReasonErrorf(voxanne.EINVALID, voxanne.ReasonBadJSON, "could not read the body")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return voxanne.ReasonErrorf(voxanne.EINVALID, voxanne.ReasonBadJSON, "could not parse the request body as JSON")
	}
	// Strings must be storable text: encoding/json keeps NULs and quietly
	// replaces invalid UTF-8, so the raw body is checked.
	return voxanne.CheckJSONText(body)
}

// clientInfo is the request's client address and user agent; the agent is
// cleaned (voxanne.CleanText), so that a header with invalid UTF-8 cannot fail
// the sign-in that stores it.
func clientInfo(s *Server, r *http.Request) voxanne.ClientInfo {
	return voxanne.ClientInfo{IP: s.clientIP(r), UserAgent: voxanne.CleanText(r.UserAgent())}
}

// rateLimit takes a token from l for key or returns the 429 error, setting
// Retry-After.
func rateLimit(w http.ResponseWriter, l *limiter, key string) error {
	_, err := reserveLimit(w, l, key)
	return err
}

// reserveLimit is rateLimit with a refund for attempts that turn out not to
// count.
func reserveLimit(w http.ResponseWriter, l *limiter, key string) (func(), error) {
	ok, wait, refund := l.reserve(key)
	if !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		return nil, voxanne.ReasonErrorf(voxanne.ERATELIMIT, voxanne.ReasonRateLimited, "Request rate limit reached")
	}
	return refund, nil
}

// limitKey is the rate-limit key of an email address as typed.
func limitKey(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

func (s *Server) handleSignUp(w http.ResponseWriter, r *http.Request) error {
	if err := rateLimit(w, s.limits.signIn, s.clientIP(r)); err != nil {
		return err
	}
	var in struct {
		Email    string         `json:"email"`
		Phone    string         `json:"phone"`
		Password string         `json:"password"`
		Data     map[string]any `json:"data"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if err := disabledSignUp(in.Email, in.Phone); err != nil {
		return err
	}
	user, sess, err := s.Auth.SignUp(r.Context(), voxanne.SignUpInput{Email: in.Email, Password: in.Password, Data: in.Data}, clientInfo(s, r))
	if err != nil {
		return err
	}
	if sess != nil {
		return writeJSON(w, http.StatusOK, sess)
	}
	return writeJSON(w, http.StatusOK, user)
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) error {
	ip := s.clientIP(r)
	switch r.URL.Query().Get("grant_type") {
	case "password":
		if err := rateLimit(w, s.limits.signIn, ip); err != nil {
			return err
		}
		var in struct {
			Email    string `json:"email"`
			Phone    string `json:"phone"`
			Password string `json:"password"`
		}
		if err := decodeJSON(w, r, &in); err != nil {
			return err
		}
		if in.Email == "" && in.Phone != "" {
			return errPhoneLoginDisabled
		}
		// Failed attempts count per (address, client IP), so an attacker's
		// guesses exhaust their own bucket and not the real user's, and per
		// address over all IPs with a much higher cap. Tokens are taken before
		// the attempt and given back when the password was right.
		email := limitKey(in.Email)
		refundPair, err := reserveLimit(w, s.limits.email, email+" "+ip)
		if err != nil {
			return err
		}
		refundAll, err := reserveLimit(w, s.limits.emailGlobal, email)
		if err != nil {
			refundPair()
			return err
		}
		sess, err := s.Auth.SignInWithPassword(r.Context(), in.Email, in.Password, clientInfo(s, r))
		if err != nil {
			return err
		}
		refundPair()
		refundAll()
		return writeJSON(w, http.StatusOK, sess)
	case "refresh_token":
		if err := rateLimit(w, s.limits.refresh, ip); err != nil {
			return err
		}
		var in struct {
			RefreshToken string `json:"refresh_token"`
		}
		if err := decodeJSON(w, r, &in); err != nil {
			return err
		}
		sess, err := s.Auth.Refresh(r.Context(), in.RefreshToken, clientInfo(s, r))
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, sess)
	default:
		if err := disabledGrant(r.URL.Query().Get("grant_type")); err != nil {
			return err
		}
		return voxanne.ReasonErrorf(voxanne.EINVALID, voxanne.ReasonValidationFailed, "unsupported grant_type: use password or refresh_token")
	}
}

// bearer returns the request's bearer token.
func bearer(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(tok) == "" {
		return "", voxanne.ReasonErrorf(voxanne.EUNAUTHORIZED, voxanne.ReasonNoAuthorization, "This endpoint requires a Bearer token")
	}
	return strings.TrimSpace(tok), nil
}

// errSessionNotFound is GoTrue's answer for a token whose session is gone.
var errSessionNotFound = voxanne.ReasonErrorf(voxanne.EUNAUTHORIZED, voxanne.ReasonSessionNotFound,
	"Session from session_id claim in JWT does not exist")

// authenticate verifies the request's bearer token and its session through the
// same authenticator as /api (verified-token cache, revocations, algorithm
// binding): there is one token path. A revoked session is GoTrue's
// session_not_found here.
func (s *Server) authenticate(r *http.Request) (*voxanne.Principal, error) {
	tok, err := bearer(r)
	if err != nil {
		return nil, err
	}
	p, err := s.Authenticator.Authenticate(r.Context(), tok)
	if errors.Is(err, auth.ErrRevoked) {
		return nil, errSessionNotFound
	}
	return p, err
}

// userPrincipal authenticates a user token (not a service_role one).
func (s *Server) userPrincipal(r *http.Request) (*voxanne.Principal, error) {
	p, err := s.authenticate(r)
	if err != nil {
		return nil, err
	}
	if p.Role != "authenticated" || p.UserID == "" {
		return nil, voxanne.ReasonErrorf(voxanne.EUNAUTHORIZED, voxanne.ReasonBadJWT, "a user access token is required")
	}
	return p, nil
}

func (s *Server) handleGetUser(w http.ResponseWriter, r *http.Request) error {
	p, err := s.userPrincipal(r)
	if err != nil {
		return err
	}
	u, err := s.Auth.User(r.Context(), p.UserID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, userWithAAL(u, p.AAL))
}

func (s *Server) handleUpdateUser(w http.ResponseWriter, r *http.Request) error {
	p, err := s.userPrincipal(r)
	if err != nil {
		return err
	}
	var in struct {
		Password    *string         `json:"password"`
		Data        map[string]any  `json:"data"`
		Email       *string         `json:"email"`
		Phone       *string         `json:"phone"`
		AppMetadata json.RawMessage `json:"app_metadata"`
		Nonce       string          `json:"nonce"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if len(in.AppMetadata) > 0 && string(in.AppMetadata) != "null" {
		return voxanne.ReasonErrorf(voxanne.EFORBIDDEN, voxanne.ReasonNotAdmin, "User not allowed to change app_metadata")
	}
	if (in.Email != nil && *in.Email != "" && !strings.EqualFold(*in.Email, p.Email)) || (in.Phone != nil && *in.Phone != "") {
		return voxanne.ReasonErrorf(voxanne.EINVALID, voxanne.ReasonValidationFailed, "changing the email or phone is not supported")
	}
	if in.Password != nil && *in.Password != "" {
		if err := rateLimit(w, s.limits.passwordChange, p.UserID); err != nil {
			return err
		}
		// A nonce from GET /reauthenticate is checked when sent (GoTrue's
		// secure password change is not required).
		if in.Nonce != "" && s.Passwordless != nil {
			if err := s.Passwordless.SpendNonce(r.Context(), p, in.Nonce); err != nil {
				return err
			}
		}
	}
	u, err := s.Auth.UpdateUser(r.Context(), p, voxanne.UserUpdate{Password: in.Password, Data: in.Data})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, u)
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) error {
	p, err := s.userPrincipal(r)
	if err != nil {
		return err
	}
	if err := s.Auth.Logout(r.Context(), p, r.URL.Query().Get("scope")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleRecover(w http.ResponseWriter, r *http.Request) error {
	if err := rateLimit(w, s.limits.recover, s.clientIP(r)); err != nil {
		return err
	}
	var in struct {
		Email string `json:"email"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	// Per address too, whoever asks from wherever: no inbox flooding. The
	// bucket is the address's whether or not it has an account, so a 429 says
	// nothing about that.
	if ok, wait, _ := s.limits.recoverEmail.reserve(limitKey(in.Email)); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		return voxanne.ReasonErrorf(voxanne.ERATELIMIT, voxanne.ReasonOverEmailSendRateLimit,
			"For security purposes, you can only request this after %d seconds.", int(wait.Seconds())+1)
	}
	if err := s.Auth.Recover(r.Context(), in.Email, clientInfo(s, r)); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{})
}

func (s *Server) handleVerify(w http.ResponseWriter, r *http.Request) error {
	if err := rateLimit(w, s.limits.verify, s.clientIP(r)); err != nil {
		return err
	}
	var in struct {
		Type      string `json:"type"`
		Token     string `json:"token"`
		TokenHash string `json:"token_hash"`
		Email     string `json:"email"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	sess, err := s.Auth.Verify(r.Context(), voxanne.VerifyInput{Type: in.Type, Token: in.Token, TokenHash: in.TokenHash, Email: in.Email}, clientInfo(s, r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, sess)
}

// handleVerifyLink completes a mailed link the way Supabase Auth does: it
// verifies the token and redirects to the site (or an allowed redirect_to) with
// the session, or the error, in the URL fragment, where auth-js picks it up.
func (s *Server) handleVerifyLink(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	target := s.redirectTarget(q.Get("redirect_to"))
	frag := url.Values{}
	if err := rateLimit(w, s.limits.verify, s.clientIP(r)); err != nil {
		return err
	}
	sess, err := s.Auth.Verify(r.Context(), voxanne.VerifyInput{Type: q.Get("type"), TokenHash: q.Get("token_hash"), Token: q.Get("token"), Email: q.Get("email")}, clientInfo(s, r))
	if err != nil {
		_, code, msg, _ := authStatus(err)
		if code == "unexpected_failure" {
			s.logUnexpected(r, err)
		}
		frag.Set("error", "access_denied")
		frag.Set("error_code", code)
		frag.Set("error_description", msg)
	} else {
		frag.Set("access_token", sess.AccessToken)
		frag.Set("refresh_token", sess.RefreshToken)
		frag.Set("expires_in", strconv.FormatInt(sess.ExpiresIn, 10))
		frag.Set("expires_at", strconv.FormatInt(sess.ExpiresAt, 10))
		frag.Set("token_type", "bearer")
		frag.Set("type", q.Get("type"))
	}
	http.Redirect(w, r, target+"#"+frag.Encode(), http.StatusSeeOther)
	return nil
}

// redirectTarget allows redirect_to only to the site itself or a configured
// CORS origin, so a mailed link cannot hand a session to another site.
func (s *Server) redirectTarget(to string) string {
	site := s.SiteURL
	if site == "" {
		site = "/"
	}
	if to == "" {
		return site
	}
	u, err := url.Parse(to)
	if err != nil || u.Fragment != "" || (u.Scheme != "http" && u.Scheme != "https") {
		return site
	}
	origin := u.Scheme + "://" + u.Host
	if su, err := url.Parse(s.SiteURL); err == nil && s.SiteURL != "" && origin == su.Scheme+"://"+su.Host {
		return to
	}
	for _, o := range s.CORSOrigins {
		if o == origin {
			return to
		}
	}
	return site
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) error {
	b, err := s.Auth.JWKS(r.Context())
	if err != nil {
		return err
	}
	// Clients may cache the keys briefly; a rotation keeps the old key trusted
	// far longer than this.
	w.Header().Set("Cache-Control", "public, max-age=600")
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(b)
	return err
}

func (s *Server) handleSettings(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]any{
		"external":           map[string]bool{"email": true, "phone": false, "anonymous_users": false},
		"disable_signup":     s.AuthSettings.DisableSignup,
		"mailer_autoconfirm": s.AuthSettings.Autoconfirm,
		"phone_autoconfirm":  false,
		"sms_provider":       "",
		"saml_enabled":       false,
	})
}

func (s *Server) handleAuthHealth(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]string{
		"version": s.Version, "name": "Voxanne", "description": "Voxanne is a Supabase Auth compatible identity API",
	})
}

// admin wraps a handler that needs a service_role token.
func (s *Server) admin(h func(http.ResponseWriter, *http.Request) error) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := s.authenticate(r)
		if err != nil {
			return err
		}
		if p.Role != "service_role" {
			return voxanne.ReasonErrorf(voxanne.EFORBIDDEN, voxanne.ReasonNotAdmin, "User not allowed")
		}
		return h(w, r)
	}
}

type adminUserBody struct {
	Email        *string        `json:"email"`
	Password     *string        `json:"password"`
	EmailConfirm *bool          `json:"email_confirm"`
	UserMetadata map[string]any `json:"user_metadata"`
	AppMetadata  map[string]any `json:"app_metadata"`
}

func (b adminUserBody) input() voxanne.AdminUserInput {
	return voxanne.AdminUserInput{Email: b.Email, Password: b.Password, EmailConfirm: b.EmailConfirm,
		UserMetadata: b.UserMetadata, AppMetadata: b.AppMetadata}
}

func pathUUID(r *http.Request, name string) (string, error) {
	v := r.PathValue(name)
	u, err := uuid.Parse(v)
	if err != nil || len(v) != 36 {
		return "", voxanne.ReasonErrorf(voxanne.EINVALID, voxanne.ReasonValidationFailed, "%s must be a UUID", name)
	}
	return u.String(), nil
}

func (s *Server) handleAdminListUsers(w http.ResponseWriter, r *http.Request) error {
	page, perPage, err := pagination(r)
	if err != nil {
		return err
	}
	users, total, err := s.Auth.ListUsers(r.Context(), page, perPage)
	if err != nil {
		return err
	}
	setPageLinks(w, r, page, perPage, total)
	return writeJSON(w, http.StatusOK, map[string]any{"users": users, "aud": "authenticated"})
}

func (s *Server) handleAdminCreateUser(w http.ResponseWriter, r *http.Request) error {
	var in adminUserBody
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	u, err := s.Auth.CreateUser(r.Context(), in.input())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, u)
}

func (s *Server) handleAdminGetUser(w http.ResponseWriter, r *http.Request) error {
	id, err := pathUUID(r, "id")
	if err != nil {
		return err
	}
	u, err := s.Auth.User(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, u)
}

func (s *Server) handleAdminUpdateUser(w http.ResponseWriter, r *http.Request) error {
	id, err := pathUUID(r, "id")
	if err != nil {
		return err
	}
	var in adminUserBody
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	u, err := s.Auth.UpdateUserByID(r.Context(), id, in.input())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, u)
}

func (s *Server) handleAdminDeleteUser(w http.ResponseWriter, r *http.Request) error {
	id, err := pathUUID(r, "id")
	if err != nil {
		return err
	}
	// GoTrue has no such parameter: orphaned_orgs=delete|transfer says what
	// becomes of orgs the user is the last owner of (without it: 409 naming them).
	if err := s.Auth.DeleteUser(r.Context(), id, r.URL.Query().Get("orphaned_orgs")); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{})
}
