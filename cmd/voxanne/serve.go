package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	voxhttp "github.com/voxanne/voxanne/http"
	"github.com/voxanne/voxanne/internal/app"
	"github.com/voxanne/voxanne/postgres"
)

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}

// serveFlags are serve's own flags, besides the settings.
func serveFlags(fs *flag.FlagSet) {
	fs.Bool("demo", false, "seed a demo organization, assign it the sample numbers and print its login, URLs and webhook secrets")
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve")
	serveFlags(fs)
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	cfg.Demo = fs.Lookup("demo").Value.String() == "true"
	log := newLogger(cfg.LogFormat, stderr)
	started := time.Now()
	// The demo feeds itself through the signed webhook path: it needs secrets
	// even when none are configured. Made-up ones are recorded for the
	// commands beside it (webhook send).
	var demoSecrets serverRecord
	if cfg.Demo {
		if cfg.VapiSecret == "" {
			cfg.VapiSecret = randomSecret()
			demoSecrets.VapiSecret = cfg.VapiSecret
		}
		if cfg.TwilioToken == "" {
			cfg.TwilioToken = randomSecret()
			demoSecrets.TwilioToken = cfg.TwilioToken
		}
	}

	reportError, flushSentry, err := startSentry(cfg.SentryDSN, version)
	if err != nil {
		return err
	}
	defer flushSentry()

	// Listen first: a busy port should fail before a database is started.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	defer ln.Close()
	var metricsLn net.Listener
	if cfg.MetricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return fmt.Errorf("listen on %s (VOXANNE_METRICS_ADDR): %w", cfg.MetricsAddr, err)
		}
		defer metricsLn.Close()
	}

	db, err := openDatabase(ctx, cfg, log, postgres.Options{Migrate: true}, "serve")
	if err != nil {
		return err
	}
	defer db.close(log)
	if db.cluster != nil {
		// This serve holds the data directory: tell the commands beside it
		// where it answers.
		rec := demoSecrets
		rec.PID, rec.PublicURL, rec.LocalURL = os.Getpid(), cfg.PublicURL, localURL(ln.Addr())
		remove, err := writeRecord(cfg.DataDir, rec)
		if err != nil {
			return err
		}
		defer remove()
	}
	a, err := app.New(ctx, db.DB, appConfig(cfg, log, reportError))
	if err != nil {
		return err
	}
	// Chains written before an audit key was configured end in a keyed entry.
	if sealed, err := db.SealAuditChains(ctx); err != nil {
		return err
	} else if sealed > 0 {
		log.Info("audit chains keyed", "orgs", sealed)
	}
	// Background work stops before the database does.
	a.Start(nil)
	defer a.Close()
	httpSrv := &http.Server{Handler: a.Handler, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	voxhttp.ConfigureServer(httpSrv)
	serveErr := make(chan error, 2)
	go func() { serveErr <- httpSrv.Serve(ln) }()
	if metricsLn != nil {
		// Only /metrics here: the listener can be opened to a monitoring
		// network without exposing the API there.
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", a.API.MetricsHandler())
		metricsSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		go func() { serveErr <- metricsSrv.Serve(metricsLn) }()
		defer metricsSrv.Close()
		log.Info("metrics listening", "addr", metricsLn.Addr().String())
	}
	log.Info("voxanne listening", "addr", ln.Addr().String(), "public_url", cfg.PublicURL, "version", version, "startup_ms", time.Since(started).Milliseconds())

	if cfg.Demo {
		if err := seedDemo(ctx, cfg, localURL(ln.Addr()), a, demoSecrets, stdout, log); err != nil {
			log.Error("demo seeding failed", "error", err)
		}
	}
	select {
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := httpSrv.Shutdown(shutdownCtx); err != nil {
		log.Error("http shutdown", "error", err)
	}
	return nil
}
