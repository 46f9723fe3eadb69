package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/voxanne/voxanne/internal/app"
	"github.com/voxanne/voxanne/postgres"
)

// withApp parses the command's flags (fs holds its own) and settings, opens
// the database (migrating it) and assembles Voxanne for an operator command
// (nothing runs in the background), speaking for the server running on the
// data directory if there is one; it runs fn and closes everything.
func withApp(ctx context.Context, name string, fs *flag.FlagSet, args []string, stderr io.Writer, fn func(*Config, *app.App) error) error {
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	if err := checkFlags(fs); err != nil {
		return err
	}
	cfg.adoptRunningServer()
	log := newLogger(cfg.LogFormat, stderr)
	db, err := openDatabase(ctx, cfg, log, postgres.Options{Migrate: true, MaxConns: 4}, name)
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
	return withApp(ctx, "keys", newFlagSet("keys"), args, stderr, func(cfg *Config, a *app.App) error {
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

// tokenFlags are token's own flags.
func tokenFlags(fs *flag.FlagSet) {
	fs.Duration("ttl", time.Hour, "the token's lifetime, e.g. 1h or 720h (at most a year)")
}

func cmdToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "service-role" {
		return usageError("token needs service-role")
	}
	fs := newFlagSet("token")
	tokenFlags(fs)
	return withApp(ctx, "token", fs, args[1:], stderr, func(cfg *Config, a *app.App) error {
		tok, err := a.Auth.ServiceRoleToken(ctx, fs.Lookup("ttl").Value.(flag.Getter).Get().(time.Duration))
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, tok)
		return nil
	})
}

// checkFlags checks the values of the commands' own flags that need more
// than their type.
func checkFlags(fs *flag.FlagSet) error {
	if f := fs.Lookup("ttl"); f != nil {
		if d := f.Value.(flag.Getter).Get().(time.Duration); d <= 0 || d > 366*24*time.Hour {
			return usageError("--ttl wants a duration such as 1h or 720h (at most a year)")
		}
	}
	return nil
}
