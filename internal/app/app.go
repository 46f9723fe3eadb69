// Package app is Voxanne's one assembly: database -> services -> jobs ->
// HTTP handler (API and dashboard) and the background work around them. serve,
// serve --demo and the tests all build the server here, so the tests exercise
// exactly what production runs.
package app

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/auth"
	"github.com/voxanne/voxanne/auth/token"
	voxhttp "github.com/voxanne/voxanne/http"
	"github.com/voxanne/voxanne/jobs"
	"github.com/voxanne/voxanne/mailer"
	"github.com/voxanne/voxanne/postgres"
	"github.com/voxanne/voxanne/web"
	"github.com/voxanne/voxanne/webhook"
)

// Config is what the assembly needs; cmd/voxanne fills it from the environment
// and flags, the tests from their options.
type Config struct {
	// PublicURL is the external base URL; the token issuer is PublicURL/auth/v1.
	PublicURL string
	Version   string
	Logger    *slog.Logger

	JWTExp    time.Duration
	JWTSecret string // also accept HS256 tokens signed with it
	// ExternalJWKSURL and ExternalIssuer also accept an external project's tokens.
	ExternalJWKSURL, ExternalIssuer string
	// KeyEncryptionKey seals signing keys and endpoint secrets at rest.
	KeyEncryptionKey string
	// AuditKey keys the audit chain (default: derived from KeyEncryptionKey).
	AuditKey string

	VapiSecret, VapiSecretPrev   string
	TwilioToken, TwilioTokenPrev string

	Autoconfirm, DisableSignup bool
	// PasswordMinLength is the fewest characters of a new password (0: 8).
	PasswordMinLength int
	// Mailer sends mail; nil: SMTP when SMTPURL is set, else the log.
	Mailer  voxanne.Mailer
	SMTPURL string

	// RateLimits of the auth endpoints (nil: the defaults); a zero Rate is off.
	RateLimits      *voxhttp.RateLimits
	RateLimitHeader string
	TrustedProxies  voxhttp.TrustedProxies
	CORSOrigins     []string

	// Workers is how many background jobs run at once; JobsInsertOnly makes an
	// instance that enqueues but never works jobs.
	Workers        int
	JobsInsertOnly bool
	// SeparateMetrics serves /metrics on a listener of its own
	// (App.API.MetricsHandler) instead of the main router.
	SeparateMetrics bool
	// ReportError receives unexpected failures (Sentry).
	ReportError func(ctx context.Context, requestID string, err error)
	// RequestTimeout is every request's server-side deadline, API and
	// dashboard (0: voxhttp.DefaultRequestTimeout; streams get
	// voxhttp.StreamTimeout).
	RequestTimeout time.Duration
}

// App is an assembled Voxanne. Its fields are the services, for tests and the
// demo seeding; Handler serves every route.
type App struct {
	DB        *postgres.DB
	Keys      *postgres.KeyRing
	Auth      *postgres.AuthService
	Authn     *auth.Authenticator
	Orgs      *postgres.OrgStore
	MFA       *postgres.MFAStore
	Voice     *postgres.VoiceStore
	Endpoints *postgres.EndpointStore
	Ingest    *postgres.IngestStore
	Jobs      *jobs.Runner
	Events    *web.Hub
	// API is the /api, /auth/v1, webhook and operations server.
	API *voxhttp.Server
	// Handler serves the dashboard and everything else.
	Handler http.Handler

	cfg      Config
	external *auth.RemoteJWKS
	stop     context.CancelFunc
	wg       sync.WaitGroup
}

