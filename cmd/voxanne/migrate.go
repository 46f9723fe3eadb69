package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/voxanne/voxanne/postgres"
)

func migrateFlags(fs *flag.FlagSet) {
	fs.Bool("dry-run", false, "with down: list what would be reverted and check that it would work (its down steps run in a transaction that is rolled back), changing nothing")
}

func cmdMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate")
	migrateFlags(fs)
	if len(args) == 0 {
		return usageError("migrate needs up, down N or status")
	}
	action, args := args[0], args[1:]
	n := 0
	switch action {
	case "up", "status":
	case "down":
		var err error
		if len(args) == 0 {
			return usageError("migrate down needs the number of migrations to revert")
		}
		if n, err = strconv.Atoi(args[0]); err != nil || n < 1 {
			return usageError(fmt.Sprintf("migrate down: %q is not a positive number", args[0]))
		}
		args = args[1:]
	default:
		return usageError(fmt.Sprintf("unknown migrate action %q", action))
	}
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	dryRun := fs.Lookup("dry-run").Value.(flag.Getter).Get().(bool)
	if dryRun && action != "down" {
		return usageError("--dry-run goes with migrate down N")
	}
	log := newLogger(cfg.LogFormat, stderr)
	db, err := openDatabase(ctx, cfg, log, postgres.Options{MaxConns: 2}, "migrate")
	if err != nil {
		return err
	}
	defer db.close(log)

	switch action {
	case "up":
		applied, err := db.MigrateUp(ctx)
		for _, v := range applied {
			fmt.Fprintf(stdout, "applied %04d\n", v)
		}
		if err == nil && len(applied) == 0 {
			fmt.Fprintln(stdout, "nothing to apply")
		}
		return err
	case "down":
		if dryRun {
			plan, err := db.MigrateDownDryRun(ctx, n)
			for _, m := range plan {
				fmt.Fprintf(stdout, "would revert %04d_%s\n", m.Version, m.Name)
			}
			if err == nil {
				fmt.Fprintln(stdout, "dry run: the down steps ran and were rolled back; nothing changed")
			}
			return err
		}
		reverted, err := db.MigrateDown(ctx, n)
		for _, v := range reverted {
			fmt.Fprintf(stdout, "reverted %04d\n", v)
		}
		return err
	default:
		states, err := db.MigrationStatus(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tNAME\tAPPLIED")
		for _, s := range states {
			at := "pending"
			if s.AppliedAt != nil {
				at = s.AppliedAt.UTC().Format("2006-01-02T15:04:05Z")
			}
			fmt.Fprintf(tw, "%04d\t%s\t%s\n", s.Version, s.Name, at)
		}
		return tw.Flush()
	}
}
