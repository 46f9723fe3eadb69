// Package http is Voxanne's HTTP layer: the router, middleware, one file per
// resource, and the one place where Voxanne error codes become statuses.
package http

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/internal/methods"
)

// Server holds the router and what its handlers need. Fields are set by
// cmd/voxanne before Handler is called.
type Server struct {
	Logger  *slog.Logger
	Version string
	Started time.Time
	// Checks are the named health checks of GET /health.
	Checks map[string]Check
	// Readiness are the checks of GET /readyz, also run in the background
	// for /metrics (RunStatus).
	Readiness map[string]Check
	// SeparateMetrics leaves GET /metrics out of the router: it is served on
	// a listener of its own (MetricsHandler).
	SeparateMetrics bool
	// CacheStatsEvery and CacheStatsInterval space the token cache's log
	// line: it is written once both that many authenticated requests and
	// that much time have passed since the last (defaults 100 and a minute).
	// A negative interval drops the time bound.
	CacheStatsEvery    int
	CacheStatsInterval time.Duration
	// StatusTimeout bounds one background refresh of the status that
	// /metrics exports (default 5 s).
	StatusTimeout time.Duration
	// Registry collects the server's metrics; nil makes a private one.
	Registry *prometheus.Registry

	// Auth serves /auth/v1 and authenticates /api requests.
	Auth         voxanne.AuthService
	AuthSettings AuthSettings
	// MFA serves /auth/v1/factors; nil leaves the factors API out.
	MFA voxanne.MFAService
	// Passwordless serves /otp, /resend, /reauthenticate, /invite and
	// /admin/generate_link; nil leaves them out.
	Passwordless voxanne.PasswordlessService
	// RateLimits of the auth endpoints; nil means DefaultRateLimits.
	RateLimits *RateLimits
	// ClientIPHeader names a trusted client-IP header set by a proxy ("": the
	// socket peer address is the client).
	ClientIPHeader string
	// TrustedProxies are the proxy hops allowed to name the client in the
	// forwarding header (zero: none, or one hop when ClientIPHeader is set).
	TrustedProxies TrustedProxies
	// CORSOrigins are the origins allowed cross-origin access ("*": any).
	CORSOrigins []string
	// SiteURL is where mailed links land after verification (the public URL).
	SiteURL string
	// Authenticator verifies /api bearer tokens; nil leaves /api out.
	Authenticator Authenticator
	// Orgs serves the organization routes.
	Orgs voxanne.OrgService
	// Voice serves calls, messages, contacts, stats and phone numbers.
	Voice voxanne.VoiceService
	// Webhooks receives Vapi and Twilio events.
	Webhooks voxanne.WebhookService
	// Endpoints manages orgs' own webhook endpoints and the operator's number
	// assignments; nil leaves those routes out.
	Endpoints voxanne.WebhookEndpointService
	// Webhook verification settings.
	WebhookConfig WebhookConfig
	// Jobs counts background jobs for /metrics.
	Jobs func(context.Context) (voxanne.JobCounts, error)
	// Pools, when set, exports the database pools' statistics in /metrics.
	Pools func() map[string]voxanne.PoolStat
	// ReportError, when set, receives every unexpected failure (a 500 or a
	// panic), for example to send it to Sentry.
	ReportError func(ctx context.Context, requestID string, err error)
	// Unavailable reports whether an error means the database could not be
	// reached or did not answer in time (postgres.Unavailable): such failures
	// answer 503 unavailable with Retry-After, not 500, and are not reported.
	Unavailable func(error) bool
	// RequestTimeout is each request's deadline (0: DefaultRequestTimeout).
	RequestTimeout time.Duration

	mux             *http.ServeMux
	methods         *methods.Table
	routes          []string
	webhookOutcomes *prometheus.CounterVec
	metrics         *metrics
	apiMetrics      *apiMetrics
	status          *statusCache
	cacheStats      *cacheStatsLog
	limits          limiters
	exportGate      *orgGate
	searchGate      *orgGate
}

type limiters struct {
	signIn, refresh, verify, recover, email *limiter
	emailGlobal, recoverEmail               *limiter
	passwordChange, orgSwitch               *limiter
}

type metrics struct {
	requests  *prometheus.HistogramVec
	forbidden *prometheus.CounterVec
}

