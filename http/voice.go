package http

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/voxanne/voxanne"
)

// registerVoice registers the voice-data routes.
func (s *Server) registerVoice() {
	s.route("GET /api/calls", s.api(s.handleListCalls))
	s.route("GET /api/calls/{id}", s.api(s.handleGetCall))
	s.route("GET /api/messages", s.api(s.handleListMessages))
	s.route("GET /api/contacts", s.api(s.handleListContacts))
	s.route("GET /api/contacts/{id}", s.api(s.handleGetContact))
	s.route("PATCH /api/contacts/{id}", s.api(s.handleUpdateContact))
	s.route("GET /api/stats", s.api(s.handleStats))
	s.route("GET /api/phone-numbers", s.api(s.handlePhoneNumbers))
	s.route("POST /api/phone-numbers", s.api(s.handleAddPhoneNumber))
	s.route("DELETE /api/phone-numbers/{id}", s.api(s.handleDeletePhoneNumber))
}

// pageParams reads ?limit (1–100, default 50) and ?cursor, which the store
// decodes (a bad cursor is validation_failed there).
func pageParams(r *http.Request) (voxanne.Page, error) {
	pg := voxanne.Page{Limit: 50, Cursor: r.URL.Query().Get("cursor")}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return pg, voxanne.Errorf(voxanne.EINVALID, "limit must be between 1 and 100")
		}
		pg.Limit = n
	}
	return pg, nil
}

// maxTextParam bounds q and every free-text filter, in characters.
const maxTextParam = 256

// textParam reads a free-text query parameter of at most maxTextParam
// characters.
func textParam(r *http.Request, name string) (string, error) {
	v := r.URL.Query().Get(name)
	if utf8.RuneCountInString(v) > maxTextParam {
		return "", voxanne.Errorf(voxanne.EINVALID, "%s must be at most %d characters", name, maxTextParam)
	}
	return v, nil
}

// writeList writes a list page: {"data": [...], "next_cursor": "..."|null}.
func writeList[T any](w http.ResponseWriter, items []T, next string) error {
	if items == nil {
		items = []T{}
	}
	var cursor any
	if next != "" {
		cursor = next
	}
	return writeJSON(w, http.StatusOK, map[string]any{"data": items, "next_cursor": cursor})
}

// timeParam reads an optional time query parameter: RFC 3339, or a date
// (YYYY-MM-DD, a UTC day). A date as the end of a period stands for the whole
// day: its last microsecond, as periods include both ends.
func timeParam(r *http.Request, name string, end bool) (*time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return nil, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		t = t.UTC()
		return &t, nil
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return nil, voxanne.Errorf(voxanne.EINVALID, "%s must be an RFC 3339 time or a YYYY-MM-DD date", name)
	}
	if end {
		t = t.AddDate(0, 0, 1).Add(-time.Microsecond)
	}
	return &t, nil
}

// periodParams reads ?from and ?to; from must not be after to.
func periodParams(r *http.Request) (from, to *time.Time, err error) {
	if from, err = timeParam(r, "from", false); err != nil {
		return nil, nil, err
	}
	if to, err = timeParam(r, "to", true); err != nil {
		return nil, nil, err
	}
	if from != nil && to != nil && from.After(*to) {
		return nil, nil, voxanne.Errorf(voxanne.EINVALID, "from must not be after to")
	}
	return from, to, nil
}

func (s *Server) handleListCalls(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	pg, err := pageParams(r)
	if err != nil {
		return err
	}
	from, to, err := periodParams(r)
	if err != nil {
		return err
	}
	status, err := textParam(r, "status")
	if err != nil {
		return err
	}
	q, err := textParam(r, "q")
	if err != nil {
		return err
	}
	if q != "" {
		// Full-text searches are the expensive lists: capped per org.
		leave, err := s.searchGate.enter(w, p.OrgID)
		if err != nil {
			return err
		}
		defer leave()
	}
	f := voxanne.CallFilter{Status: status, From: from, To: to, Q: q}
	calls, next, err := s.Voice.ListCalls(r.Context(), p, f, pg)
	if err != nil {
		return err
	}
	return writeList(w, calls, next)
}

