package http

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/auth"
)

// MetricsHandler serves the server's metrics in the Prometheus text format:
// GET /metrics of the router, or of a listener of its own (SeparateMetrics).
// Call it after Handler, which registers the metrics.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{})
}

// statusRefreshTimeout bounds one refresh of the readiness checks and job
// figures: a hung database leaves them failing after this long.
const statusRefreshTimeout = 5 * time.Second

// statusCache holds the readiness checks' outcomes and the job figures that
// /metrics exports. A scrape only reads it: RunStatus refreshes it in the
// background, so a slow or hung database never holds a scrape up.
type statusCache struct {
	mu     sync.Mutex
	checks map[string]bool
	jobs   *voxanne.JobCounts // nil until first read
	// jobsAt is when the job figures were last read successfully.
	jobsAt  time.Time
	started time.Time

	up, jobsDesc, oldest, age *prometheus.Desc
}

func newStatusCache() *statusCache {
	return &statusCache{started: time.Now(),
		up: prometheus.NewDesc("voxanne_check_up",
			"1 when the readiness check passed at its last run (checks run in the background), 0 when it failed.", []string{"check"}, nil),
		jobsDesc: prometheus.NewDesc("voxanne_jobs",
			"Background jobs by state (discarded: retries exhausted), as last read.", []string{"state"}, nil),
		oldest: prometheus.NewDesc("voxanne_jobs_oldest_queued_age_seconds",
			"How long the oldest job ready to run has waited for a worker, as last read.", nil, nil),
		age: prometheus.NewDesc("voxanne_status_age_seconds",
			"Seconds since the job figures were last read successfully (since start when never).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *statusCache) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.jobsDesc, c.oldest, c.age} {
		ch <- d
	}
}

// Collect implements prometheus.Collector from the cache alone.
func (c *statusCache) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, ok := range c.checks {
		v := 0.0
		if ok {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, v, name)
	}
	since := c.started
	if j := c.jobs; j != nil {
		since = c.jobsAt
		for state, n := range map[string]int{"queued": j.Queued, "running": j.Running, "retrying": j.Retrying, "discarded": j.Discarded} {
			ch <- prometheus.MustNewConstMetric(c.jobsDesc, prometheus.GaugeValue, float64(n), state)
		}
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, j.OldestQueued.Seconds())
	}
	ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, time.Since(since).Seconds())
}

// RefreshStatus runs the readiness checks and reads the job figures once, for
// /metrics; it returns when both are done or have timed out.
func (s *Server) RefreshStatus(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(s.StatusTimeout, statusRefreshTimeout))
	defer cancel()
	var wg sync.WaitGroup
	var checks map[string]checkResult
	wg.Go(func() { _, checks = s.runChecks(ctx, s.Readiness) })
	var jobs voxanne.JobCounts
	jobsErr := context.Canceled
	if s.Jobs != nil {
		jobs, jobsErr = s.Jobs(ctx)
	}
	wg.Wait()
	c := s.status
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checks = make(map[string]bool, len(checks))
	for name, r := range checks {
		c.checks[name] = r.err == nil
	}
	if jobsErr == nil {
		c.jobs, c.jobsAt = &jobs, time.Now()
	} else if s.Jobs != nil {
		s.Logger.Warn("job figures unreadable", "error", jobsErr)
	}
}

// RunStatus refreshes the status for /metrics every interval until ctx ends.
func (s *Server) RunStatus(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.RefreshStatus(ctx)
		}
	}
}

// cacheStatsLog writes the token cache's statistics to the log every
// `every` authenticated requests or every interval, whichever is rarer: a
// line needs both that many requests and that much time since the last one,
// so a quiet instance stays quiet and a busy one logs once an interval.
type cacheStatsLog struct {
	every    int64
	interval time.Duration
	n        atomic.Int64
	// last is when the last line was written (unix nanoseconds).
	last atomic.Int64
	mu   sync.Mutex
	prev auth.Stats
}

// note counts one authenticated request at now and writes a line when due.
func (c *cacheStatsLog) note(now time.Time, stats func() auth.Stats, log *slog.Logger) {
	if c.n.Add(1) < c.every || now.UnixNano()-c.last.Load() < int64(c.interval) {
		return
	}
	c.mu.Lock()
	requests := c.n.Load()
	if requests < c.every { // another request wrote the line meanwhile
		c.mu.Unlock()
		return
	}
	c.n.Add(-requests)
	c.last.Store(now.UnixNano())
	st, prev := stats(), c.prev
	c.prev = st
	c.mu.Unlock()
	hits, misses := st.Hits-prev.Hits, st.Misses-prev.Misses
	rate := 0.0
	if hits+misses > 0 {
		rate = float64(hits) / float64(hits+misses)
	}
	log.Info("token cache statistics", "requests", requests, "hits", hits, "misses", misses,
		"hit_rate", rate, "entries", st.Entries, "evictions", st.Evictions-prev.Evictions,
		"revocations", st.Revocations-prev.Revocations)
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
