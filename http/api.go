package http

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/auth"
)

// Authenticator turns an /api bearer token into a principal.
type Authenticator interface {
	Authenticate(ctx context.Context, raw string) (*voxanne.Principal, error)
	Stats() auth.Stats
}

// apiMetrics are the /api authentication metrics.
type apiMetrics struct {
	verify       *prometheus.HistogramVec
	unauthorized *prometheus.CounterVec
	crossTenant  *prometheus.CounterVec
}

func (s *Server) registerAPIMetrics() {
	m := &apiMetrics{
		verify: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "voxanne_token_verification_seconds",
			Help: "Time to authenticate an /api bearer token, by outcome.",
			// Cached tokens take microseconds; the upper buckets hold the
			// alert's 500 ms threshold (deploy/prometheus/alerts.yml).
			Buckets: []float64{1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, .001, .0025, .005, .01, .05, .1, .25, .5, 1, 2.5},
		}, []string{"outcome"}),
		unauthorized: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voxanne_unauthorized_total", Help: "401 answers of /api by error code.",
		}, []string{"code"}),
		crossTenant: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "voxanne_cross_tenant_attempts_total", Help: "Requests that named another org than their token's, by how.",
		}, []string{"via"}),
	}
	// The series exist from the start, at 0: an alert on their increase then
	// sees the first attempt too.
	for _, via := range []string{"header", "query"} {
		m.crossTenant.WithLabelValues(via)
	}
	s.Registry.MustRegister(m.verify, m.unauthorized, m.crossTenant)
	stat := func(name, help string, f func(auth.Stats) float64, counter bool) {
		fn := func() float64 { return f(s.Authenticator.Stats()) }
		if counter {
			s.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, fn))
		} else {
			s.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
		}
	}
	stat("voxanne_auth_cache_hits_total", "Verified-token cache hits.", func(st auth.Stats) float64 { return float64(st.Hits) }, true)
	stat("voxanne_auth_cache_misses_total", "Verified-token cache misses.", func(st auth.Stats) float64 { return float64(st.Misses) }, true)
	stat("voxanne_auth_cache_evictions_total", "Verified-token cache evictions.", func(st auth.Stats) float64 { return float64(st.Evictions) }, true)
	stat("voxanne_auth_revocations_total", "Revocations applied by this instance.", func(st auth.Stats) float64 { return float64(st.Revocations) }, true)
	stat("voxanne_auth_cache_entries", "Verified-token cache entries.", func(st auth.Stats) float64 { return float64(st.Entries) }, false)
	s.apiMetrics = m
}

// api wraps an /api handler: it authenticates the bearer token, requires a user
// token with an active org (403 no_active_org), and notes requests that try to
// name another org.
func (s *Server) api(h func(http.ResponseWriter, *http.Request, *voxanne.Principal) error) func(http.ResponseWriter, *http.Request) error {
	return s.apiFor(false, h)
}

// apiAnyOrg is api for the routes a user without an active org needs to get
// one: /api/me, creating an org, accepting an invitation and switching.
func (s *Server) apiAnyOrg(h func(http.ResponseWriter, *http.Request, *voxanne.Principal) error) func(http.ResponseWriter, *http.Request) error {
	return s.apiFor(true, h)
}

func (s *Server) apiFor(anyOrg bool, h func(http.ResponseWriter, *http.Request, *voxanne.Principal) error) func(http.ResponseWriter, *http.Request) error {
	return s.withToken(func(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
		if p.Role != "authenticated" {
			return voxanne.ReasonErrorf(voxanne.EUNAUTHORIZED, voxanne.ReasonBadJWT, "a user access token is required")
		}
		if p.OrgID == "" && !anyOrg {
			return voxanne.ReasonErrorf(voxanne.EFORBIDDEN, voxanne.ReasonNoActiveOrg,
				"the session has no active organization: create one, accept an invitation or switch to one")
		}
		// The routes that get a user an org (or another one) stay open: a
		// member can still switch away from an org that requires MFA.
		if p.NeedsMFA() && !anyOrg {
			return voxanne.ReasonErrorf(voxanne.EFORBIDDEN, voxanne.ReasonMFARequired,
				"this organization requires multi-factor authentication: verify a TOTP factor (aal2) and use the new session")
		}
		s.noteOrgSpoof(r, p)
		return h(w, r, p)
	})
}

