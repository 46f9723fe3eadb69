package http

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/voxanne/voxanne"
)

// Check is one health check: it returns details to show and an error when the
// dependency it checks is failing.
type Check func(ctx context.Context) (map[string]any, error)

// checkTimeout bounds each check: a database that hangs makes its checks
// fail, not the health endpoints wait.
const checkTimeout = 2 * time.Second

// Pinger is a database that can say whether it answers.
type Pinger interface {
	Ping(ctx context.Context) (time.Duration, error)
}

// PoolStater exposes pool statistics for the health details.
type PoolStater interface {
	TenantStat() voxanne.PoolStat
}

// DatabaseCheck reports the database's latency, and fails while it is unreachable.
func DatabaseCheck(db Pinger) Check {
	return func(ctx context.Context) (map[string]any, error) {
		took, err := db.Ping(ctx)
		details := map[string]any{"latency_ms": millis(took)}
		if err != nil {
			// The driver's message can name hosts and users: it stays out of the body.
			return details, errors.New("database unreachable")
		}
		if ps, ok := db.(PoolStater); ok {
			st := ps.TenantStat()
			details["pool_total"] = st.Total
			details["pool_idle"] = st.Idle
		}
		return details, nil
	}
}

// MigrationsCheck fails while migrations this binary knows are not applied
// (pending counts them), for example after a migrate down.
func MigrationsCheck(pending func(context.Context) (int, error)) Check {
	return func(ctx context.Context) (map[string]any, error) {
		n, err := pending(ctx)
		if err != nil {
			return nil, errors.New("migrations unreadable")
		}
		if n > 0 {
			return map[string]any{"pending": n}, fmt.Errorf("%d migrations pending", n)
		}
		return map[string]any{"pending": 0}, nil
	}
}

// SigningKeyCheck fails while no signing key is loaded; kid returns the
// current key's id ("" for none).
func SigningKeyCheck(kid func() string) Check {
	return func(context.Context) (map[string]any, error) {
		id := kid()
		if id == "" {
			return nil, errors.New("no signing key")
		}
		return map[string]any{"signing_kid": id}, nil
	}
}

// WriteCheck runs a write probe: a database that answers reads but refuses
// writes (read-only, a lost privilege, a full disk) would acknowledge no
// webhook.
func WriteCheck(probe func(context.Context) error) Check {
	return func(ctx context.Context) (map[string]any, error) {
		start := time.Now()
		err := probe(ctx)
		details := map[string]any{"latency_ms": millis(time.Since(start))}
		if err != nil {
			return details, errors.New("writes failing")
		}
		return details, nil
	}
}

// JobsCheck reports the job queue and the count of unroutable events. Discarded
// jobs (retries exhausted) are shown, not failed on: they need an operator, not
// a restart, and a 503 would take the instance out of a load balancer.
func JobsCheck(counts func(context.Context) (voxanne.JobCounts, error), unroutable func(context.Context) (int, error)) Check {
	return func(ctx context.Context) (map[string]any, error) {
		c, err := counts(ctx)
		if err != nil {
			return nil, errors.New("job queue unreadable")
		}
		n, err := unroutable(ctx)
		if err != nil {
			return nil, errors.New("job queue unreadable")
		}
		return map[string]any{"queued": c.Queued, "running": c.Running, "retrying": c.Retrying,
			"discarded": c.Discarded, "oldest_queued_seconds": c.OldestQueued.Seconds(), "unroutable_events": n}, nil
	}
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// checkResult is one check's outcome.
type checkResult struct {
	details map[string]any
	err     error
}

// runChecks runs checks at once, each bounded by checkTimeout, and reports
// whether all passed. Failures are logged with their reason; the bodies built
// from the results never carry it.
func (s *Server) runChecks(ctx context.Context, checks map[string]Check) (bool, map[string]checkResult) {
	results := make(map[string]checkResult, len(checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, check := range checks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, checkTimeout)
			defer cancel()
			details, err := check(cctx)
			mu.Lock()
			results[name] = checkResult{details, err}
			mu.Unlock()
		})
	}
	wg.Wait()
	ok := true
	for name, r := range results {
		if r.err != nil {
			ok = false
			s.Logger.Warn("health check failing", "check", name, "error", r.err)
		}
	}
	return ok, results
}

// checksBody is the checks' part of a health body: each check's status, and
// its details when withDetails.
func checksBody(results map[string]checkResult, withDetails bool) map[string]any {
	out := make(map[string]any, len(results))
	for name, r := range results {
		c := map[string]any{}
		if withDetails {
			for k, v := range r.details {
				c[k] = v
			}
		}
		c["status"] = "ok"
		if r.err != nil {
			c["status"] = "failing"
		}
		out[name] = c
	}
	return out
}

// handleHealth answers GET /health: 200 "ok" when every check passes, else
// 503 "degraded". The body is public and shows statuses only; a service_role
// bearer token adds the version, uptime and each check's details (key ids,
// pool figures, job counts). Any other token, valid or not, gets the public
// body: health is for load balancers, which send none.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) error {
	ok, results := s.runChecks(r.Context(), s.Checks)
	status, code := "ok", http.StatusOK
	if !ok {
		status, code = "degraded", http.StatusServiceUnavailable
	}
	body := map[string]any{"status": status}
	detailed := s.isServiceRole(r)
	if detailed {
		body["version"] = s.Version
		body["uptime_seconds"] = int64(time.Since(s.Started).Seconds())
	}
	body["checks"] = checksBody(results, detailed)
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, code, body)
}

// handleLive answers GET /livez: 200 while the process serves requests. It
// checks nothing else, so that an orchestrator restarts only a process that
// cannot answer at all, never one waiting for its database.
func (s *Server) handleLive(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReady answers GET /readyz: 200 when the instance can do its work (the
// database answers and takes writes, migrations are current, a signing key is
// loaded), else 503 "unavailable" naming the failing checks' statuses only.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) error {
	ok, results := s.runChecks(r.Context(), s.Readiness)
	status, code := "ok", http.StatusOK
	if !ok {
		status, code = "unavailable", http.StatusServiceUnavailable
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, code, map[string]any{"status": status, "checks": checksBody(results, false)})
}

// isServiceRole reports whether the request carries a valid service_role
// bearer token.
func (s *Server) isServiceRole(r *http.Request) bool {
	if s.Authenticator == nil || r.Header.Get("Authorization") == "" {
		return false
	}
	raw, err := bearer(r)
	if err != nil {
		return false
	}
	p, err := s.Authenticator.Authenticate(r.Context(), raw)
	return err == nil && p.Role == "service_role"
}
