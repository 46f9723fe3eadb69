package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/voxanne/voxanne"
)

// formData is what the signed-out forms show again after an error.
type formData struct {
	Email   string
	OrgName string
	Next    string
	Error   string
	Notice  string
	Token   string
	// Signup tells whether the sign-up form is offered.
	Signup bool
	// SignedInAs is the email of a signed-in user accepting an invitation.
	SignedInAs string
	// Access and Refresh carry a recovery session through a failed reset.
	Access, Refresh string
}

func (h *Handler) publicPage(w http.ResponseWriter, status int, name, title, csrf string, d formData) error {
	d.Signup = !h.cfg.DisableSignup
	h.render(w, status, name, &view{Title: title, CSRF: csrf, Data: d})
	return nil
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request, csrf string) error {
	next := safeNext(r.URL.Query().Get("next"))
	if _, err := h.signedIn(w, r); err == nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return nil
	}
	d := formData{Next: r.URL.Query().Get("next")}
	if r.URL.Query().Get("confirmed") == "1" {
		d.Notice = "Your email address is confirmed. Sign in to continue."
	}
	return h.publicPage(w, http.StatusOK, "login", "Sign in", csrf, d)
}

func (h *Handler) loginPost(w http.ResponseWriter, r *http.Request, csrf string) error {
	email, pw := strings.TrimSpace(r.PostFormValue("email")), r.PostFormValue("password")
	d := formData{Email: email, Next: r.PostFormValue("next")}
	if !h.allow(r) {
		d.Error = "Too many sign-in attempts. Wait a few minutes and try again."
		return h.publicPage(w, http.StatusTooManyRequests, "login", "Sign in", csrf, d)
	}
	if email == "" || pw == "" {
		d.Error = "Enter your email address and password."
		return h.publicPage(w, http.StatusBadRequest, "login", "Sign in", csrf, d)
	}
	sess, err := h.cfg.Auth.SignInWithPassword(r.Context(), email, pw, h.clientInfo(r))
	if err != nil {
		switch voxanne.ErrorCode(err) {
		case voxanne.EINVALID, voxanne.EUNAUTHORIZED, voxanne.EFORBIDDEN, voxanne.ENOTFOUND:
			d.Error = "The email address or password is not right."
			if e := new(voxanne.Error); errors.As(err, &e) && e.Reason == "email_not_confirmed" {
				d.Error = "Confirm your email address first: we sent you a link."
			}
			return h.publicPage(w, http.StatusBadRequest, "login", "Sign in", csrf, d)
		case voxanne.ERATELIMIT:
			d.Error = "Too many sign-in attempts. Wait a few minutes and try again."
			return h.publicPage(w, http.StatusTooManyRequests, "login", "Sign in", csrf, d)
		}
		return err
	}
	if err := h.startSession(w, sess, ""); err != nil {
		return err
	}
	http.Redirect(w, r, safeNext(d.Next), http.StatusSeeOther)
	return nil
}

func (h *Handler) signupPage(w http.ResponseWriter, r *http.Request, csrf string) error {
	if h.cfg.DisableSignup {
		return h.publicPage(w, http.StatusForbidden, "signup", "Create an account", csrf, formData{Error: "Sign-up is turned off on this server. Ask your administrator for an invitation."})
	}
	return h.publicPage(w, http.StatusOK, "signup", "Create an account", csrf, formData{})
}

func (h *Handler) signupPost(w http.ResponseWriter, r *http.Request, csrf string) error {
	email, pw, org := strings.TrimSpace(r.PostFormValue("email")), r.PostFormValue("password"), strings.TrimSpace(r.PostFormValue("org_name"))
	d := formData{Email: email, OrgName: org}
	if h.cfg.DisableSignup {
		d.Error = "Sign-up is turned off on this server."
		return h.publicPage(w, http.StatusForbidden, "signup", "Create an account", csrf, d)
	}
	if !h.allow(r) {
		d.Error = "Too many attempts. Wait a few minutes and try again."
		return h.publicPage(w, http.StatusTooManyRequests, "signup", "Create an account", csrf, d)
	}
	data := map[string]any{}
	if org != "" {
		data["org_name"] = org
	}
	_, sess, err := h.cfg.Auth.SignUp(r.Context(), voxanne.SignUpInput{Email: email, Password: pw, Data: data}, h.clientInfo(r))
	if err != nil {
		if c := voxanne.ErrorCode(err); c == voxanne.EINVALID || c == voxanne.ECONFLICT {
			d.Error = signupMessage(err)
			return h.publicPage(w, http.StatusBadRequest, "signup", "Create an account", csrf, d)
		}
		return err
	}
	if sess == nil {
		d.Notice = "Check your inbox: we sent a link to confirm your email address."
		return h.publicPage(w, http.StatusOK, "signup", "Create an account", csrf, d)
	}
	if err := h.startSession(w, sess, ""); err != nil {
		return err
	}
	http.Redirect(w, r, "/calls", http.StatusSeeOther)
	return nil
}

