package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	voxhttp "github.com/voxanne/voxanne/http"
	"github.com/voxanne/voxanne/jobs"
	"github.com/voxanne/voxanne/postgres"
	"github.com/voxanne/voxanne/web"
	"github.com/voxanne/voxanne/webhook"
)

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "serve [--demo] [flags]", stderr)
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	log := newLogger(cfg.LogFormat, stderr)
	started := time.Now()
	if cfg.Demo {
		// The demo feeds itself through the signed webhook path: it needs secrets
		// even when none are configured.
		if cfg.VapiSecret == "" {
			cfg.VapiSecret = randomSecret()
		}
		if cfg.TwilioToken == "" {
			cfg.TwilioToken = randomSecret()
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

	db, err := openDatabase(ctx, cfg, log, postgres.Options{Migrate: true})
	if err != nil {
		return err
	}
	defer db.close(log)
	// The audit chain is keyed with a secret that never enters the database.
	if key := postgres.DeriveAuditKey(cfg.AuditKey, cfg.KeyEncryptionKey); key != nil {
		db.SetAuditKey(key)
		sealed, err := db.SealAuditChains(ctx)
		if err != nil {
			return err
		}
		if sealed > 0 {
			log.Info("audit chains keyed", "orgs", sealed)
		}
	}

	auth, err := newAuth(ctx, cfg, db.DB, log)
	if err != nil {
		return err
	}
	// Background work stops before the database does.
	bg, stopBackground := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { stopBackground(); wg.Wait() }()
	wg.Go(func() {
		auth.keys.Run(bg, 30*time.Second, func(err error) { log.Error("reload signing keys", "error", err) })
	})
	wg.Go(func() {
		(&postgres.RevocationListener{DB: db.DB, Apply: auth.authn.Apply, Live: auth.authn.SetTrusted, Logger: log}).Run(bg)
	})
	wg.Go(func() { pruneRevocations(bg, db.DB, log) })

	ingest := postgres.NewIngestStore(db.DB, nil)
	// Processed events announce their org to the dashboard's live pages.
	runner, err := jobs.New(db.Owner, &postgres.DashboardNotifier{DB: db.DB, Next: ingest}, jobs.Config{Workers: cfg.Workers, Logger: log})
	if err != nil {
		return err
	}
	ingest.SetJobs(runner)
	wg.Go(func() {
		if err := runner.Run(bg); err != nil {
			log.Error("background jobs", "error", err)
		}
	})

	srv := &voxhttp.Server{
		Logger:  log,
		Version: version,
		Started: started,
		Checks: map[string]voxhttp.Check{
			"database": voxhttp.DatabaseCheck(db.DB),
			"auth":     authCheck(auth.keys),
			"jobs":     voxhttp.JobsCheck(ingest.JobCounts, ingest.UnroutableCount),
		},
		Webhooks: ingest,
		Jobs:     ingest.JobCounts,
		WebhookConfig: voxhttp.WebhookConfig{PublicURL: cfg.PublicURL,
			Vapi:         webhook.VapiSecrets{Current: cfg.VapiSecret, Previous: cfg.VapiSecretPrev},
			TwilioTokens: []string{cfg.TwilioToken, cfg.TwilioTokenPrev}},
		ReportError:    reportError,
		Pools:          db.PoolStats,
		Auth:           auth.svc,
		Authenticator:  auth.authn,
		Orgs:           postgres.NewOrgStore(db.DB, auth.svc),
		Voice:          postgres.NewVoiceStore(db.DB),
		Endpoints:      postgres.NewEndpointStore(db.DB, cfg.KeyEncryptionKey),
		AuthSettings:   voxhttp.AuthSettings{DisableSignup: cfg.DisableSignup, Autoconfirm: cfg.MailerAutoconfirm},
		RateLimits:     &cfg.RateLimits,
		ClientIPHeader: cfg.RateLimitHeader,
		TrustedProxies: cfg.TrustedProxies,
		CORSOrigins:    cfg.CORSOrigins,
		SiteURL:        cfg.PublicURL + "/",
	}
	// The dashboard answers its own paths; everything else is the API's. Its
	// live updates follow one LISTEN connection.
	hub := web.NewHub()
	wg.Go(func() { (&postgres.EventListener{DB: db.DB, Publish: hub.Publish, Logger: log}).Run(bg) })
	dash := web.New(web.Config{Events: hub, Endpoints: srv.Endpoints, Auth: auth.svc, Authenticator: auth.authn, Orgs: srv.Orgs, Voice: srv.Voice,
		PublicURL: cfg.PublicURL, Keys: web.SigningKeys(auth.keys.Current, auth.keys.Lookup), Logger: log,
		SignInRate: web.Rate(cfg.RateLimits.SignIn), DisableSignup: cfg.DisableSignup})
	httpSrv := &http.Server{
		// The dashboard reads its client address from RemoteAddr, which the
		// resolver sets from the trusted proxies' header.
		Handler:  web.Mount(srv.Handler(), voxhttp.ClientIPResolver{Header: cfg.RateLimitHeader, Proxies: cfg.TrustedProxies}.Middleware(dash)),
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	voxhttp.ConfigureServer(httpSrv)
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()
	log.Info("voxanne listening", "addr", ln.Addr().String(), "public_url", cfg.PublicURL, "version", version, "startup", time.Since(started).Round(time.Millisecond))

	if cfg.Demo {
		if err := seedDemo(ctx, cfg, "http://"+ln.Addr().String(), db.DB, auth, stdout, log); err != nil {
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

// authCheck reports the signing key in use.
func authCheck(keys *postgres.KeyRing) voxhttp.Check {
	return func(ctx context.Context) (map[string]any, error) {
		k := keys.Current()
		if k == nil {
			return nil, errors.New("no signing key")
		}
		return map[string]any{"signing_kid": k.ID}, nil
	}
}

// pruneRevocations keeps auth.revocations to what a reconnecting listener may
// still need.
func pruneRevocations(ctx context.Context, db *postgres.DB, log *slog.Logger) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := db.PruneRevocations(ctx, 24*time.Hour); err != nil {
				log.Error("prune revocations", "error", err)
			}
		}
	}
}
