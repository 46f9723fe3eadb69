package web

import (
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/auth/totp"
)

// mfaData is the two-factor page: the enrolment (QR code and secret) of a
// new factor, or the code prompt of a verified one.
type mfaData struct {
	// Required says the org requires MFA and this session has not passed it.
	Required bool
	// AAL2 says this session has passed it.
	AAL2 bool
	// FactorID is the factor a code is asked for; Enrolling says it is a
	// new one, shown with its QR code and secret.
	FactorID  string
	Enrolling bool
	QR        template.URL
	Secret    string
	Next      string
	Error     string
	Notice    string
}

// withMFA answers 404 when the dashboard has no MFA service.
func (h *Handler) withMFA(fn func(*req) error) func(*req) error {
	return func(q *req) error {
		if h.cfg.MFA == nil {
			return voxanne.Errorf(voxanne.ENOTFOUND, "two-factor authentication is not offered")
		}
		return fn(q)
	}
}

// mfaState fills in the user's factors: the verified one to challenge, if any.
func (h *Handler) mfaState(q *req, d *mfaData) error {
	d.AAL2 = q.p.AAL == voxanne.AAL2
	d.Required = q.p.NeedsMFA()
	if d.FactorID != "" {
		return nil
	}
	fs, err := h.cfg.MFA.Factors(q.r.Context(), q.p.UserID)
	if err != nil {
		return err
	}
	for _, f := range fs {
		if f.Status == voxanne.FactorVerified {
			d.FactorID = f.ID
			break
		}
	}
	return nil
}

func (h *Handler) mfaPage(q *req, status int, d mfaData) error {
	if err := h.mfaState(q, &d); err != nil {
		return err
	}
	q.w.Header().Set("Cache-Control", "no-store")
	return q.page(h, status, "mfa", "Two-factor authentication", "account", d)
}

// mfaGate answers a page of an org that requires MFA to a session that has
// not passed it: 403 with the way through (enrolment or the code prompt),
// which returns to the page asked for.
func (h *Handler) mfaGate(q *req) {
	next := ""
	if q.r.Method == http.MethodGet {
		next = q.r.URL.RequestURI()
	}
	if err := h.mfaPage(q, http.StatusForbidden, mfaData{Next: next}); err != nil {
		h.fail(q.w, q.r, q, err)
	}
}

func (h *Handler) mfaShow(q *req) error {
	d := mfaData{Next: q.r.URL.Query().Get("next")}
	if q.r.URL.Query().Get("done") == "1" {
		d.Notice = "Two-factor authentication is on for this session."
	}
	return h.mfaPage(q, http.StatusOK, d)
}

// qrOf is the data: URL of the QR code of a factor's secret, as the factors
// API draws it.
func (h *Handler) qrOf(q *req, secret []byte) (template.URL, error) {
	issuer := "Voxanne"
	if u, err := url.Parse(h.cfg.PublicURL); err == nil && u.Host != "" {
		issuer = u.Host
	}
	svg, err := totp.QRCodeSVG(totp.URI(issuer, q.p.Email, secret))
	if err != nil {
		return "", err
	}
	return template.URL("data:image/svg+xml;base64," + base64.StdEncoding.EncodeToString([]byte(svg))), nil
}

func (h *Handler) mfaEnroll(q *req) error {
	e, err := h.cfg.MFA.Enroll(q.r.Context(), q.p, "totp", "", "")
	if err != nil {
		if status, msg, ok := h.actionError(err); ok {
			return h.mfaPage(q, status, mfaData{Error: msg, Next: q.r.PostFormValue("next")})
		}
		return err
	}
	secret, _ := totp.DecodeSecret(e.TOTP.Secret)
	d := mfaData{FactorID: e.ID, Enrolling: true, Secret: e.TOTP.Secret, Next: q.r.PostFormValue("next")}
	if d.QR, err = h.qrOf(q, secret); err != nil {
		return err
	}
	return h.mfaPage(q, http.StatusOK, d)
}

// mfaVerify checks a code (challenge and answer in one step) and moves the
// dashboard session to the aal2 tokens.
func (h *Handler) mfaVerify(q *req) error {
	f := q.r.PostFormValue
	d := mfaData{FactorID: f("factor_id"), Next: f("next"), Enrolling: f("secret") != ""}
	if d.Enrolling {
		// A wrong first code shows the same enrolment again.
		d.Secret = f("secret")
		secret, err := totp.DecodeSecret(d.Secret)
		if err != nil {
			return h.mfaPage(q, http.StatusBadRequest, mfaData{Error: "Start the set-up again."})
		}
		if d.QR, err = h.qrOf(q, secret); err != nil {
			return err
		}
	}
	code := strings.Join(strings.Fields(f("code")), "")
	ch, err := h.cfg.MFA.Challenge(q.r.Context(), q.p, d.FactorID, h.clientIP(q.r))
	var sess *voxanne.Session
	if err == nil {
		sess, err = h.cfg.MFA.Verify(q.r.Context(), q.p, d.FactorID, ch.ID, code, h.clientInfo(q.r))
	}
	if err != nil {
		switch voxanne.ErrorCode(err) {
		case voxanne.EINVALID, voxanne.ENOTFOUND:
			d.Error = "That code is not right, or was used already. Enter the current code from your authenticator app."
			return h.mfaPage(q, http.StatusBadRequest, d)
		case voxanne.ERATELIMIT:
			d.Error = "Too many wrong codes. Wait five minutes and try again."
			return h.mfaPage(q, http.StatusTooManyRequests, d)
		}
		return err
	}
	if err := h.startSession(q.w, sess, q.s.Org); err != nil {
		return err
	}
	next := safeNext(d.Next)
	if d.Next == "" {
		next = "/mfa?done=1"
	}
	http.Redirect(q.w, q.r, next, http.StatusSeeOther)
	return nil
}

// settingsMFA turns the org's MFA requirement on or off (owner, from an aal2
// session).
func (h *Handler) settingsMFA(q *req) error {
	on := q.r.PostFormValue("require_mfa") == "on"
	if _, err := h.cfg.MFA.SetRequireMFA(q.r.Context(), q.p, on, h.clientIP(q.r)); err != nil {
		if errorReason(err) == voxanne.ReasonInsufficientAAL {
			return h.settingsResult(q, http.StatusForbidden, "Set up two-factor authentication for yourself first (Account, Two-factor authentication), then turn this on.")
		}
		if status, msg, ok := h.actionError(err); ok {
			return h.settingsResult(q, status, msg)
		}
		return err
	}
	http.Redirect(q.w, q.r, "/settings?done=mfa", http.StatusSeeOther)
	return nil
}