// serviceRole wraps an operator handler that needs a service_role token.
func (s *Server) serviceRole(h func(http.ResponseWriter, *http.Request) error) func(http.ResponseWriter, *http.Request) error {
	return s.withToken(func(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
		if p.Role != "service_role" {
			return voxanne.Errorf(voxanne.EFORBIDDEN, "a service_role token is required")
		}
		return h(w, r)
	})
}

func (s *Server) withToken(h func(http.ResponseWriter, *http.Request, *voxanne.Principal) error) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		raw, err := bearer(r)
		if err != nil {
			s.apiMetrics.unauthorized.WithLabelValues("no_authorization").Inc()
			return err
		}
		start := time.Now()
		p, err := s.Authenticator.Authenticate(r.Context(), raw)
		outcome := "ok"
		if err != nil {
			_, code, _ := apiError(err)
			outcome = code
			s.apiMetrics.unauthorized.WithLabelValues(code).Inc()
		}
		s.apiMetrics.verify.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
		s.cacheStats.note(start, s.Authenticator.Stats, s.Logger)
		if err != nil {
			return err
		}
		// Handlers take the principal as an argument: nothing reads it from the
		// context, so the hot path copies no request for it.
		return h(w, r, p)
	}
}

// noteOrgSpoof counts and logs a request that names an org other than its
// token's in the x-org-id header or the org_id query parameter, unless it is
// another org the caller belongs to (a client that switched orgs is not an
// attacker). The request goes on for the token's org: nothing but the token
// chooses it.
func (s *Server) noteOrgSpoof(r *http.Request, p *voxanne.Principal) {
	if v := r.Header.Get("X-Org-Id"); v != "" && v != p.OrgID && !s.isMember(r, p, v) {
		s.crossTenant(r, p, "header", v)
	}
	if r.URL.RawQuery != "" {
		if v := r.URL.Query().Get("org_id"); v != "" && v != p.OrgID && !s.isMember(r, p, v) {
			s.crossTenant(r, p, "query", v)
		}
	}
}

// isMember reports whether the caller belongs to org. It reads the database,
// but only for requests that name an org other than their token's.
func (s *Server) isMember(r *http.Request, p *voxanne.Principal, org string) bool {
	if s.Orgs == nil {
		return false
	}
	me, err := s.Orgs.Me(r.Context(), p)
	if err != nil {
		return false
	}
	for _, o := range me.Orgs {
		if o.ID == org {
			return true
		}
	}
	return false
}

// crossTenant records an attempt to reach another org's data.
func (s *Server) crossTenant(r *http.Request, p *voxanne.Principal, via, target string) {
	s.apiMetrics.crossTenant.WithLabelValues(via).Inc()
	s.Logger.LogAttrs(r.Context(), slog.LevelWarn, "security_event",
		slog.String("event", "cross_tenant_attempt"), slog.String("via", via),
		slog.String("user_id", p.UserID), slog.String("org_id", p.OrgID), slog.String("target", target),
		slog.String("request_id", RequestID(r.Context())), slog.String("path", r.URL.Path))
}

func (s *Server) registerAPI() {
	s.registerAPIMetrics()
	s.route("GET /api/session", s.api(s.handleSession))
	s.route("GET /api/monitoring/cache-stats", s.serviceRole(s.handleCacheStats))
	if s.Orgs != nil {
		s.registerOrgs()
	}
	if s.Voice != nil {
		s.registerVoice()
	}
	if s.Webhooks != nil {
		s.registerWebhooks()
	}
	if s.Endpoints != nil {
		s.registerEndpoints()
	}
	s.route("GET /api/openapi.json", s.handleOpenAPI)
	s.route("/api/", func(w http.ResponseWriter, r *http.Request) error {
		return s.noRoute(w, r, "no such route")
	})
}

// handleSession answers who the token says the caller is; it reads no database
// and is the cheapest authenticated route (the load tool's target).
func (s *Server) handleSession(w http.ResponseWriter, r *http.Request, p *voxanne.Principal) error {
	return writeJSON(w, http.StatusOK, map[string]string{
		"user_id": p.UserID, "org_id": p.OrgID, "role": p.OrgRole, "session_id": p.SessionID,
	})
}

func (s *Server) handleCacheStats(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, s.Authenticator.Stats())
}
