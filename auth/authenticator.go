// Package auth verifies the bearer tokens of /api requests: signature and claims
// through auth/token, then the live session and membership state, with a bounded
// cache of verified tokens so that the hot path touches no database. Revocations
// (logout, role change, removal from an org) reach every instance through
// Apply, and a cached token is never trusted past one.
package auth

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/auth/token"
)

// Errors of Authenticate; the HTTP layer maps them to 401 bad_jwt and 401
// session_revoked.
var (
	ErrBadToken = &voxanne.Error{Code: voxanne.EUNAUTHORIZED, Reason: voxanne.ReasonBadJWT, Message: "invalid JWT: unable to parse or verify signature, token is expired or invalid"}
	ErrRevoked  = &voxanne.Error{Code: voxanne.EUNAUTHORIZED, Reason: voxanne.ReasonSessionRevoked, Message: "the session was logged out or the membership changed: refresh the session"}
)

// StateChecker checks a verified token against the database: its session is
// still active and the user's role in the token's org is the token's role. It
// returns ErrRevoked when either is no longer so, and else what the principal
// needs to know of the org (read in the same query).
type StateChecker interface {
	CheckTokenState(ctx context.Context, c *token.Claims, external bool) (TokenState, error)
}

// TokenState is what the state check learns besides validity: whether the
// token's org requires MFA. It is cached with the token; a policy change
// revokes the org's memberships, so the cache never holds a stale one.
type TokenState struct {
	OrgRequiresMFA bool
}

// Config configures an Authenticator.
type Config struct {
	Verifier *token.Verifier
	State    StateChecker
	// MaxEntries bounds the cache (default 100,000).
	MaxEntries int
	// MaxTTL bounds how long a verified token is cached (default 5 minutes).
	MaxTTL time.Duration
	// RefreshKeys is called when a token names an unknown kid, to reload local
	// keys or an external JWKS; it must rate-limit itself and report whether
	// anything was reloaded.
	RefreshKeys func(ctx context.Context) bool
}

type entry struct {
	p          *voxanne.Principal
	expires    time.Time
	verifiedAt time.Time
	kid        string // the signing key, checked again on every hit
}

type membershipKey struct{ user, org string }

// Stats are the cache counters.
type Stats struct {
	Hits        uint64  `json:"hits"`
	Misses      uint64  `json:"misses"`
	HitRate     float64 `json:"hit_rate"`
	Entries     int     `json:"entries"`
	Evictions   uint64  `json:"evictions"`
	Revocations uint64  `json:"revocations"`
}

// Authenticator turns bearer tokens into principals.
type Authenticator struct {
	cfg   Config
	cache *otter.Cache[string, *entry]

	// Revocations seen, by what they revoke, with when this instance learned of
	// them: a cached entry verified before that is not trusted.
	mu          sync.RWMutex
	sessions    map[string]time.Time
	memberships map[membershipKey]time.Time
	users       map[string]time.Time

	// trusted is false while the revocation feed is down: every request then
	// takes the database path.
	trusted atomic.Bool

	hits, misses, evictions, revocations atomic.Uint64
}

// New returns an Authenticator. It trusts its cache only once SetTrusted(true)
// says the revocation feed is up.
func New(cfg Config) *Authenticator {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 100_000
	}
	if cfg.MaxTTL <= 0 {
		cfg.MaxTTL = 5 * time.Minute
	}
	a := &Authenticator{cfg: cfg, sessions: map[string]time.Time{},
		memberships: map[membershipKey]time.Time{}, users: map[string]time.Time{}}
	a.cache = otter.Must(&otter.Options[string, *entry]{
		MaximumSize: cfg.MaxEntries,
		ExpiryCalculator: otter.ExpiryCreatingFunc(func(e otter.Entry[string, *entry]) time.Duration {
			return time.Until(e.Value.expires)
		}),
		OnDeletion: func(e otter.DeletionEvent[string, *entry]) {
			if e.WasEvicted() {
				a.evictions.Add(1)
			}
		},
	})
	return a
}

// SetTrusted tells whether the revocation feed is live.
func (a *Authenticator) SetTrusted(ok bool) { a.trusted.Store(ok) }

