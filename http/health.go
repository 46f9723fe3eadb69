package http

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/voxanne/voxanne"
)

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
			details["pool_total"] = st.Total
			details["pool_idle"] = st.Idle
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

// poolCollector exports database pool statistics to Prometheus.
type poolCollector struct {
	stats              func() map[string]voxanne.PoolStat
	total, idle, inUse *prometheus.Desc
	acquires, waits    *prometheus.Desc
	waitSeconds        *prometheus.Desc
}

func newPoolCollector(stats func() map[string]voxanne.PoolStat) *poolCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, []string{"pool"}, nil)
	}
	return &poolCollector{stats: stats,
		total:       d("voxanne_db_pool_connections", "Open connections of each database pool."),
		idle:        d("voxanne_db_pool_idle_connections", "Idle connections of each database pool."),
		inUse:       d("voxanne_db_pool_acquired_connections", "Connections in use in each database pool."),
		acquires:    d("voxanne_db_pool_acquires_total", "Connections acquired from each pool."),
		waits:       d("voxanne_db_pool_empty_acquires_total", "Acquires that had to wait for a connection."),
		waitSeconds: d("voxanne_db_pool_acquire_wait_seconds_total", "Time spent waiting for a connection."),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.total, c.idle, c.inUse, c.acquires, c.waits, c.waitSeconds} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	for name, st := range c.stats() {
		ch <- prometheus.MustNewConstMetric(c.total, prometheus.GaugeValue, float64(st.Total), name)
		ch <- prometheus.MustNewConstMetric(c.idle, prometheus.GaugeValue, float64(st.Idle), name)
		ch <- prometheus.MustNewConstMetric(c.inUse, prometheus.GaugeValue, float64(st.Acquired), name)
		ch <- prometheus.MustNewConstMetric(c.acquires, prometheus.CounterValue, float64(st.Acquires), name)
		ch <- prometheus.MustNewConstMetric(c.waits, prometheus.CounterValue, float64(st.EmptyAcquires), name)
		ch <- prometheus.MustNewConstMetric(c.waitSeconds, prometheus.CounterValue, st.AcquireWait.Seconds(), name)
	}
}
