package http

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/voxanne/voxanne"
)

// apiCodes maps Voxanne error codes to the /api wire codes and statuses.
var apiCodes = map[string]struct {
	status int
	code   string
}{
	voxanne.EINVALID:      {http.StatusBadRequest, "validation_failed"},
	voxanne.EUNAUTHORIZED: {http.StatusUnauthorized, "bad_jwt"},
	voxanne.EFORBIDDEN:    {http.StatusForbidden, "forbidden"},
	voxanne.ENOTFOUND:     {http.StatusNotFound, "not_found"},
	voxanne.ECONFLICT:     {http.StatusConflict, "conflict"},
	voxanne.ETOOLARGE:     {http.StatusRequestEntityTooLarge, "request_entity_too_large"},
	voxanne.ERATELIMIT:    {http.StatusTooManyRequests, "over_request_rate_limit"},
	voxanne.EUNAVAILABLE:  {http.StatusServiceUnavailable, "service_unavailable"},
	voxanne.EINTERNAL:     {http.StatusInternalServerError, "unexpected_failure"},
}

// apiError returns the status, wire code and caller-safe message for err.
func apiError(err error) (int, string, string) {
	var e *voxanne.Error
	if !errors.As(err, &e) {
		return http.StatusInternalServerError, "unexpected_failure", "unexpected failure"
	}
	m, ok := apiCodes[e.Code]
	if !ok || e.Code == voxanne.EINTERNAL {
		return http.StatusInternalServerError, "unexpected_failure", "unexpected failure"
	}
	code := m.code
	if e.Reason != "" {
		code = e.Reason
	}
	return m.status, code, e.Message
}

func writeAPIError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg := apiError(err)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	retryAfter(w, status)
	_ = writeJSON(w, status, map[string]string{"code": code, "message": msg})
}

// writeError logs unexpected errors (once, with the request id) and writes err.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	switch status, _, _ := apiError(err); {
	case status >= 500:
		s.logUnexpected(r, err)
	case status == http.StatusForbidden:
		s.metrics.forbidden.WithLabelValues(r.Pattern).Inc()
	}
	writeAPIError(w, r, err)
}

// logUnexpected logs an error the caller only sees as unexpected_failure.
func (s *Server) logUnexpected(r *http.Request, err error) {
	s.Logger.LogAttrs(r.Context(), slog.LevelError, "unexpected failure",
		slog.String("request_id", RequestID(r.Context())), slog.String("error", err.Error()))
	if s.ReportError != nil {
		s.ReportError(r.Context(), RequestID(r.Context()), err)
	}
}

// retryAfter gives a 429 or 503 that names no wait of its own a short one, so
// that clients back off instead of retrying at once.
func retryAfter(w http.ResponseWriter, status int) {
	if (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
}
