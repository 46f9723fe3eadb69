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
	voxanne.EINVALID:      {http.StatusBadRequest, voxanne.ReasonValidationFailed},
	voxanne.EUNAUTHORIZED: {http.StatusUnauthorized, voxanne.ReasonBadJWT},
	voxanne.EFORBIDDEN:    {http.StatusForbidden, voxanne.ReasonForbidden},
	voxanne.ENOTFOUND:     {http.StatusNotFound, voxanne.ReasonNotFound},
	voxanne.ECONFLICT:     {http.StatusConflict, voxanne.ReasonConflict},
	voxanne.ETOOLARGE:     {http.StatusRequestEntityTooLarge, voxanne.ReasonTooLarge},
	voxanne.EMETHOD:       {http.StatusMethodNotAllowed, voxanne.ReasonMethodNotAllowed},
	voxanne.ERATELIMIT:    {http.StatusTooManyRequests, voxanne.ReasonRateLimited},
	voxanne.EUNAVAILABLE:  {http.StatusServiceUnavailable, voxanne.ReasonUnavailable},
	voxanne.EINTERNAL:     {http.StatusInternalServerError, voxanne.ReasonUnexpected},
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
	err = s.unavailable(r, err)
	switch status, _, _ := apiError(err); {
	case status >= 500:
		s.logFailure(r, status, err)
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
