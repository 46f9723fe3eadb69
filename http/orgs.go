package http

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/google/uuid"

	"github.com/voxanne/voxanne"
)

// decodeAPI reads an /api JSON body; malformed JSON is validation_failed.
func decodeAPI(w http.ResponseWriter, r *http.Request, v any) error {
	err := decodeJSON(w, r, v)
	if e, ok := err.(*voxanne.Error); ok && e.Reason == "bad_json" {
		return voxanne.Errorf(voxanne.EINVALID, "%s", e.Message)
	}
	return err
}

// uuidParam reads a path parameter that must be a UUID (400 otherwise).
func uuidParam(r *http.Request, name string) (string, error) {
	v, err := pathUUID(r, name)
	if err != nil {
		return "", voxanne.Errorf(voxanne.EINVALID, "%s must be a UUID", name)
	}
	return v, nil
}

// listParams reads ?limit (1–100, default 50) and ?cursor, an opaque encoding of
// the last position seen.
func listParams(r *http.Request) (int, int64, error) {
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return 0, 0, voxanne.Errorf(voxanne.EINVALID, "limit must be between 1 and 100")
		}
		limit = n
	}
	var before int64
	if c := r.URL.Query().Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err == nil {
			before, err = strconv.ParseInt(string(b), 10, 64)
		}
		if err != nil || before < 1 {
			return 0, 0, voxanne.Errorf(voxanne.EINVALID, "cursor is not valid")
		}
	}
	return limit, before, nil
}

func encodeCursor(pos int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(pos, 10)))
}

func (s *Server) registerOrgs() {
	s.route("GET /api/me", s.apiAnyOrg(s.handleMe))
	s.route("GET /api/orgs/validate/{orgId}", s.api(s.handleValidateOrg))
	s.route("POST /api/orgs", s.apiAnyOrg(s.handleCreateOrg))
	s.route("POST /api/orgs/{orgId}/switch", s.apiAnyOrg(s.handleSwitchOrg))
	s.route("GET /api/org", s.api(s.handleGetOrg))
	s.route("PATCH /api/org", s.api(s.handleRenameOrg))
	s.route("DELETE /api/org", s.api(s.handleDeleteOrg))
	s.route("GET /api/org/members", s.api(s.handleMembers))
	s.route("PATCH /api/org/members/{userId}", s.api(s.handleChangeRole))
	s.route("DELETE /api/org/members/{userId}", s.api(s.handleRemoveMember))
	s.route("POST /api/org/invitations", s.api(s.handleInvite))
	s.route("GET /api/org/invitations", s.api(s.handleInvitations))
	s.route("DELETE /api/org/invitations/{id}", s.api(s.handleRevokeInvitation))
	s.route("POST /api/invitations/accept", s.apiAnyOrg(s.handleAcceptInvitation))
	s.route("GET /api/org/audit-log", s.api(s.handleAuditLog))
	s.route("GET /api/org/audit-log/export", s.api(s.handleAuditExport))
	s.route("GET /api/org/audit-log/verify", s.api(s.handleAuditVerify))
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	me, err := s.Orgs.Me(r.Context(), p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, me)
}

// otherOrg records a request that named an org other than the token's.
func (s *Server) otherOrg(r *http.Request, p *voxanne.Principal, orgID string) {
	if orgID == p.OrgID {
		return
	}
	s.crossTenant(r, p, "path", orgID)
	_ = s.Orgs.Audit(r.Context(), voxanne.AuditEvent{OrgID: p.OrgID, ActorID: p.UserID, Action: voxanne.AuditCrossTenant,
		TargetType: "org", TargetID: orgID, IP: s.clientIP(r), Details: map[string]any{"path": r.URL.Path}})
}

func (s *Server) handleValidateOrg(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	orgID, err := uuidParam(r, "orgId")
	if err != nil {
		return err
	}
	s.otherOrg(r, p, orgID)
	o, role, err := s.Orgs.Validate(r.Context(), p, orgID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"valid": true, "org": map[string]string{"id": o.ID, "name": o.Name}, "role": role})
}

