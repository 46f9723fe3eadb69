// Package jobs runs Voxanne's background work with River inside `voxanne
// serve`: the worker that turns stored webhook events into calls, messages and
// contacts (Processor, the one place that decides what an event does), with
// retries and backoff.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"

	"github.com/voxanne/voxanne"
)

// MaxAttempts is how often a job runs before River discards it; a discarded job
// stays in river_job, visible in /health and /metrics.
const MaxAttempts = 10

// EventProcessor processes one stored webhook event.
type EventProcessor interface {
	ProcessEvent(ctx context.Context, job voxanne.ProcessEventArgs) error
}

// eventWorker runs ProcessEventArgs jobs.
type eventWorker struct {
	river.WorkerDefaults[voxanne.ProcessEventArgs]
	p EventProcessor
}

func (w *eventWorker) Work(ctx context.Context, job *river.Job[voxanne.ProcessEventArgs]) error {
	err := w.p.ProcessEvent(ctx, job.Args)
	if errors.Is(err, voxanne.ErrBusy) {
		return river.JobSnooze(busyRetry)
	}
	return err
}

// busyRetry is how soon a job whose org was busy runs again.
const busyRetry = 50 * time.Millisecond

// Timeout bounds one attempt.
func (w *eventWorker) Timeout(*river.Job[voxanne.ProcessEventArgs]) time.Duration { return jobTimeout }

// jobTimeout bounds one attempt; a job still marked running well past it was
// left by a killed instance and is rescued (retried) after rescueAfter.
const (
	jobTimeout  = 15 * time.Second
	rescueAfter = 20 * time.Second
)

// Config configures the job runner.
type Config struct {
	// Workers is how many jobs run at once (default 20).
	Workers int
	Logger  *slog.Logger
	// Insert only: no workers run (for commands that only enqueue).
	InsertOnly bool
}

// Runner is the River client.
type Runner struct {
	*river.Client[pgx.Tx]
	insertOnly bool
}

// New builds the River client on driver (made by the postgres package) with
// the event worker running p.
func New(driver riverdriver.Driver[pgx.Tx], p EventProcessor, cfg Config) (*Runner, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &eventWorker{p: p}); err != nil {
		return nil, err
	}
	rc := &river.Config{
		Logger:               cfg.Logger,
		MaxAttempts:          MaxAttempts,
		Workers:              workers,
		JobTimeout:           jobTimeout,
		RescueStuckJobsAfter: rescueAfter,
		// River's periodic REINDEX needs the tables' owner, and River runs on a
		// role that owns nothing: no index is reindexed from here (the owner
		// can, as any other maintenance).
		ReindexerIndexNames: []string{},
	}
	if !cfg.InsertOnly {
		rc.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.Workers}}
		rc.FetchCooldown = 10 * time.Millisecond
		rc.FetchPollInterval = 250 * time.Millisecond
	}
	c, err := river.NewClient(driver, rc)
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	return &Runner{Client: c, insertOnly: cfg.InsertOnly}, nil
}

// EnqueueTx enqueues the processing job of a stored event inside tx, the
// transaction that stored it, and returns the job's id.
func (r *Runner) EnqueueTx(ctx context.Context, tx pgx.Tx, job voxanne.ProcessEventArgs) (int64, error) {
	res, err := r.InsertTx(ctx, tx, job, nil)
	if err != nil {
		return 0, err
	}
	return res.Job.ID, nil
}

// Run works jobs until ctx ends, then stops gracefully: jobs in flight finish
// (up to a deadline) and the rest stay queued for the next start.
func (r *Runner) Run(ctx context.Context) error {
	if r.insertOnly {
		return nil
	}
	if err := r.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("jobs: start: %w", err)
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.Stop(stopCtx); err != nil {
		// Past the deadline: cancel what still runs; River retries it later.
		return r.StopAndCancel(context.Background())
	}
	return nil
}
