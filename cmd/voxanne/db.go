package main

import (
	"context"
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
}

// openDatabase connects to DATABASE_URL, or starts the managed cluster in the data
// directory and makes sure its database exists.
func openDatabase(ctx context.Context, cfg *Config, log *slog.Logger, opts postgres.Options) (*database, error) {
	d := &database{}
	url := cfg.DatabaseURL
	if url == "" {
		start := time.Now()
		c, err := pglocal.Start(ctx, pglocal.Options{Dir: cfg.DataDir})
		if err != nil {
			return nil, err
		}
		d.cluster = c
		log.Info("managed postgres started", "data_dir", c.DataDir, "initialized", c.Initialized, "pid", c.PID(), "took", time.Since(start).Round(time.Millisecond))
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

// close closes the pools, then stops the managed cluster if there is one.
func (d *database) close(log *slog.Logger) {
	if d.DB != nil {
		d.DB.Close()
	}
	if d.cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		defer cancel()
		if err := d.cluster.Stop(ctx); err != nil {
			log.Error("stop managed postgres", "error", err)
		} else {
			log.Info("managed postgres stopped")
		}
	}
}
