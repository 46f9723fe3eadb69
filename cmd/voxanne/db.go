package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/voxanne/voxanne/postgres"
	"github.com/voxanne/voxanne/postgres/pglocal"
)

// database is an open database and, in managed mode, the cluster behind it.
type database struct {
	*postgres.DB
	cluster *pglocal.Cluster
	// stopSupervising ends the cluster's supervision (serve only).
	stopSupervising context.CancelFunc
}

// openDatabase connects to DATABASE_URL, or opens the managed cluster in the
// data directory and makes sure its database exists. serve holds the
// directory, runs the cluster and supervises it (a second serve is refused);
// any other command uses the cluster of the serve running there, if one is,
// and never starts or stops it, else runs one of its own for its duration.
func openDatabase(ctx context.Context, cfg *Config, log *slog.Logger, opts postgres.Options, command string) (*database, error) {
	d := &database{}
	url := cfg.DatabaseURL
	if url == "" {
		start := time.Now()
		popts := pglocal.Options{Dir: cfg.DataDir, Command: command, Logger: log}
		var c *pglocal.Cluster
		var err error
		if command == "serve" {
			popts.Serving = true
			c, err = pglocal.Start(ctx, popts)
		} else {
			c, err = pglocal.Open(ctx, popts)
		}
		var inUse *pglocal.InUseError
		if errors.As(err, &inUse) && command == "serve" {
			return nil, fmt.Errorf("%w: stop it first, or give this server another VOXANNE_DATA_DIR", err)
		} else if err != nil {
			return nil, err
		}
		d.cluster = c
		if c.Attached() {
			log.Info("using the running server's managed postgres", "data_dir", c.DataDir, "pid", c.PID())
		} else {
			log.Info("managed postgres started", "data_dir", c.DataDir, "initialized", c.Initialized, "pid", c.PID(), "duration_ms", time.Since(start).Milliseconds())
		}
		if command == "serve" {
			var superviseCtx context.Context
			superviseCtx, d.stopSupervising = context.WithCancel(context.Background())
			go c.Supervise(superviseCtx)
		}
		if err := ensureDatabase(ctx, c, "voxanne"); err != nil {
			d.close(log)
			return nil, err
		}
		url = c.SuperuserURL("voxanne")
	}
	db, err := postgres.Open(ctx, url, opts)
	if err != nil {
		d.close(log)
		return nil, err
	}
	d.DB = db
	return d, nil
}

func ensureDatabase(ctx context.Context, c *pglocal.Cluster, name string) error {
	conn, err := pgx.Connect(ctx, c.SuperuserURL("postgres"))
	if err != nil {
		return fmt.Errorf("connect to managed postgres: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "select exists (select 1 from pg_database where datname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "create database "+pgx.Identifier{name}.Sanitize())
	return err
}

// close closes the pools, then stops the managed cluster if this process
// runs it.
func (d *database) close(log *slog.Logger) {
	if d.stopSupervising != nil {
		d.stopSupervising()
	}
	if d.DB != nil {
		d.DB.Close()
	}
	if d.cluster != nil && !d.cluster.Attached() {
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		defer cancel()
		if err := d.cluster.Stop(ctx); err != nil {
			log.Error("stop managed postgres", "error", err)
		} else {
			log.Info("managed postgres stopped")
		}
	}
}