// Handler builds the router with every route and the middleware around it.
func (s *Server) Handler() http.Handler {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Registry == nil {
		s.Registry = prometheus.NewRegistry()
	}
	s.metrics = &metrics{
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "voxanne_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern, method and status.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method", "status"}),
		forbidden: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voxanne_forbidden_total", Help: "403 answers (a role or org not allowed), by route pattern.",
		}, []string{"route"}),
	}
	if s.Pools != nil {
		s.Registry.MustRegister(newPoolCollector(s.Pools))
	}
	s.status = newStatusCache()
	s.cacheStats = &cacheStatsLog{every: int64(cmp.Or(s.CacheStatsEvery, 100)), interval: cmp.Or(s.CacheStatsInterval, time.Minute)}
	s.cacheStats.last.Store(time.Now().UnixNano())
	s.Registry.MustRegister(s.metrics.requests, s.metrics.forbidden, s.status, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rl := DefaultRateLimits
	if s.RateLimits != nil {
		rl = *s.RateLimits
	}
	s.limits = limiters{signIn: newLimiter(rl.SignIn), refresh: newLimiter(rl.Refresh),
		verify: newLimiter(rl.Verify), recover: newLimiter(rl.Recover), email: newLimiter(rl.Email),
		emailGlobal: newLimiter(rl.EmailGlobal), recoverEmail: newLimiter(rl.RecoverEmail),
		passwordChange: newLimiter(rl.PasswordChange), orgSwitch: newLimiter(rl.OrgSwitch)}
	s.exportGate, s.searchGate = newOrgGate(maxExportsPerOrg), newOrgGate(maxSearchesPerOrg)
	s.mux, s.methods = http.NewServeMux(), methods.New()
	s.route("GET /health", s.handleHealth)
	s.route("GET /livez", s.handleLive)
	s.route("GET /readyz", s.handleReady)
	if s.Auth != nil {
		s.registerAuth()
	}
	if s.Authenticator != nil {
		s.registerAPI()
	}
	if !s.SeparateMetrics {
		s.register("GET /metrics")
		s.mux.Handle("GET /metrics", s.MetricsHandler())
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, r, s.noRoute(w, r, "no such route"))
	})
	return s.middleware(WithDeadline(s.cors(s.mux), s.RequestTimeout, isExport))
}

// Routes returns every registered route pattern, so that tests can walk the
// router's own table and no route is left out of them.
func (s *Server) Routes() []string { return append([]string(nil), s.routes...) }

// route registers a handler that returns an error; one adapter checks the
// query string (queryCheck) and writes errors.
func (s *Server) route(pattern string, h func(http.ResponseWriter, *http.Request) error) {
	s.register(pattern)
	check := queryCheck(pattern)
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		err := check(r)
		if err == nil {
			err = h(w, r)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	})
}

// register records a route pattern: in Routes, and in the method table that
// tells a wrong method (405) from an unknown path (404).
func (s *Server) register(pattern string) {
	s.routes = append(s.routes, pattern)
	s.methods.Add(pattern)
}

// noRoute is the error for a request that no route took: 405
// method_not_allowed, with Allow, when its path is known with other methods;
// else 404 with message.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request, message string) error {
	if allow := s.methods.Allowed(r); allow != "" {
		w.Header().Set("Allow", allow)
		return voxanne.Errorf(voxanne.EMETHOD, "%s is not allowed here: use %s", r.Method, allow)
	}
	return voxanne.ReasonErrorf(voxanne.ENOTFOUND, voxanne.ReasonNotFound, "%s", message)
}

type ctxKey int

const requestIDKey ctxKey = iota

// RequestID returns the request's id.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// middleware gives every response an X-Request-Id, recovers panics as 500s,
// measures latency by route pattern and logs one line per request (path only:
// query strings may carry tokens).
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID.MatchString(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		if p := r.URL.Path; strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/auth/v1/") {
			// Tokens and tenant data never belong in a cache; the few public,
			// cacheable answers (JWKS) say so themselves.
			w.Header().Set("Cache-Control", "no-store")
		}
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey, id))
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.Logger.Error("panic", "request_id", id, "panic", p, "stack", string(debug.Stack()))
				if s.ReportError != nil {
					s.ReportError(r.Context(), id, fmt.Errorf("panic: %v", p))
				}
				if rec.status == 0 {
					writeAPIError(rec, r, errors.New("panic"))
				}
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			route, method := metricLabels(r)
			elapsed := time.Since(start)
			s.metrics.requests.WithLabelValues(route, method, strconv.Itoa(status)).Observe(elapsed.Seconds())
			s.Logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("request_id", id), slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.Int("status", status), slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000), slog.String("remote", remoteHost(r)))
		}()
		next.ServeHTTP(rec, r)
	})
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// writeJSON writes v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}