func (s *Server) handleCreateOrg(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	var in struct {
		Name string `json:"name"`
	}
	if err := decodeAPI(w, r, &in); err != nil {
		return err
	}
	o, err := s.Orgs.CreateOrg(r.Context(), p, in.Name, s.clientIP(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, o)
}

func (s *Server) handleSwitchOrg(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	orgID, err := uuidParam(r, "orgId")
	if err != nil {
		return err
	}
	if err := rateLimit(w, s.limits.orgSwitch, p.UserID); err != nil {
		return err
	}
	sess, err := s.Orgs.SwitchOrg(r.Context(), p, orgID, clientInfo(s, r))
	if voxanne.ErrorCode(err) == voxanne.EFORBIDDEN {
		s.otherOrg(r, p, orgID)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, sess)
}

func (s *Server) handleGetOrg(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	o, err := s.Orgs.Org(r.Context(), p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, o)
}

// handleRenameOrg changes the org: its name (admin) and whether it requires
// MFA (owner).
func (s *Server) handleRenameOrg(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	var in struct {
		Name       *string `json:"name"`
		RequireMFA *bool   `json:"require_mfa"`
	}
	if err := decodeAPI(w, r, &in); err != nil {
		return err
	}
	if in.Name == nil && in.RequireMFA == nil {
		return voxanne.Errorf(voxanne.EINVALID, "name or require_mfa is required")
	}
	if in.RequireMFA != nil && s.MFA == nil {
		return voxanne.Errorf(voxanne.EINVALID, "require_mfa is not available on this server")
	}
	if in.RequireMFA != nil && !voxanne.AtLeast(p.OrgRole, voxanne.RoleOwner) {
		return voxanne.Errorf(voxanne.EFORBIDDEN, "only an owner can change require_mfa")
	}
	var o *voxanne.Org
	var err error
	if in.Name != nil {
		if o, err = s.Orgs.RenameOrg(r.Context(), p, *in.Name, s.clientIP(r)); err != nil {
			return err
		}
	}
	if in.RequireMFA != nil {
		if o, err = s.MFA.SetRequireMFA(r.Context(), p, *in.RequireMFA, s.clientIP(r)); err != nil {
			return err
		}
	}
	return writeJSON(w, http.StatusOK, o)
}

// handleDeleteOrg deletes the caller's org and all its data (owner), given
// ?confirm=<the org's id>.
func (s *Server) handleDeleteOrg(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	confirm := r.URL.Query().Get("confirm")
	if confirm != "" {
		id, err := uuid.Parse(confirm)
		if err != nil || len(confirm) != 36 {
			return voxanne.Errorf(voxanne.EINVALID, "confirm must be the organization's id")
		}
		confirm = id.String()
	}
	err := s.Orgs.DeleteOrg(r.Context(), p, confirm, s.clientIP(r))
	if voxanne.ErrorCode(err) == voxanne.EFORBIDDEN && confirm != "" && voxanne.AtLeast(p.OrgRole, voxanne.RoleOwner) {
		s.otherOrg(r, p, confirm)
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleMembers(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	m, err := s.Orgs.Members(r.Context(), p)
	if err != nil {
		return err
	}
	if m == nil {
		m = []voxanne.Member{}
	}
	return writeJSON(w, http.StatusOK, m)
}

func (s *Server) handleChangeRole(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	userID, err := uuidParam(r, "userId")
	if err != nil {
		return err
	}
	var in struct {
		Role string `json:"role"`
	}
	if err := decodeAPI(w, r, &in); err != nil {
		return err
	}
	m, err := s.Orgs.ChangeRole(r.Context(), p, userID, in.Role, s.clientIP(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, m)
}

func (s *Server) handleRemoveMember(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	userID, err := uuidParam(r, "userId")
	if err != nil {
		return err
	}
	if err := s.Orgs.RemoveMember(r.Context(), p, userID, s.clientIP(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleInvite(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	var in struct {
		Email string `json:"email"`
		Role  string `json:"role"`
	}
	if err := decodeAPI(w, r, &in); err != nil {
		return err
	}
	if in.Role == "" {
		in.Role = voxanne.RoleMember
	}
	inv, err := s.Orgs.Invite(r.Context(), p, in.Email, in.Role, s.clientIP(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, inv)
}

func (s *Server) handleInvitations(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	list, err := s.Orgs.Invitations(r.Context(), p)
	if err != nil {
		return err
	}
	if list == nil {
		list = []voxanne.Invitation{}
	}
	return writeJSON(w, http.StatusOK, list)
}

func (s *Server) handleRevokeInvitation(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	id, err := uuidParam(r, "id")
	if err != nil {
		return err
	}
	if err := s.Orgs.RevokeInvitation(r.Context(), p, id, s.clientIP(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleAcceptInvitation(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	var in struct {
		Token string `json:"token"`
	}
	if err := decodeAPI(w, r, &in); err != nil {
		return err
	}
	o, err := s.Orgs.AcceptInvitation(r.Context(), p, in.Token, s.clientIP(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"org": o})
}

func (s *Server) handleAuditLog(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	limit, before, err := listParams(r)
	if err != nil {
		return err
	}
	action, err := textParam(r, "action")
	if err != nil {
		return err
	}
	entries, err := s.Orgs.AuditLog(r.Context(), p, limit+1, before, action)
	if err != nil {
		return err
	}
	var next any
	if len(entries) > limit {
		entries = entries[:limit]
		next = encodeCursor(entries[limit-1].Seq)
	}
	if entries == nil {
		entries = []voxanne.AuditEntry{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"data": entries, "next_cursor": next})
}

// handleAuditExport streams the log as JSON Lines. The store reads it in short
// transactions, one page at a time, so a slow reader holds no database
// connection; each page written extends the write deadline, so a reader that
// stalls is cut off. Exports are capped per org.
func (s *Server) handleAuditExport(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	leave, err := s.exportGate.enter(w, p.OrgID)
	if err != nil {
		return err
	}
	defer leave()
	enc := json.NewEncoder(w)
	started := false
	err = s.Orgs.ExportAuditLog(r.Context(), p, func(e voxanne.AuditEntry) error {
		ExtendWriteDeadline(w)
		if !started {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.Header().Set("Content-Disposition", `attachment; filename="audit-log.jsonl"`)
			started = true
		}
		return enc.Encode(e)
	})
	if err != nil && started {
		// Headers are gone: cut the stream short so the client sees it incomplete.
		panic(http.ErrAbortHandler)
	}
	if err == nil && !started {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
	}
	return err
}

func (s *Server) handleAuditVerify(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	v, err := s.Orgs.VerifyAuditChain(r.Context(), p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}
