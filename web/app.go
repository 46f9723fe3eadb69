package web

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/voxanne/voxanne"
)

// req is one dashboard request of a signed-in user.
type req struct {
	w    http.ResponseWriter
	r    *http.Request
	p    *voxanne.Principal
	s    *session
	me   *voxanne.Me
	csrf string
}

// errNoSession says the request has no usable session: sign in again.
var errNoSession = errors.New("web: no session")

// signedIn returns the request's signed-in user. The access token is refreshed
// first when it is close to expiry, and once more when it stops verifying. A
// session revoked elsewhere is signed out: one that cannot be refreshed
// (logout, sign-out everywhere, password changed) and one whose role in the
// org was changed (its token was revoked, yet the session and the membership
// live on); a user removed from the org gets a token for no org or another one,
// which shows the org error page. A signed-out session is cleared and
// errNoSession returned; other errors are failures.
func (h *Handler) signedIn(w http.ResponseWriter, r *http.Request) (*req, error) {
	s := h.readSession(r)
	if s == nil {
		if _, err := r.Cookie(sessionCookie); err == nil {
			h.clearSession(w)
		}
		return nil, errNoSession
	}
	refreshed := false
	if s.needsRefresh(time.Now()) {
		if err := h.refresh(w, r, s); err != nil {
			return nil, err
		}
		refreshed = true
	}
	p, err := h.cfg.Authenticator.Authenticate(r.Context(), s.Access)
	if voxanne.ErrorCode(err) == voxanne.EUNAUTHORIZED && !refreshed {
		// Revoked, or only unverifiable (expired, its signing key retired).
		revoked := errorReason(err) == voxanne.ReasonSessionRevoked
		if err := h.refresh(w, r, s); err != nil {
			return nil, err
		}
		p, err = h.cfg.Authenticator.Authenticate(r.Context(), s.Access)
		if err == nil && revoked && p.OrgID != "" && p.OrgID == s.Org {
			// Still a member of the same org after a revocation: the role
			// was changed elsewhere. End the auth session too, so that no
			// copy of the cookie works either.
			_ = h.cfg.Auth.Logout(r.Context(), p, voxanne.ScopeLocal)
			h.clearSession(w)
			return nil, errNoSession
		}
	}
	if voxanne.ErrorCode(err) == voxanne.EUNAUTHORIZED {
		h.clearSession(w)
		return nil, errNoSession
	}
	if err != nil {
		return nil, err
	}
	if p.Role != "authenticated" || p.UserID == "" {
		h.clearSession(w)
		return nil, errNoSession
	}
	me, err := h.cfg.Orgs.Me(r.Context(), p)
	if err != nil {
		return nil, err
	}
	return &req{w: w, r: r, p: p, s: s, me: me, csrf: csrfToken(h.csrfSecret(w, r), p.SessionID)}, nil
}