// signupMessage explains a refused sign-up.
func signupMessage(err error) string {
	var e *voxanne.Error
	if errors.As(err, &e) {
		switch e.Reason {
		case "user_already_exists", "email_exists":
			return "An account with this email address exists already. Sign in instead."
		case "weak_password":
			return "Choose a stronger password: " + e.Message
		}
		if e.Message != "" {
			return e.Message
		}
	}
	return "The account could not be created."
}

func (h *Handler) forgotPage(w http.ResponseWriter, r *http.Request, csrf string) error {
	return h.publicPage(w, http.StatusOK, "forgot", "Reset your password", csrf, formData{})
}

func (h *Handler) forgotPost(w http.ResponseWriter, r *http.Request, csrf string) error {
	email := strings.TrimSpace(r.PostFormValue("email"))
	d := formData{Email: email}
	if !h.allow(r) {
		d.Error = "Too many attempts. Wait a few minutes and try again."
		return h.publicPage(w, http.StatusTooManyRequests, "forgot", "Reset your password", csrf, d)
	}
	if err := h.cfg.Auth.Recover(r.Context(), email, h.clientInfo(r)); err != nil {
		if voxanne.ErrorCode(err) == voxanne.EINVALID {
			d.Error = "Enter a valid email address."
			return h.publicPage(w, http.StatusBadRequest, "forgot", "Reset your password", csrf, d)
		}
		return err
	}
	d.Notice = "If an account uses this address, we sent it a link to choose a new password. The link works once, for one hour."
	return h.publicPage(w, http.StatusOK, "forgot", "Reset your password", csrf, d)
}

// resetPage is where a recovery link lands (through /auth/v1/verify and the
// site root): its small script moves the tokens from the URL fragment into the
// form, and the server sets the new password with them.
func (h *Handler) resetPage(w http.ResponseWriter, r *http.Request, csrf string) error {
	return h.publicPage(w, http.StatusOK, "reset", "Choose a new password", csrf, formData{})
}

func (h *Handler) resetPost(w http.ResponseWriter, r *http.Request, csrf string) error {
	access, refresh, pw := r.PostFormValue("access_token"), r.PostFormValue("refresh_token"), r.PostFormValue("password")
	d := formData{}
	if access == "" || refresh == "" {
		d.Error = "This page needs the link from your recovery mail. Ask for a new one."
		return h.publicPage(w, http.StatusBadRequest, "reset", "Choose a new password", csrf, d)
	}
	if pw != r.PostFormValue("password2") {
		d.Error = "The two passwords differ."
		d.Access, d.Refresh = access, refresh
		return h.publicPage(w, http.StatusBadRequest, "reset", "Choose a new password", csrf, d)
	}
	p, err := h.cfg.Authenticator.Authenticate(r.Context(), access)
	if err != nil {
		d.Error = "The recovery link has expired or was used. Ask for a new one."
		return h.publicPage(w, http.StatusBadRequest, "reset", "Choose a new password", csrf, d)
	}
	if _, err := h.cfg.Auth.UpdateUser(r.Context(), p, voxanne.UserUpdate{Password: &pw}); err != nil {
		if voxanne.ErrorCode(err) == voxanne.EINVALID {
			d.Error = signupMessage(err)
			d.Access, d.Refresh = access, refresh
			return h.publicPage(w, http.StatusBadRequest, "reset", "Choose a new password", csrf, d)
		}
		return err
	}
	sess, err := h.cfg.Auth.Refresh(r.Context(), refresh, h.clientInfo(r))
	if err != nil {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil
	}
	if err := h.startSession(w, sess, ""); err != nil {
		return err
	}
	http.Redirect(w, r, "/calls", http.StatusSeeOther)
	return nil
}

// acceptPage is where an invitation link lands: a signed-in user joins with
// one click; anyone else signs in or creates an account first.
func (h *Handler) acceptPage(w http.ResponseWriter, r *http.Request, csrf string) error {
	tok := r.URL.Query().Get("token")
	d := formData{Token: tok}
	if tok == "" {
		d.Error = "This invitation link is incomplete. Open the link from the mail again."
	}
	if q, err := h.signedIn(w, r); err == nil {
		d.SignedInAs = q.p.Email
	}
	return h.publicPage(w, http.StatusOK, "accept", "Join an organization", csrf, d)
}

