package main

import (
	"context"
	"errors"
	"time"

	"github.com/getsentry/sentry-go"
)

// startSentry sends unexpected errors to Sentry when a DSN is configured; the
// returned function flushes what is pending at shutdown.
func startSentry(dsn, release string) (report func(ctx context.Context, requestID string, err error), flush func(), err error) {
	if dsn == "" {
		return nil, func() {}, nil
	}
	if err := sentry.Init(sentry.ClientOptions{Dsn: dsn, Release: "voxanne@" + release, AttachStacktrace: true}); err != nil {
		// Never echo the DSN: it carries a key.
		return nil, nil, errors.New("invalid VOXANNE_SENTRY_DSN: want https://KEY@HOST/PROJECT")
	}
	report = func(ctx context.Context, requestID string, err error) {
		hub := sentry.CurrentHub().Clone()
		hub.Scope().SetTag("request_id", requestID)
		hub.CaptureException(err)
	}
	return report, func() { sentry.Flush(2 * time.Second) }, nil
}