// errorReason is the wire-level reason of a Voxanne error, "" for others.
func errorReason(err error) string {
	var e *voxanne.Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// refresh trades the session's refresh token for new tokens and stores them.
// A refresh token that no longer works ends the dashboard session.
func (h *Handler) refresh(w http.ResponseWriter, r *http.Request, s *session) error {
	sess, err := h.cfg.Auth.Refresh(r.Context(), s.Refresh, h.clientInfo(r))
	if err != nil {
		switch voxanne.ErrorCode(err) {
		case voxanne.EINVALID, voxanne.EUNAUTHORIZED, voxanne.ENOTFOUND, voxanne.EFORBIDDEN:
			h.clearSession(w)
			return errNoSession
		}
		return err
	}
	s.Access, s.Refresh, s.ExpiresAt, s.IssuedAt = sess.AccessToken, sess.RefreshToken, sess.ExpiresAt, time.Now().Unix()
	return h.setSession(w, s)
}

// startSession stores a new auth session in the cookie, for org (or the org
// its token names).
func (h *Handler) startSession(w http.ResponseWriter, sess *voxanne.Session, org string) error {
	if org == "" && sess.User != nil {
		org, _ = sess.User.AppMetadata["org_id"].(string)
	}
	return h.setSession(w, &session{Access: sess.AccessToken, Refresh: sess.RefreshToken,
		IssuedAt: time.Now().Unix(), ExpiresAt: sess.ExpiresAt, Org: org})
}

// toLogin answers 303 to the login page, which returns to this page after.
func (h *Handler) toLogin(w http.ResponseWriter, r *http.Request) {
	target := "/login"
	if r.Method == http.MethodGet && r.URL.Path != "/" {
		target += "?next=" + url.QueryEscape(r.URL.RequestURI())
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// app wraps a page of the app: it needs a session whose token is for the org
// the user works in, and a valid CSRF token on every POST.
func (h *Handler) app(fn func(*req) error) http.HandlerFunc {
	return h.signedInPage(true, fn)
}

// anyOrg wraps an action that also works when the session's org is gone
// (switching to or creating another org).
func (h *Handler) anyOrg(fn func(*req) error) http.HandlerFunc {
	return h.signedInPage(false, fn)
}

func (h *Handler) signedInPage(needOrg bool, fn func(*req) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		q, err := h.signedIn(w, r)
		if errors.Is(err, errNoSession) {
			h.toLogin(w, r)
			return
		}
		if err != nil {
			h.fail(w, r, nil, err)
			return
		}
		if r.Method == http.MethodPost && !h.checkCSRF(r, q.p.SessionID) {
			h.renderError(w, r, http.StatusForbidden, "This form has expired",
				"Nothing was changed. Go back, reload the page and try again.")
			return
		}
		if needOrg && (q.p.OrgID == "" || q.p.OrgID != q.s.Org) {
			h.orgError(q)
			return
		}
		if needOrg && q.p.NeedsMFA() && h.cfg.MFA != nil {
			h.mfaGate(q)
			return
		}
		if err := fn(q); err != nil {
			h.fail(w, r, q, err)
		}
	}
}

// public wraps a page that works without a session (sign-in, sign-up, ...):
// POSTs need the CSRF token of the signed-out state.
func (h *Handler) public(fn func(w http.ResponseWriter, r *http.Request, csrf string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		secret := h.csrfSecret(w, r)
		if r.Method == http.MethodPost && !h.checkCSRF(r, "") {
			h.renderError(w, r, http.StatusForbidden, "This form has expired",
				"Nothing was changed. Go back, reload the page and try again.")
			return
		}
		if err := fn(w, r, csrfToken(secret, "")); err != nil {
			h.fail(w, r, nil, err)
		}
	}
}

// fail renders the page for err: not found, forbidden, bad input, or a
// failure whose details go only to the log.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, q *req, err error) {
	code := voxanne.ErrorCode(err)
	if code == voxanne.EINTERNAL && h.cfg.Unavailable != nil && h.cfg.Unavailable(err) {
		code = voxanne.EUNAVAILABLE
		h.cfg.Logger.Warn("dashboard: database unavailable", "path", r.URL.Path, "error", err)
	}
	switch code {
	case voxanne.ENOTFOUND:
		h.renderErrorFor(w, r, q, http.StatusNotFound, "Not found", "There is no such item in this organization.")
	case voxanne.EFORBIDDEN:
		h.renderErrorFor(w, r, q, http.StatusForbidden, "Not allowed", "Your role in this organization does not allow this.")
	case voxanne.EINVALID:
		h.renderErrorFor(w, r, q, http.StatusBadRequest, "That did not work", message(err))
	case voxanne.ECONFLICT:
		h.renderErrorFor(w, r, q, http.StatusConflict, "That did not work", message(err))
	case voxanne.ERATELIMIT:
		w.Header().Set("Retry-After", "5")
		h.renderErrorFor(w, r, q, http.StatusTooManyRequests, "Too many requests at once", "Wait a moment and try again.")
	case voxanne.EUNAVAILABLE:
		w.Header().Set("Retry-After", "5")
		h.renderErrorFor(w, r, q, http.StatusServiceUnavailable, "Temporarily unavailable", "Try again in a moment.")
	default:
		h.cfg.Logger.Error("dashboard failure", "path", r.URL.Path, "error", err)
		h.renderErrorFor(w, r, q, http.StatusInternalServerError, "Something went wrong", "The page could not be shown. Try again in a moment.")
	}
}

// message is the caller-safe message of err.
func message(err error) string {
	var e *voxanne.Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return "The request could not be completed."
}

func (h *Handler) root(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if _, err := h.signedIn(w, r); err == nil {
		http.Redirect(w, r, "/calls", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
