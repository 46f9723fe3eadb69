package http

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/voxanne/voxanne"
)

// DefaultRequestTimeout is each request's server-side deadline unless
// Server.RequestTimeout says otherwise: ample for any one request of the API,
// and shorter than Vapi's and Twilio's webhook timeouts, so that a sender
// hears 503 and retries rather than giving up on a hanging request.
const DefaultRequestTimeout = 10 * time.Second

// StreamTimeout is the deadline of the responses that stream (exports, the
// dashboard's event stream): they extend their write deadline while they make
// progress (ExtendWriteDeadline) and end after this at the latest (an event
// stream's client reconnects by itself).
const StreamTimeout = time.Hour

// WithDeadline gives every request through next a server-side deadline: d
// (DefaultRequestTimeout when 0), or StreamTimeout for the requests that
// stream says are streams. Work that waits on the database past it ends with a
// context error, which the API answers 503 unavailable: a hung database holds
// no request, goroutine or socket for longer than the deadline.
func WithDeadline(next http.Handler, d time.Duration, stream func(*http.Request) bool) http.Handler {
	if d <= 0 {
		d = DefaultRequestTimeout
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := d
		if stream != nil && stream(r) {
			limit = StreamTimeout
		}
		ctx, cancel := context.WithTimeout(r.Context(), limit)
		defer cancel()
		inner := r.WithContext(ctx)
		next.ServeHTTP(w, inner)
		// The router sets the matched pattern on the request it got; the
		// middleware outside labels metrics with it.
		r.Pattern = inner.Pattern
	})
}

// isExport reports the API's requests that stream: the exports.
func isExport(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/export") }

// unavailableMessage is what a caller is told while the database is out of
// reach.
const unavailableMessage = "the service is temporarily unavailable: try again shortly"

// unavailable returns err as an EUNAVAILABLE error when it is no fault of the
// request's but an outage's: the database could not be reached or did not
// answer in time (Server.Unavailable), or the request's deadline passed.
// Errors that already say what the caller did wrong stay as they are.
func (s *Server) unavailable(r *http.Request, err error) error {
	var e *voxanne.Error
	if errors.As(err, &e) && e.Code != voxanne.EINTERNAL {
		return err
	}
	if r.Context().Err() != nil || errors.Is(err, context.DeadlineExceeded) || (s.Unavailable != nil && s.Unavailable(err)) {
		return &voxanne.Error{Code: voxanne.EUNAVAILABLE, Message: unavailableMessage, Err: err}
	}
	return err
}

// logFailure logs a failure the caller sees as a 5xx: an outage (503) as a
// warning, anything else as an unexpected failure, which is also reported.
func (s *Server) logFailure(r *http.Request, status int, err error) {
	if status == http.StatusServiceUnavailable {
		s.Logger.LogAttrs(r.Context(), slog.LevelWarn, "unavailable",
			slog.String("request_id", RequestID(r.Context())), slog.String("path", r.URL.Path), slog.String("error", err.Error()))
		return
	}
	s.logUnexpected(r, err)
}
