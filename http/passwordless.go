package http

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/voxanne/voxanne"
)

// registerPasswordless adds GoTrue's passwordless and operator mail routes:
// /otp, /resend, /reauthenticate, /invite and /admin/generate_link.
func (s *Server) registerPasswordless() {
	if s.Passwordless == nil {
		return
	}
	s.authRoute("POST /auth/v1/otp", s.handleOTP)
	s.authRoute("POST /auth/v1/resend", s.handleResend)
	s.authRoute("GET /auth/v1/reauthenticate", s.handleReauthenticate)
	s.authRoute("POST /auth/v1/invite", s.admin(s.handleAdminInvite))
	s.authRoute("POST /auth/v1/admin/generate_link", s.admin(s.handleGenerateLink))
}

// mailBudget takes one mail from the client address's and the recipient's
// budgets (the ones /recover uses): no one floods an inbox, from however many
// addresses.
func (s *Server) mailBudget(w http.ResponseWriter, r *http.Request, email string) error {
	if err := rateLimit(w, s.limits.recover, s.clientIP(r)); err != nil {
		return err
	}
	if ok, wait, _ := s.limits.recoverEmail.reserve(limitKey(email)); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		return voxanne.ReasonErrorf(voxanne.ERATELIMIT, voxanne.ReasonOverEmailSendRateLimit,
			"For security purposes, you can only request this after %d seconds.", int(wait.Seconds())+1)
	}
	return nil
}

// errPhoneDisabled answers phone sign-in while it is not offered.
var errPhoneDisabled = voxanne.ReasonErrorf(voxanne.EINVALID, voxanne.ReasonPhoneProviderDisabled, "Phone logins are disabled")

func (s *Server) handleOTP(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Email      string         `json:"email"`
		Phone      string         `json:"phone"`
		CreateUser *bool          `json:"create_user"`
		Data       map[string]any `json:"data"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.Email == "" && in.Phone != "" {
		return errPhoneDisabled
	}
	if in.Email == "" {
		return voxanne.ReasonErrorf(voxanne.EINVALID, voxanne.ReasonValidationFailed, "An email address or phone number is required")
	}
	if err := s.mailBudget(w, r, in.Email); err != nil {
		return err
	}
	create := in.CreateUser == nil || *in.CreateUser
	err := s.Passwordless.SendOTP(r.Context(), voxanne.OTPInput{Email: in.Email, CreateUser: create, Data: in.Data,
		RedirectTo: s.allowedRedirect(r.URL.Query().Get("redirect_to"))}, clientInfo(s, r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{})
}

// allowedRedirect keeps a redirect_to only when the site or a CORS origin
// owns it ("" otherwise: the site).
func (s *Server) allowedRedirect(to string) string {
	if to == "" || s.redirectTarget(to) != to {
		return ""
	}
	return to
}

func (s *Server) handleResend(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Type  string `json:"type"`
		Email string `json:"email"`
		Phone string `json:"phone"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.Email != "" {
		if err := s.mailBudget(w, r, in.Email); err != nil {
			return err
		}
	}
	if err := s.Passwordless.Resend(r.Context(), in.Type, in.Email, in.Phone, clientInfo(s, r)); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{})
}

func (s *Server) handleReauthenticate(w http.ResponseWriter, r *http.Request) error {
	p, err := s.userPrincipal(r)
	if err != nil {
		return err
	}
	if err := s.mailBudget(w, r, p.Email); err != nil {
		return err
	}
	if err := s.Passwordless.Reauthenticate(r.Context(), p); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{})
}

func (s *Server) handleAdminInvite(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Email string         `json:"email"`
		Data  map[string]any `json:"data"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	u, err := s.Passwordless.InviteUser(r.Context(), in.Email, in.Data, s.allowedRedirect(r.URL.Query().Get("redirect_to")))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, u)
}

func (s *Server) handleGenerateLink(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Type       string         `json:"type"`
		Email      string         `json:"email"`
		Password   string         `json:"password"`
		Data       map[string]any `json:"data"`
		RedirectTo string         `json:"redirect_to"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	to := in.RedirectTo
	if to == "" {
		to = r.URL.Query().Get("redirect_to")
	}
	l, err := s.Passwordless.GenerateLink(r.Context(), voxanne.GenerateLinkInput{Type: in.Type, Email: in.Email,
		Password: in.Password, Data: in.Data, RedirectTo: s.allowedRedirect(to)})
	if err != nil {
		return err
	}
	// GoTrue answers the user's fields and the link's side by side; auth-js
	// splits them into properties and user.
	b, err := json.Marshal(l.User)
	if err != nil {
		return err
	}
	out := map[string]any{}
	if err := json.Unmarshal(b, &out); err != nil {
		return err
	}
	out["action_link"], out["email_otp"], out["hashed_token"] = l.ActionLink, l.EmailOTP, l.HashedToken
	out["verification_type"], out["redirect_to"] = l.VerificationType, l.RedirectTo
	return writeJSON(w, http.StatusOK, out)
}