func (s *Server) handleGetCall(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	id, err := uuidParam(r, "id")
	if err != nil {
		return err
	}
	c, err := s.Voice.Call(r.Context(), p, id, s.clientIP(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (s *Server) handleListMessages(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	pg, err := pageParams(r)
	if err != nil {
		return err
	}
	contactID := r.URL.Query().Get("contact_id")
	if contactID != "" {
		u, err := uuid.Parse(contactID)
		if err != nil || len(contactID) != 36 {
			return voxanne.Errorf(voxanne.EINVALID, "contact_id must be a UUID")
		}
		contactID = u.String()
	}
	msgs, next, err := s.Voice.ListMessages(r.Context(), p, contactID, pg)
	if err != nil {
		return err
	}
	return writeList(w, msgs, next)
}

func (s *Server) handleListContacts(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	pg, err := pageParams(r)
	if err != nil {
		return err
	}
	contacts, next, err := s.Voice.ListContacts(r.Context(), p, pg)
	if err != nil {
		return err
	}
	return writeList(w, contacts, next)
}

func (s *Server) handleGetContact(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	id, err := uuidParam(r, "id")
	if err != nil {
		return err
	}
	c, err := s.Voice.Contact(r.Context(), p, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

// textField reads an optional string field of a PATCH body: absent leaves
// the value unchanged (nil), null or "" clears it, anything but a string is
// validation_failed.
func textField(raw json.RawMessage, name string) (*string, error) {
	if raw == nil {
		return nil, nil
	}
	v := ""
	if bytes.Equal(raw, []byte("null")) {
		return &v, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, voxanne.Errorf(voxanne.EINVALID, "%s must be a string", name)
	}
	return &v, nil
}

func (s *Server) handleUpdateContact(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	id, err := uuidParam(r, "id")
	if err != nil {
		return err
	}
	// Only these fields are read; id, org_id, phone_number, created_at, the
	// counters and anything else a body carries are ignored.
	var in struct {
		Name  json.RawMessage `json:"name"`
		Email json.RawMessage `json:"email"`
		Notes json.RawMessage `json:"notes"`
	}
	if err := decodeAPI(w, r, &in); err != nil {
		return err
	}
	var u voxanne.ContactUpdate
	if u.Name, err = textField(in.Name, "name"); err != nil {
		return err
	}
	if u.Email, err = textField(in.Email, "email"); err != nil {
		return err
	}
	if u.Notes, err = textField(in.Notes, "notes"); err != nil {
		return err
	}
	c, err := s.Voice.UpdateContact(r.Context(), p, id, u)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	from, to, err := periodParams(r)
	if err != nil {
		return err
	}
	st, err := s.Voice.Stats(r.Context(), p, from, to)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}

func (s *Server) handlePhoneNumbers(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	list, err := s.Voice.PhoneNumbers(r.Context(), p)
	if err != nil {
		return err
	}
	// The registry is small and not paged; it answers in the list shape.
	return writeList(w, list, "")
}

func (s *Server) handleAddPhoneNumber(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	var in struct {
		E164        string  `json:"e164"`
		Provider    string  `json:"provider"`
		ProviderID  *string `json:"provider_id"`
		AssistantID *string `json:"assistant_id"`
		Label       string  `json:"label"`
	}
	if err := decodeAPI(w, r, &in); err != nil {
		return err
	}
	n, err := s.Voice.AddPhoneNumber(r.Context(), p, voxanne.PhoneNumber{E164: in.E164, Provider: in.Provider,
		ProviderID: in.ProviderID, AssistantID: in.AssistantID, Label: in.Label})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, n)
}

func (s *Server) handleDeletePhoneNumber(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	id, err := uuidParam(r, "id")
	if err != nil {
		return err
	}
	if err := s.Voice.DeletePhoneNumber(r.Context(), p, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
