// Package web is Voxanne's staff dashboard: server-rendered pages (html/template
// and embedded first-party assets) that call the auth, org and voice services
// in-process with the principal of the signed-in session, so that the same
// isolation layers hold for them as for /api.
//
// The browser holds only an opaque, sealed, HttpOnly session cookie; the server
// keeps the access and refresh tokens inside it, refreshes the access token
// before it expires and authenticates every page, so that a logout, removal
// from the org or role change elsewhere takes effect on the next page.
package web

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/internal/methods"
)

// Authenticator turns an access token into a principal; it checks the session
// and the membership, as the /api authenticator does.
type Authenticator interface {
	Authenticate(ctx context.Context, raw string) (*voxanne.Principal, error)
}

// Rate is a request budget: N per Per. N <= 0 turns the limit off.
type Rate struct {
	N   int
	Per time.Duration
}

// Config is what the dashboard needs.
type Config struct {
	Auth voxanne.AuthService
	// Authenticator verifies access tokens with the membership checks: the
	// same authenticator as /api (required).
	Authenticator Authenticator
	Orgs          OrgService
	Voice         VoiceService
	// PublicURL is the external base URL; https makes cookies Secure.
	PublicURL string
	// Keys seal session cookies; they must be the same on every instance.
	Keys KeySource
	// SignInRate limits sign-in and sign-up attempts per client IP (the
	// dashboard's own forms, which do not pass through /auth/v1).
	SignInRate Rate
	Logger     *slog.Logger
	// DisableSignup hides and refuses the sign-up form.
	DisableSignup bool
	// Events feeds GET /events (live updates); nil turns them off.
	Events *Hub
	// Endpoints manages the org's own webhook endpoints on the settings
	// page; nil shows the shared endpoints only.
	Endpoints voxanne.WebhookEndpointService
	// MFA runs two-factor authentication: the /mfa pages and the org's
	// requirement (nil: neither is offered).
	MFA voxanne.MFAService
	// Unavailable tells a database that cannot be reached or did not answer
	// in time from a failing request (postgres.Unavailable): its pages
	// answer 503 with Retry-After, like the API, instead of 500.
	Unavailable func(error) bool
}

// Handler serves the dashboard.
type Handler struct {
	cfg    Config
	mux    *http.ServeMux
	secure bool
	origin string
	pages  *pages

	limitMu sync.Mutex
	limits  map[string]*rate.Limiter

	// figures keeps the overview's figures between requests.
	figures *figures

	patterns []string
	methods  *methods.Table
}

// New builds the dashboard handler.
func New(cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux(), methods: methods.New(), pages: loadPages(), figures: newFigures(), limits: map[string]*rate.Limiter{}}
	if u, err := url.Parse(cfg.PublicURL); err == nil && u.Host != "" {
		h.secure = u.Scheme == "https"
		h.origin = u.Scheme + "://" + u.Host
	}
	h.routes()
	return h
}

// dashboardRoots are the first path segments the dashboard answers; Mount
// sends everything else to the API.
var dashboardRoots = map[string]bool{
	"": true, "login": true, "signup": true, "logout": true, "forgot": true, "reset": true,
	"invitations": true, "overview": true, "calls": true, "messages": true, "contacts": true,
	"team": true, "settings": true, "audit": true, "account": true, "orgs": true, "static": true, "events": true, "mfa": true,
	"favicon.ico": true,
}

// IsDashboardPath reports whether path belongs to the dashboard.
func IsDashboardPath(path string) bool {
	if path == "/" {
		return true
	}
	seg, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if seg == "" {
		return false
	}
	if seg == "invitations" {
		return path == "/invitations/accept"
	}
	return dashboardRoots[seg]
}

// Mount serves the dashboard's paths with dash and every other path (/api,
// /auth/v1, /health, ...) with api.
func Mount(api, dash http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if IsDashboardPath(r.URL.Path) {
			dash.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// ServeHTTP serves a dashboard request with the security headers every page
// carries.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Frame-Options", "DENY")
	rec := &statusWriter{ResponseWriter: w}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			h.cfg.Logger.Error("dashboard panic", "path", r.URL.Path, "panic", p)
			if rec.status == 0 {
				h.renderError(rec, r, http.StatusInternalServerError, "Something went wrong", "The page could not be shown. Try again in a moment.")
			}
		}
		h.cfg.Logger.LogAttrs(r.Context(), slog.LevelInfo, "dashboard request", slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.Int("status", rec.code()), slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000))
	}()
	if !validInput(r) {
		h.renderError(rec, r, http.StatusBadRequest, "Invalid characters",
			"The form or the address has characters that cannot be stored (a NUL character or invalid UTF-8). Remove them and try again.")
		return
	}
	h.mux.ServeHTTP(rec, r)
}

// validInput reports whether every query and form field of r, names and
// values, is valid UTF-8 without NUL characters: anything else is refused
// (400) before a page can pass it to a store that cannot keep it.
func validInput(r *http.Request) bool {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil || !validValues(q) {
		return false
	}
	if r.Method != http.MethodPost {
		return true
	}
	if err := r.ParseForm(); err != nil {
		return false
	}
	return validValues(r.PostForm)
}

func validValues(v url.Values) bool {
	for k, vs := range v {
		if !voxanne.ValidText(k) {
			return false
		}
		for _, s := range vs {
			if !voxanne.ValidText(s) {
				return false
			}
		}
	}
	return true
}

// csp forbids inline scripts and styles and every third-party origin; media
// may come from https recording URLs.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' https:; " +
	"connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) code() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}

