// Command voxanne is the Voxanne server and its operator tools.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `voxanne: the backend of a multi-tenant AI voice receptionist.

Usage:
  voxanne serve [--demo] [flags]     run the server (voxanne serve --help lists the settings)
  voxanne migrate up|down N|status   apply, revert or list database migrations
  voxanne keys list|rotate|revoke KID  list, rotate or revoke token signing keys
  voxanne token service-role [--ttl 1h] print a service_role JWT for admin calls
  voxanne webhook send vapi|twilio-sms FILE [--url URL] [--new-id]
                                     sign and send a sample event (webhook/testdata/)
  voxanne version                    print the version

Every setting is an environment variable (see README.md), also a serve flag.
Without DATABASE_URL, Voxanne runs its own PostgreSQL in VOXANNE_DATA_DIR.
Exit codes: 0 success, 1 failure, 2 bad usage.
`

// usageError marks a mistake in the command line (exit code 2).
type usageError string

func (e usageError) Error() string { return string(e) }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "version", "--version":
		fmt.Fprintln(stdout, "voxanne", version)
		return 0
	case "serve":
		err = cmdServe(ctx, rest, stdout, stderr)
	case "migrate":
		err = cmdMigrate(ctx, rest, stdout, stderr)
	case "keys":
		err = cmdKeys(ctx, rest, stdout, stderr)
	case "token":
		err = cmdToken(ctx, rest, stdout, stderr)
	case "webhook":
		err = cmdWebhook(ctx, rest, stdout, stderr)
	default:
		err = usageError(fmt.Sprintf("unknown command %q", cmd))
	}
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "voxanne: %s\nRun 'voxanne --help' for usage.\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "voxanne: %s\n", err)
		return 1
	}
}

// newFlagSet returns a flag set whose parse errors are reported as usage errors.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: voxanne %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}
