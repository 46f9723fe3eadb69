package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Unavailable reports whether err means that the database could not be
// reached, or did not answer in time, rather than that the request was
// wrong: no connection could be made or it broke, the server is starting,
// shutting down or out of connections, disk or memory, a statement ran into
// statement_timeout, the pool is closed, or a deadline passed while waiting.
// Callers answer such failures "try again later" (HTTP 503), never as a bug.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, pgconn.ErrConnClosed) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) {
		return true
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connectErr) || errors.As(err, &netErr) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			strings.HasPrefix(pe.Code, "53"),                           // insufficient resources: connections, disk, memory
			strings.HasPrefix(pe.Code, "58"),                           // system error: I/O
			pe.Code == "57014",                                         // query_canceled: statement_timeout
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03": // shutting down, crashed, starting up
			return true
		}
		return false
	}
	// pgxpool's closed pool (puddle.ErrClosedPool), which it does not wrap in
	// a type of its own.
	for e := err; e != nil; e = errors.Unwrap(e) {
		if e.Error() == "closed pool" {
			return true
		}
	}
	return false
}