func (h *Handler) acceptPost(w http.ResponseWriter, r *http.Request, csrf string) error {
	tok := r.PostFormValue("token")
	email, pw := strings.TrimSpace(r.PostFormValue("email")), r.PostFormValue("password")
	d := formData{Token: tok, Email: email}
	var p *voxanne.Principal
	switch r.PostFormValue("action") {
	case "join":
		q, err := h.signedIn(w, r)
		if err != nil {
			d.Error = "Sign in first."
			return h.publicPage(w, http.StatusUnauthorized, "accept", "Join an organization", csrf, d)
		}
		p = q.p
	case "signin", "signup":
		if !h.allow(r) {
			d.Error = "Too many attempts. Wait a few minutes and try again."
			return h.publicPage(w, http.StatusTooManyRequests, "accept", "Join an organization", csrf, d)
		}
		var sess *voxanne.Session
		var err error
		if r.PostFormValue("action") == "signup" {
			if h.cfg.DisableSignup {
				d.Error = "Sign-up is turned off; sign in with an existing account."
				return h.publicPage(w, http.StatusForbidden, "accept", "Join an organization", csrf, d)
			}
			// The invitation rides along with the sign-up: the account joins
			// the inviting org at once, and no personal org is made for it.
			_, sess, err = h.cfg.Auth.SignUp(r.Context(), voxanne.SignUpInput{Email: email, Password: pw,
				Data: map[string]any{"invitation_token": tok}}, h.clientInfo(r))
			if err == nil && sess == nil {
				d.Notice = "Check your inbox to confirm your address, then open the invitation link again."
				return h.publicPage(w, http.StatusOK, "accept", "Join an organization", csrf, d)
			}
			if err == nil {
				if err := h.startSession(w, sess, ""); err != nil {
					return err
				}
				http.Redirect(w, r, "/calls", http.StatusSeeOther)
				return nil
			}
			if c := voxanne.ErrorCode(err); c == voxanne.ENOTFOUND || c == voxanne.EFORBIDDEN {
				d.Error = "This invitation cannot be used: " + message(err)
				return h.publicPage(w, http.StatusBadRequest, "accept", "Join an organization", csrf, d)
			}
		} else {
			sess, err = h.cfg.Auth.SignInWithPassword(r.Context(), email, pw, h.clientInfo(r))
		}
		if err != nil {
			if voxanne.ErrorCode(err) == voxanne.EINTERNAL || voxanne.ErrorCode(err) == voxanne.EUNAVAILABLE {
				return err
			}
			d.Error = signupMessage(err)
			if r.PostFormValue("action") == "signin" {
				d.Error = "The email address or password is not right."
			}
			return h.publicPage(w, http.StatusBadRequest, "accept", "Join an organization", csrf, d)
		}
		if err := h.startSession(w, sess, ""); err != nil {
			return err
		}
		if p, err = h.cfg.Authenticator.Authenticate(r.Context(), sess.AccessToken); err != nil {
			return err
		}
	default:
		d.Error = "Choose how to continue."
		return h.publicPage(w, http.StatusBadRequest, "accept", "Join an organization", csrf, d)
	}
	org, err := h.cfg.Orgs.AcceptInvitation(r.Context(), p, tok, h.clientIP(r))
	if err != nil {
		switch voxanne.ErrorCode(err) {
		case voxanne.EINVALID, voxanne.ENOTFOUND, voxanne.EFORBIDDEN, voxanne.ECONFLICT:
			d.Error = "This invitation cannot be used: " + message(err)
			d.SignedInAs = p.Email
			return h.publicPage(w, http.StatusBadRequest, "accept", "Join an organization", csrf, d)
		}
		return err
	}
	sess, err := h.cfg.Orgs.SwitchOrg(r.Context(), p, org.ID, h.clientInfo(r))
	if err != nil {
		return err
	}
	// The session the switch replaces ends here.
	_ = h.cfg.Auth.Logout(r.Context(), p, voxanne.ScopeLocal)
	if err := h.startSession(w, sess, org.ID); err != nil {
		return err
	}
	http.Redirect(w, r, "/calls", http.StatusSeeOther)
	return nil
}

// logout ends the auth session (its refresh token stops working) and clears
// the cookie. Without a valid session there is nothing to end.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	q, err := h.signedIn(w, r)
	if err != nil {
		h.clearSession(w)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	if !h.checkCSRF(r, q.p.SessionID) {
		h.renderError(w, r, http.StatusForbidden, "This form has expired", "You are still signed in. Go back, reload the page and try again.")
		return
	}
	if err := h.cfg.Auth.Logout(r.Context(), q.p, voxanne.ScopeLocal); err != nil {
		h.fail(w, r, q, err)
		return
	}
	h.clearSession(w)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