// New assembles Voxanne on db: it loads the signing keys (making the first
// if needed), sets the audit key, and builds the services and the handler.
// Nothing runs in the background until Start, and nothing is written.
func New(ctx context.Context, db *postgres.DB, cfg Config) (*App, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Workers == 0 {
		cfg.Workers = 20
	}
	log := cfg.Logger
	a := &App{DB: db, cfg: cfg}
	// The audit chain is keyed with a secret that never enters the database
	// (serve also seals existing chains: DB.SealAuditChains).
	if key := postgres.DeriveAuditKey(cfg.AuditKey, cfg.KeyEncryptionKey); key != nil {
		db.SetAuditKey(key)
	}
	a.Keys = postgres.NewKeyRing(db, cfg.KeyEncryptionKey, cfg.JWTExp)
	if err := a.Keys.Load(ctx); err != nil {
		return nil, err
	}
	issuer := cfg.PublicURL + "/auth/v1"
	v := &token.Verifier{Issuer: issuer, Keys: a.Keys.Lookup}
	if cfg.JWTSecret != "" {
		v.HS256Secret = []byte(cfg.JWTSecret)
	}
	if cfg.ExternalJWKSURL != "" {
		a.external = auth.NewRemoteJWKS(cfg.ExternalJWKSURL)
		if _, err := a.external.Refresh(ctx); err != nil {
			// Not fatal: local tokens work, and an unknown kid retries the fetch.
			log.Warn("external JWKS not loaded", "error", err)
		}
		v.External, v.ExternalIssuer = a.external.Lookup, cfg.ExternalIssuer
	}
	m, err := a.mailer()
	if err != nil {
		return nil, err
	}
	a.Authn = auth.New(auth.Config{Verifier: v, State: db, RefreshKeys: a.refreshKeys})
	a.Auth = postgres.NewAuthService(db, a.Keys, postgres.AuthConfig{
		Issuer: issuer, PublicURL: cfg.PublicURL, JWTExp: cfg.JWTExp,
		Autoconfirm: cfg.Autoconfirm, DisableSignup: cfg.DisableSignup, PasswordMinLength: cfg.PasswordMinLength,
		Mailer: m, Logger: log, Verifier: v, Revoked: a.Authn.Apply,
	})
	a.Orgs = postgres.NewOrgStore(db, a.Auth)
	a.MFA = postgres.NewMFAStore(a.Auth, cfg.KeyEncryptionKey)
	a.Voice = postgres.NewVoiceStore(db)
	a.Endpoints = postgres.NewEndpointStore(db, cfg.KeyEncryptionKey)
	// Processing (jobs) works on the event store; processed events announce
	// their org to the dashboard's live pages. Ingestion enqueues on the runner.
	a.Jobs, err = jobs.New(db.RiverDriver(), &postgres.DashboardNotifier{DB: db, Next: &jobs.Processor{Store: postgres.NewEventStore(db)}},
		jobs.Config{Workers: cfg.Workers, Logger: log, InsertOnly: cfg.JobsInsertOnly})
	if err != nil {
		return nil, err
	}
	a.Ingest = postgres.NewIngestStore(db, a.Jobs.EnqueueTx)

	// Readiness: the database answers and takes writes, migrations are
	// current and a signing key is loaded. /health adds the job queue.
	ready := map[string]voxhttp.Check{
		"database":   voxhttp.DatabaseCheck(db),
		"writes":     voxhttp.WriteCheck(db.ProbeWrite),
		"migrations": voxhttp.MigrationsCheck(db.MigrationsPending),
		"auth":       voxhttp.SigningKeyCheck(a.currentKID),
	}
	health := maps.Clone(ready)
	health["jobs"] = voxhttp.JobsCheck(a.Ingest.JobCounts, a.Ingest.UnroutableCount)
	a.API = &voxhttp.Server{
		Logger:          log,
		Version:         cfg.Version,
		Started:         time.Now(),
		Checks:          health,
		Readiness:       ready,
		SeparateMetrics: cfg.SeparateMetrics,
		Webhooks:        a.Ingest,
		Jobs:            a.Ingest.JobCounts,
		WebhookConfig: voxhttp.WebhookConfig{PublicURL: cfg.PublicURL,
			Vapi:         webhook.VapiSecrets{Current: cfg.VapiSecret, Previous: cfg.VapiSecretPrev},
			TwilioTokens: []string{cfg.TwilioToken, cfg.TwilioTokenPrev}},
		ReportError:    cfg.ReportError,
		Unavailable:    postgres.Unavailable,
		RequestTimeout: cfg.RequestTimeout,
		Pools:          db.PoolStats,
		Auth:           a.Auth,
		MFA:            a.MFA,
		Passwordless:   a.Auth,
		Authenticator:  a.Authn,
		Orgs:           a.Orgs,
		Voice:          a.Voice,
		Endpoints:      a.Endpoints,
		AuthSettings:   voxhttp.AuthSettings{DisableSignup: cfg.DisableSignup, Autoconfirm: cfg.Autoconfirm},
		RateLimits:     cfg.RateLimits,
		ClientIPHeader: cfg.RateLimitHeader,
		TrustedProxies: cfg.TrustedProxies,
		CORSOrigins:    cfg.CORSOrigins,
		SiteURL:        cfg.PublicURL + "/",
	}
	signIn := voxhttp.DefaultRateLimits.SignIn
	if cfg.RateLimits != nil {
		signIn = cfg.RateLimits.SignIn
	}
	// The dashboard answers its own paths; everything else is the API's. Its
	// live updates follow one LISTEN connection (Start).
	a.Events = web.NewHub()
	dash := web.New(web.Config{Events: a.Events, Endpoints: a.Endpoints, Auth: a.Auth, Authenticator: a.Authn,
		Orgs: a.Orgs, MFA: a.MFA, Voice: a.Voice, PublicURL: cfg.PublicURL, Keys: web.SigningKeys(a.Keys.Current, a.Keys.Lookup),
		Logger: log, SignInRate: web.Rate(signIn), DisableSignup: cfg.DisableSignup, Unavailable: postgres.Unavailable})
	// The dashboard reads its client address from RemoteAddr, which the
	// resolver sets from the trusted proxies' header.
	// The dashboard's requests have the API's deadline; its export and event
	// stream are streams.
	dashStream := func(r *http.Request) bool {
		return r.URL.Path == "/events" || strings.HasSuffix(r.URL.Path, "/export")
	}
	a.Handler = web.Mount(a.API.Handler(), voxhttp.WithDeadline(
		voxhttp.ClientIPResolver{Header: cfg.RateLimitHeader, Proxies: cfg.TrustedProxies}.Middleware(dash),
		cfg.RequestTimeout, dashStream))
	return a, nil
}