// Authenticate verifies raw and returns its principal.
func (a *Authenticator) Authenticate(ctx context.Context, raw string) (*voxanne.Principal, error) {
	if e, ok := a.cache.GetIfPresent(raw); ok {
		if time.Now().Before(e.expires) && a.trusted.Load() && !a.revokedSince(e) && a.keyTrusted(e.kid) {
			a.hits.Add(1)
			return e.p, nil
		}
		a.cache.Invalidate(raw)
	}
	a.misses.Add(1)
	c, err := a.cfg.Verifier.Verify(raw)
	if errors.Is(err, token.ErrUnknownKey) && a.cfg.RefreshKeys != nil && a.cfg.RefreshKeys(ctx) {
		c, err = a.cfg.Verifier.Verify(raw)
	}
	if err != nil {
		return nil, ErrBadToken
	}
	// Taken before the state check: a revocation learned after this moment
	// invalidates the entry even if the check below ran before it committed.
	verifiedAt := time.Now()
	external := c.Issuer != a.cfg.Verifier.Issuer
	if external && c.Role == token.RoleServiceRole {
		// Operator rights here come only from this server's own keys.
		return nil, ErrBadToken
	}
	p := &voxanne.Principal{UserID: c.Subject, Email: c.Email, SessionID: c.SessionID,
		OrgID: c.OrgID(), OrgRole: c.OrgRole(), Role: c.Role, AAL: c.AAL}
	if c.Role != token.RoleServiceRole {
		st, err := a.cfg.State.CheckTokenState(ctx, c, external)
		if err != nil {
			return nil, err
		}
		p.OrgRequiresMFA = st.OrgRequiresMFA
	}
	expires := time.Unix(c.ExpiresAt, 0)
	if limit := verifiedAt.Add(a.cfg.MaxTTL); limit.Before(expires) {
		expires = limit
	}
	if a.trusted.Load() {
		a.cache.Set(raw, &entry{p: p, expires: expires, verifiedAt: verifiedAt, kid: c.KeyID})
	}
	return p, nil
}

// keyTrusted reports whether the key a cached token was verified with is still
// trusted: a revoked signing key stops its tokens at once, cached or not.
func (a *Authenticator) keyTrusted(kid string) bool {
	if kid == "" {
		return true // HS256: the configured secret, which cannot be revoked
	}
	v := a.cfg.Verifier
	for _, find := range []func(string) (*token.Key, bool){v.Keys, v.External} {
		if find != nil {
			if k, ok := find(kid); ok && k != nil {
				return true
			}
		}
	}
	return false
}

func (a *Authenticator) revokedSince(e *entry) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if len(a.sessions)+len(a.memberships)+len(a.users) == 0 {
		return false
	}
	if t, ok := a.sessions[e.p.SessionID]; ok && !t.Before(e.verifiedAt) {
		return true
	}
	if t, ok := a.users[e.p.UserID]; ok && !t.Before(e.verifiedAt) {
		return true
	}
	t, ok := a.memberships[membershipKey{e.p.UserID, e.p.OrgID}]
	return ok && !t.Before(e.verifiedAt)
}

// Apply records a revocation: cached tokens it covers are verified against the
// database again on their next use, where they fail.
func (a *Authenticator) Apply(r voxanne.Revocation) {
	now := time.Now()
	a.mu.Lock()
	switch r.Kind {
	case voxanne.RevokeSession:
		a.sessions[r.SessionID] = now
	case voxanne.RevokeMembership:
		a.memberships[membershipKey{r.UserID, r.OrgID}] = now
	case voxanne.RevokeUser:
		a.users[r.UserID] = now
	}
	a.pruneLocked(now)
	a.mu.Unlock()
	a.revocations.Add(1)
}

// pruneLocked forgets revocations older than any cache entry can be: entries
// verified before them have expired.
func (a *Authenticator) pruneLocked(now time.Time) {
	cutoff := now.Add(-a.cfg.MaxTTL - time.Minute)
	for k, t := range a.sessions {
		if t.Before(cutoff) {
			delete(a.sessions, k)
		}
	}
	for k, t := range a.memberships {
		if t.Before(cutoff) {
			delete(a.memberships, k)
		}
	}
	for k, t := range a.users {
		if t.Before(cutoff) {
			delete(a.users, k)
		}
	}
}

// Stats returns the cache counters.
func (a *Authenticator) Stats() Stats {
	s := Stats{Hits: a.hits.Load(), Misses: a.misses.Load(), Entries: a.cache.EstimatedSize(),
		Evictions: a.evictions.Load(), Revocations: a.revocations.Load()}
	if total := s.Hits + s.Misses; total > 0 {
		s.HitRate = float64(s.Hits) / float64(total)
	}
	return s
}
