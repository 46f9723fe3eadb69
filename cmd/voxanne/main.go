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
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// command is one of voxanne's commands: what its --help says and how it runs.
type command struct {
	name string
	// synopsis follows "voxanne " in the usage line; summary is one line.
	synopsis, summary string
	// about is the longer help text, if any.
	about string
	// flags registers the command's own flags (nil: none).
	flags func(fs *flag.FlagSet)
	// settings: the command also takes every setting (environment variable)
	// as a flag.
	settings bool
	run      func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands are voxanne's commands, in --help order.
var commands = []command{
	{name: "serve", synopsis: "serve [--demo] [flags]", summary: "run the server",
		about: "Without DATABASE_URL, serve runs its own PostgreSQL in VOXANNE_DATA_DIR, holds that\ndirectory (a second serve on it is refused) and restarts the cluster if it stops.",
		flags: serveFlags, settings: true, run: cmdServe},
	{name: "migrate", synopsis: "migrate up|down N [--dry-run]|status [flags]", summary: "apply, revert or list database migrations",
		flags: migrateFlags, settings: true, run: cmdMigrate},
	backupCommand,
	restoreCommand,
	{name: "keys", synopsis: "keys list|rotate|revoke KID [flags]", summary: "list, rotate or revoke token signing keys",
		settings: true, run: cmdKeys},
	{name: "token", synopsis: "token service-role [--ttl 1h] [flags]", summary: "print a service_role JWT for the admin API",
		about: "The token's issuer is the public URL of the server running on VOXANNE_DATA_DIR\n(else VOXANNE_PUBLIC_URL).",
		flags: tokenFlags, settings: true, run: cmdToken},
	{name: "webhook", synopsis: "webhook send vapi|twilio-sms FILE [--url URL] [--new-id] [flags]", summary: "sign and send a sample event (webhook/testdata/)",
		about: "Sends to the server running on VOXANNE_DATA_DIR (else VOXANNE_PUBLIC_URL), signed with\nVOXANNE_VAPI_SECRET / VOXANNE_TWILIO_AUTH_TOKEN, or with the secrets of a running\n--demo server. Exits 1 when the server refuses the event or stores it as unroutable.",
		flags: webhookFlags, settings: true, run: cmdWebhook},
	{name: "version", synopsis: "version", summary: "print the version", run: func(_ context.Context, args []string, stdout, _ io.Writer) error {
		if len(args) > 0 {
			return usageError(fmt.Sprintf("unexpected argument %q", args[0]))
		}
		fmt.Fprintln(stdout, "voxanne", version)
		return nil
	}},
}

// usageError marks a mistake in the command line (exit code 2).
type usageError string

func (e usageError) Error() string { return string(e) }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command line args: exit code 0 on success (and --help), 1 on
// failure, 2 on bad usage.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && args[0] == "help" {
			if c, ok := lookup(args[1]); ok {
				printHelp(stdout, c)
				return 0
			}
		}
		printUsage(stdout)
		return 0
	case "--version":
		args[0] = "version"
	}
	c, ok := lookup(args[0])
	if !ok {
		fmt.Fprintf(stderr, "voxanne: unknown command %q\nRun 'voxanne --help' for usage.\n", args[0])
		return 2
	}
	if wantsHelp(args[1:]) {
		printHelp(stdout, c)
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := c.run(ctx, args[1:], stdout, stderr)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "voxanne: %s\nRun 'voxanne %s --help' for usage.\n", err, c.name)
		return 2
	default:
		fmt.Fprintf(stderr, "voxanne: %s\n", err)
		return 1
	}
}

func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// wantsHelp reports whether the arguments ask for help anywhere.
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help":
			return true
		case "--":
			return false
		}
	}
	return false
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, "voxanne: the backend of a multi-tenant AI voice receptionist.\n\nUsage:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  voxanne %s\n      %s\n", c.synopsis, c.summary)
	}
	fmt.Fprint(w, `
'voxanne CMD --help' lists a command's flags. Every setting is an environment
variable (see README.md), also a flag of the commands that take settings.
Without DATABASE_URL, Voxanne runs its own PostgreSQL in VOXANNE_DATA_DIR; the
commands beside a running serve use its cluster.
Exit codes: 0 success, 1 failure, 2 bad usage.
`)
}

// printHelp prints a command's usage and every flag it takes: its own, then
// the settings.
func printHelp(w io.Writer, c command) {
	fmt.Fprintf(w, "Usage: voxanne %s\n\n%s.\n", c.synopsis, strings.ToUpper(c.summary[:1])+c.summary[1:])
	if c.about != "" {
		fmt.Fprintf(w, "\n%s\n", c.about)
	}
	if c.flags != nil {
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		c.flags(fs)
		fmt.Fprint(w, "\nFlags:\n")
		printFlags(w, fs)
	}
	if c.settings {
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		registerSettings(fs)
		fmt.Fprint(w, "\nSettings (each flag overrides its environment variable):\n")
		printFlags(w, fs)
	}
	fmt.Fprint(w, "\nExit codes: 0 success, 1 failure, 2 bad usage.\n")
}

// printFlags lists fs's flags as they are written on the command line
// (--name VALUE), each with its help and default.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		kind, help := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if kind != "" {
			line += " " + kind
		}
		if f.DefValue != "" && f.DefValue != "false" {
			help += " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(w, "%s\n      %s\n", line, help)
	})
}

// newFlagSet returns a flag set that reports parse errors only as the error
// it returns (a usage error, exit code 2); --help is handled before parsing.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}
