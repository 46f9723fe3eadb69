// Command voxbench is a load generator for a Voxanne server running on the
// same machine. It refuses any target that is not a loopback address: the
// machines it runs on must never send load anywhere else.
//
//	voxbench auth [flags]     sign up users, then load an authenticated route, refresh
//	                          grants, password sign-ins or sign-ups
//	voxbench ingest [flags]   sign up one user, create its org's own Vapi webhook endpoint,
//	                          then load it with signed events and wait for them to be processed
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

const usage = `voxbench: load generator for a Voxanne server on this machine.

Usage:
  voxbench auth [flags]     sign up users, then load an authenticated route
                            (--mode get), refresh grants, password sign-ins or
                            sign-ups (--mode refresh|password|signup)
  voxbench ingest [flags]   load the webhook ingestion path with signed Vapi
                            end-of-call-reports and measure their processing

"voxbench auth --help" and "voxbench ingest --help" list the flags. Only
loopback targets are allowed (127.0.0.0/8, ::1, localhost); any other --url is
refused.
Exit codes: 0 success, 1 failure (set-up failed, more than 1% of requests
failed, or with ingest: processing did not finish within --drain), 2 bad usage.
`

func main() {
	// The first Ctrl-C stops the load phase early and still prints the report;
	// the set-up phase is abandoned.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process around it, so tests can drive a whole
// benchmark and inspect its output and exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "auth":
		return runAuth(ctx, rest, stdout, stderr)
	case "ingest":
		return runIngest(ctx, rest, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "voxbench: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}

// parseFlags parses args into fs and maps the outcome to an exit code:
// -1 to carry on, 0 after --help, 2 on a bad flag (the flag package has
// already printed what was wrong and the usage).
func parseFlags(fs *flag.FlagSet, args []string) int {
	err := fs.Parse(args)
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		return 0
	default:
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "voxbench %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return 2
	}
	return -1
}
