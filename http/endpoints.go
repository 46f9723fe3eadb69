package http

import (
	"net/http"

	"github.com/voxanne/voxanne"
)

// registerEndpoints registers an org's own webhook endpoints (admin) and the
// operator's number assignments (service_role).
func (s *Server) registerEndpoints() {
	s.route("GET /api/org/webhook-endpoints", s.api(s.handleEndpoints))
	s.route("POST /api/org/webhook-endpoints", s.api(s.handleCreateEndpoint))
	s.route("POST /api/org/webhook-endpoints/{id}/rotate", s.api(s.handleRotateEndpoint))
	s.route("DELETE /api/org/webhook-endpoints/{id}", s.api(s.handleDeleteEndpoint))
	s.route("GET /api/admin/phone-numbers", s.serviceRole(s.handleAssignments))
	s.route("POST /api/admin/phone-numbers", s.serviceRole(s.handleAssign))
	s.route("DELETE /api/admin/phone-numbers/{id}", s.serviceRole(s.handleUnassign))
}

// endpointView is an endpoint as the API shows it: with the URLs to paste into
// the provider's console.
type endpointView struct {
	voxanne.WebhookEndpoint
	URL       string `json:"url,omitempty"`
	SMSURL    string `json:"sms_url,omitempty"`
	StatusURL string `json:"status_url,omitempty"`
}

// EndpointURLs returns the delivery URLs of an org's endpoint: for Vapi one
// server URL; for Twilio the SMS and the status-callback URL.
func EndpointURLs(publicURL string, e voxanne.WebhookEndpoint) (url, sms, status string) {
	if e.Provider == "vapi" {
		return publicURL + "/api/webhooks/vapi/" + e.ID, "", ""
	}
	base := publicURL + "/api/webhooks/twilio/" + e.ID
	return "", base + "/sms", base + "/status"
}

func (s *Server) endpointView(e voxanne.WebhookEndpoint) endpointView {
	v := endpointView{WebhookEndpoint: e}
	v.URL, v.SMSURL, v.StatusURL = EndpointURLs(s.WebhookConfig.PublicURL, e)
	return v
}

func (s *Server) handleEndpoints(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	list, err := s.Endpoints.Endpoints(r.Context(), p)
	if err != nil {
		return err
	}
	out := make([]endpointView, len(list))
	for i, e := range list {
		out[i] = s.endpointView(e)
	}
	return writeList(w, out, "")
}

// endpointInput is the body of creating or rotating an endpoint.
type endpointInput struct {
	Provider  string `json:"provider"`
	AuthToken string `json:"auth_token"`
}

func (s *Server) handleCreateEndpoint(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	var in endpointInput
	if err := decodeAPI(w, r, &in); err != nil {
		return err
	}
	e, err := s.Endpoints.CreateEndpoint(r.Context(), p, in.Provider, in.AuthToken, s.clientIP(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, s.endpointView(*e))
}

func (s *Server) handleRotateEndpoint(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	id, err := uuidParam(r, "id")
	if err != nil {
		return err
	}
	var in endpointInput
	if r.ContentLength != 0 {
		if err := decodeAPI(w, r, &in); err != nil {
			return err
		}
	}
	e, err := s.Endpoints.RotateEndpoint(r.Context(), p, id, in.AuthToken, s.clientIP(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.endpointView(*e))
}

func (s *Server) handleDeleteEndpoint(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	id, err := uuidParam(r, "id")
	if err != nil {
		return err
	}
	if err := s.Endpoints.DeleteEndpoint(r.Context(), p, id, s.clientIP(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleAssignments(w http.ResponseWriter, r *http.Request) error {
	list, err := s.Endpoints.Assignments(r.Context(), r.URL.Query().Get("org_id"))
	if err != nil {
		return err
	}
	return writeList(w, list, "")
}

func (s *Server) handleAssign(w http.ResponseWriter, r *http.Request) error {
	// id and created_at in the body are ignored: the store sets them.
	var in voxanne.PhoneAssignment
	if err := decodeAPI(w, r, &in); err != nil {
		return err
	}
	a, err := s.Endpoints.Assign(r.Context(), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, a)
}

func (s *Server) handleUnassign(w http.ResponseWriter, r *http.Request) error {
	id, err := uuidParam(r, "id")
	if err != nil {
		return err
	}
	if err := s.Endpoints.Unassign(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
