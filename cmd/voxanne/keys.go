package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/voxanne/voxanne/internal/app"
	"github.com/voxanne/voxanne/postgres"
)

// withApp opens the database (migrating it) and assembles Voxanne for an
// operator command (nothing runs in the background), runs fn and closes
// everything.
func withApp(ctx context.Context, name, synopsis string, args []string, stderr io.Writer, fn func(*Config, *app.App) error) error {
	fs := newFlagSet(name, synopsis, stderr)
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	log := newLogger(cfg.LogFormat, stderr)
	db, err := openDatabase(ctx, cfg, log, postgres.Options{Migrate: true, MaxConns: 4})
	if err != nil {
		return err
	}
	defer db.close(log)
	a, err := app.New(ctx, db.DB, appConfig(cfg, log, nil))
	if err != nil {
		return err
	}
	return fn(cfg, a)
}

func cmdKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError("keys needs list, rotate or revoke KID")
	}
	action, args := args[0], args[1:]
	var kid string
	switch action {
	case "list", "rotate":
	case "revoke":
		if len(args) == 0 {
			return usageError("keys revoke needs the KID of a retired key (see voxanne keys list)")
		}
		kid, args = args[0], args[1:]
	default:
		return usageError(fmt.Sprintf("unknown keys action %q", action))
	}
	return withApp(ctx, "keys", "keys list|rotate|revoke KID [flags]", args, stderr, func(cfg *Config, a *app.App) error {
		switch action {
		case "rotate":
			newKID, err := a.Keys.Rotate(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "new signing key %s; the previous key stays trusted until its tokens expire\n", newKID)
			return nil
		case "revoke":
			if err := a.Keys.Revoke(ctx, kid); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "revoked %s: tokens it signed are rejected from now on\n", kid)
			return nil
		}
		keys, err := a.Keys.List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KID\tALG\tSTATUS\tENCRYPTED\tCREATED\tTRUSTED UNTIL")
		for _, k := range keys {
			until := "-"
			if k.TrustedUntil != nil {
				until = k.TrustedUntil.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\n", k.KID, k.Algorithm, k.Status, k.Encrypted, k.CreatedAt.UTC().Format(time.RFC3339), until)
		}
		return tw.Flush()
	})
}

func cmdToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "service-role" {
		return usageError("token needs service-role")
	}
	args = args[1:]
	ttl := time.Hour
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--ttl" || args[i] == "-ttl" {
			d, err := time.ParseDuration(args[i+1])
			if err != nil || d <= 0 || d > 366*24*time.Hour {
				return usageError("--ttl wants a duration such as 1h or 720h (at most a year)")
			}
			ttl = d
			args = append(args[:i:i], args[i+2:]...)
			break
		}
	}
	return withApp(ctx, "token", "token service-role [--ttl 1h] [flags]", args, stderr, func(cfg *Config, a *app.App) error {
		tok, err := a.Auth.ServiceRoleToken(ctx, ttl)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, tok)
		return nil
	})
}
