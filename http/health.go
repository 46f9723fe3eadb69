package http

import (
	"context"
	"errors"
	"time"

	"github.com/voxanne/voxanne"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Pinger is a database that can say whether it answers.
type Pinger interface {
	Ping(ctx context.Context) (time.Duration, error)
}

// PoolStater exposes pool statistics for the health details.
type PoolStater interface {
	TenantStat() *pgxpool.Stat
}

// DatabaseCheck reports the database's latency, and fails while it is unreachable.
func DatabaseCheck(db Pinger) Check {
	return func(ctx context.Context) (map[string]any, error) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		took, err := db.Ping(ctx)
		details := map[string]any{"latency_ms": float64(took.Microseconds()) / 1000}
		if err != nil {
			// The driver's message can name hosts and users: it stays out of the body.
			return details, errors.New("database unreachable")
		}
		if ps, ok := db.(PoolStater); ok {
			st := ps.TenantStat()
			details["pool_total"] = st.TotalConns()
			details["pool_idle"] = st.IdleConns()
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
			"discarded": c.Discarded, "unroutable_events": n}, nil
	}
}