// mailer is the configured mailer: given, SMTP, or the log.
func (a *App) mailer() (voxanne.Mailer, error) {
	switch {
	case a.cfg.Mailer != nil:
		return a.cfg.Mailer, nil
	case a.cfg.SMTPURL != "":
		host := "localhost"
		if u, err := url.Parse(a.cfg.PublicURL); err == nil {
			host = u.Hostname()
		}
		return mailer.NewSMTP(a.cfg.SMTPURL, "Voxanne <noreply@"+host+">")
	}
	return mailer.Log{Logger: a.cfg.Logger}, nil
}

// refreshKeys reloads the signing keys (and the external JWKS) when a token
// names an unknown kid; it reports whether anything new was loaded.
func (a *App) refreshKeys(ctx context.Context) bool {
	reloaded, err := a.Keys.ReloadIfStale(ctx, time.Second)
	if err != nil {
		a.cfg.Logger.Error("reload signing keys", "error", err)
	}
	if a.external != nil {
		fetched, err := a.external.Refresh(ctx)
		if err != nil {
			a.cfg.Logger.Warn("refresh external JWKS", "error", err)
		}
		reloaded = reloaded || (fetched && err == nil)
	}
	return reloaded
}

// Start runs the background work: signing-key reloads, the revocation listener
// (live, when set, also hears whether the feed is connected), revocation
// pruning, the job workers and the dashboard's event listener. Close stops it.
func (a *App) Start(live func(bool)) {
	ctx, stop := context.WithCancel(context.Background())
	a.stop = stop
	log := a.cfg.Logger
	a.wg.Go(func() {
		a.Keys.Run(ctx, 30*time.Second, func(err error) { log.Error("reload signing keys", "error", err) })
	})
	a.wg.Go(func() {
		(&postgres.RevocationListener{DB: a.DB, Apply: a.Authn.Apply, Logger: log, Live: func(ok bool) {
			a.Authn.SetTrusted(ok)
			if live != nil {
				live(ok)
			}
		}}).Run(ctx)
	})
	a.wg.Go(func() { pruneRevocations(ctx, a.DB, log) })
	a.wg.Go(func() {
		if err := a.Jobs.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("background jobs", "error", err)
		}
	})
	// /metrics reads the readiness checks and job figures from a cache,
	// filled here before the first request and then in the background.
	a.API.RefreshStatus(ctx)
	a.wg.Go(func() { a.API.RunStatus(ctx, statusInterval) })
	a.wg.Go(func() { (&postgres.EventListener{DB: a.DB, Publish: a.Events.Publish, Logger: log}).Run(ctx) })
}

// Close stops the background work and waits for it; the database is the
// caller's to close afterwards.
func (a *App) Close() {
	if a.stop != nil {
		a.stop()
	}
	a.wg.Wait()
}

// currentKID is the id of the signing key in use, "" while none is loaded.
func (a *App) currentKID() string {
	if k := a.Keys.Current(); k != nil {
		return k.ID
	}
	return ""
}

// statusInterval is how often the readiness checks and job figures that
// /metrics exports are refreshed.
const statusInterval = 10 * time.Second

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
