package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/voxanne/voxanne/postgres"
)

// The backup and restore commands' entries in the command table.
var (
	backupCommand = command{name: "backup", synopsis: "backup FILE [flags]", summary: "write the database to FILE with pg_dump",
		about: "Works on the managed cluster (a running serve's too: the dump is one consistent snapshot)\n" +
			"and on DATABASE_URL, with pg_dump from the PostgreSQL binaries the managed cluster uses.\n" +
			"FILE is pg_dump's custom format, mode 0600: it holds password hashes and signing keys\n" +
			"(sealed only when VOXANNE_KEY_ENCRYPTION_KEY is set). See docs/operations.md.",
		settings: true, run: cmdBackup}
	restoreCommand = command{name: "restore", synopsis: "restore FILE [--force] [flags]", summary: "replay a backup of voxanne backup into the database",
		about: "The database must be empty, unless --force; no server may be running on it. --force's\n" +
			"wipe, the roles a new cluster lacks and the dump go in one transaction (on an error\n" +
			"nothing changes); then the service roles' logins are set, as serve sets them. Start\n" +
			"serve afterwards (it migrates a backup of an older version up). See docs/operations.md.",
		flags: restoreFlags, settings: true, run: cmdRestore}
)

func restoreFlags(fs *flag.FlagSet) {
	fs.Bool("force", false, "replace everything in a database that is not empty (in the restore's one transaction)")
}

// fileCommand opens the database for a command whose first argument is a
// FILE, with the rest as flags, and runs fn with the PostgreSQL client
// programs to use: the managed cluster's own, else the newest installed.
func fileCommand(ctx context.Context, name string, fs *flag.FlagSet, args []string, stderr io.Writer,
	fn func(db *database, tools postgres.Tools, file string) error) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return usageError(fmt.Sprintf("%s needs the FILE first: voxanne %s FILE [flags]", name, name))
	}
	file := args[0]
	if name == "restore" {
		// Before any cluster starts for it.
		if _, err := os.Stat(file); err != nil {
			return fmt.Errorf("%s is not a backup that can be read: %w", file, err)
		}
	}
	cfg, err := loadConfig(fs, args[1:])
	if err != nil {
		return err
	}
	log := newLogger(cfg.LogFormat, stderr)
	db, err := openDatabase(ctx, cfg, log, postgres.Options{MaxConns: 2}, name)
	if err != nil {
		return err
	}
	defer db.close(log)
	binDir := ""
	if db.cluster != nil {
		binDir = db.cluster.BinDir
	}
	tools, err := postgres.FindTools(binDir)
	if err != nil {
		return err
	}
	return fn(db, tools, file)
}

func cmdBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return fileCommand(ctx, "backup", newFlagSet("backup"), args, stderr, func(db *database, tools postgres.Tools, file string) error {
		version, err := db.Backup(ctx, tools, file)
		if err != nil {
			return err
		}
		var size int64
		if fi, err := os.Stat(file); err == nil {
			size = fi.Size()
		}
		fmt.Fprintf(stdout, "backed up schema version %04d to %s (%d bytes)\n", version, file, size)
		return nil
	})
}

func cmdRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("restore")
	restoreFlags(fs)
	return fileCommand(ctx, "restore", fs, args, stderr, func(db *database, tools postgres.Tools, file string) error {
		if db.cluster != nil && db.cluster.Attached() {
			return errors.New("a server is running on this data directory: stop it before a restore")
		}
		replace := fs.Lookup("force").Value.(flag.Getter).Get().(bool)
		version, err := db.Restore(ctx, tools, file, postgres.RestoreOptions{Replace: replace})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "restored schema version %04d from %s\n", version, file)
		return nil
	})
}
