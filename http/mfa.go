package http

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"

	"github.com/google/uuid"

	"github.com/voxanne/voxanne"
)

// registerMFA adds GoTrue's factors API: enrol, challenge, verify and
// unenrol TOTP factors of the signed-in user.
func (s *Server) registerMFA() {
	if s.MFA == nil {
		return
	}
	s.authRoute("POST /auth/v1/factors", s.handleEnrollFactor)
	s.authRoute("POST /auth/v1/factors/{id}/challenge", s.handleChallengeFactor)
	s.authRoute("POST /auth/v1/factors/{id}/verify", s.handleVerifyFactor)
	s.authRoute("DELETE /auth/v1/factors/{id}", s.handleUnenrollFactor)
}

// decodeOptionalJSON is decodeJSON for bodies a client may leave out (auth-js
// sends none with a TOTP challenge).
func decodeOptionalJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return voxanne.ReasonErrorf(voxanne.ETOOLARGE, voxanne.ReasonTooLarge, "the body is larger than %d bytes", maxBody)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return decodeJSON(w, r, v)
}

// factorID is the {id} of a factor route; a malformed one names no factor.
func factorID(r *http.Request) (string, error) {
	id, err := pathUUID(r, "id")
	if err != nil {
		return "", voxanne.ReasonErrorf(voxanne.ENOTFOUND, voxanne.ReasonMFAFactorNotFound, "Factor not found")
	}
	return id, nil
}

func (s *Server) handleEnrollFactor(w http.ResponseWriter, r *http.Request) error {
	p, err := s.userPrincipal(r)
	if err != nil {
		return err
	}
	var in struct {
		FactorType   string `json:"factor_type"`
		FriendlyName string `json:"friendly_name"`
		Issuer       string `json:"issuer"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	out, err := s.MFA.Enroll(r.Context(), p, in.FactorType, in.FriendlyName, in.Issuer)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleChallengeFactor(w http.ResponseWriter, r *http.Request) error {
	p, err := s.userPrincipal(r)
	if err != nil {
		return err
	}
	id, err := factorID(r)
	if err != nil {
		return err
	}
	var in struct {
		Channel string `json:"channel"`
	}
	if err := decodeOptionalJSON(w, r, &in); err != nil {
		return err
	}
	c, err := s.MFA.Challenge(r.Context(), p, id, s.clientIP(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (s *Server) handleVerifyFactor(w http.ResponseWriter, r *http.Request) error {
	// Per client address, on top of the per-factor limit on wrong codes.
	if err := rateLimit(w, s.limits.verify, s.clientIP(r)); err != nil {
		return err
	}
	p, err := s.userPrincipal(r)
	if err != nil {
		return err
	}
	id, err := factorID(r)
	if err != nil {
		return err
	}
	var in struct {
		ChallengeID string `json:"challenge_id"`
		Code        string `json:"code"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if u, err := uuid.Parse(in.ChallengeID); err != nil || len(in.ChallengeID) != 36 || u.String() != in.ChallengeID {
		return voxanne.ReasonErrorf(voxanne.EINVALID, voxanne.ReasonMFAFactorNotFound, "MFA factor with the provided challenge ID not found")
	}
	sess, err := s.MFA.Verify(r.Context(), p, id, in.ChallengeID, in.Code, clientInfo(s, r))
	if voxanne.ErrorCode(err) == voxanne.ERATELIMIT {
		w.Header().Set("Retry-After", "300")
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, sess)
}

func (s *Server) handleUnenrollFactor(w http.ResponseWriter, r *http.Request) error {
	p, err := s.userPrincipal(r)
	if err != nil {
		return err
	}
	id, err := factorID(r)
	if err != nil {
		return err
	}
	if err := s.MFA.Unenroll(r.Context(), p, id); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]string{"id": id})
}

// userWithAAL is GET /user's answer: the user, and the assurance level of
// the session asking (auth-js reads it from the token; other clients need
// not decode one).
func userWithAAL(u *voxanne.User, aal string) any {
	b, err := json.Marshal(u)
	if err != nil {
		return u
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return u
	}
	m["aal"] = aal
	return m
}