func (h *Handler) routes() {
	h.handle("GET /static/{file}", h.static)
	h.handle("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/static/favicon.svg", http.StatusMovedPermanently)
	})
	h.handle("GET /{$}", h.root)
	h.handle("GET /login", h.public(h.loginPage))
	h.handle("POST /login", h.public(h.loginPost))
	h.handle("GET /signup", h.public(h.signupPage))
	h.handle("POST /signup", h.public(h.signupPost))
	h.handle("GET /forgot", h.public(h.forgotPage))
	h.handle("POST /forgot", h.public(h.forgotPost))
	h.handle("GET /reset", h.public(h.resetPage))
	h.handle("POST /reset", h.public(h.resetPost))
	h.handle("GET /invitations/accept", h.public(h.acceptPage))
	h.handle("POST /invitations/accept", h.public(h.acceptPost))
	h.handle("POST /logout", h.logout)
	h.handle("GET /events", h.events)

	h.handle("GET /overview", h.app(h.overview))
	h.handle("GET /calls", h.app(h.calls))
	h.handle("GET /calls/{id}", h.app(h.call))
	h.handle("GET /messages", h.app(h.messages))
	h.handle("GET /contacts", h.app(h.contacts))
	h.handle("GET /contacts/{id}", h.app(h.contact))
	h.handle("POST /contacts/{id}", h.app(h.contactPost))
	h.handle("GET /team", h.app(h.team))
	h.handle("POST /team/invite", h.app(h.teamInvite))
	h.handle("POST /team/members/{userId}/role", h.app(h.teamRole))
	h.handle("POST /team/members/{userId}/remove", h.app(h.teamRemove))
	h.handle("POST /team/invitations/{id}/revoke", h.app(h.teamRevoke))
	h.handle("GET /settings", h.app(h.settings))
	h.handle("POST /settings/org", h.app(h.settingsOrg))
	h.handle("POST /settings/numbers", h.app(h.settingsAddNumber))
	h.handle("POST /settings/numbers/{id}/delete", h.app(h.settingsDeleteNumber))
	h.handle("POST /settings/endpoints", h.app(h.settingsAddEndpoint))
	h.handle("POST /settings/endpoints/{id}/rotate", h.app(h.settingsRotateEndpoint))
	h.handle("POST /settings/endpoints/{id}/delete", h.app(h.settingsDeleteEndpoint))
	h.handle("GET /audit", h.app(h.audit))
	h.handle("GET /audit/export", h.app(h.auditExport))
	h.handle("GET /account", h.app(h.account))
	h.handle("POST /account/password", h.app(h.accountPassword))
	h.handle("POST /account/logout-everywhere", h.app(h.accountLogoutAll))
	// Org switching and creation work from the org error page too, where the
	// session's org is gone.
	h.handle("POST /orgs/switch", h.anyOrg(h.switchOrg))
	h.handle("POST /orgs", h.anyOrg(h.createOrg))
	// Two-factor set-up and codes work before the org lets the session in.
	h.handle("GET /mfa", h.anyOrg(h.withMFA(h.mfaShow)))
	h.handle("POST /mfa/enroll", h.anyOrg(h.withMFA(h.mfaEnroll)))
	h.handle("POST /mfa/verify", h.anyOrg(h.withMFA(h.mfaVerify)))
	h.handle("POST /settings/mfa", h.app(h.withMFA(h.settingsMFA)))
	h.handle("/", func(w http.ResponseWriter, r *http.Request) {
		if allow := h.methods.Allowed(r); allow != "" {
			w.Header().Set("Allow", allow)
			h.renderError(w, r, http.StatusMethodNotAllowed, "Method not allowed", "This page does not take "+r.Method+" requests.")
			return
		}
		h.renderError(w, r, http.StatusNotFound, "Page not found", "There is nothing at this address.")
	})
}

// handle registers a route and remembers its pattern for Routes and for the
// method table that tells a wrong method (405) from an unknown page (404).
func (h *Handler) handle(pattern string, fn http.HandlerFunc) {
	h.patterns = append(h.patterns, pattern)
	h.methods.Add(pattern)
	h.mux.HandleFunc(pattern, fn)
}

// Routes returns every route pattern of the dashboard, so that tests can walk
// the whole table and none is left out.
func (h *Handler) Routes() []string { return append([]string(nil), h.patterns...) }

// clientIP returns the request's client address: the peer address, which a
// trusted proxy's resolver in front of the dashboard may have set.
func (h *Handler) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (h *Handler) clientInfo(r *http.Request) voxanne.ClientInfo {
	return voxanne.ClientInfo{IP: h.clientIP(r), UserAgent: voxanne.CleanText(r.UserAgent())}
}

// allow takes one sign-in attempt from the client's budget.
func (h *Handler) allow(r *http.Request) bool {
	if h.cfg.SignInRate.N <= 0 || h.cfg.SignInRate.Per <= 0 {
		return true
	}
	ip := h.clientIP(r)
	h.limitMu.Lock()
	defer h.limitMu.Unlock()
	l, ok := h.limits[ip]
	if !ok {
		if len(h.limits) > 100_000 {
			h.limits = map[string]*rate.Limiter{}
		}
		l = rate.NewLimiter(rate.Every(h.cfg.SignInRate.Per/time.Duration(h.cfg.SignInRate.N)), h.cfg.SignInRate.N)
		h.limits[ip] = l
	}
	return l.Allow()
}

// safeNext returns next when it is a same-origin path, else "/calls".
func safeNext(next string) string {
	if next == "" || len(next) > 2048 || !strings.HasPrefix(next, "/") ||
		strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.ContainsAny(next, "\\\r\n\t") {
		return "/calls"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/calls"
	}
	if !IsDashboardPath(u.Path) || u.Path == "/" || u.Path == "/login" || u.Path == "/logout" || strings.HasPrefix(u.Path, "/static/") {
		return "/calls"
	}
	return next
}
