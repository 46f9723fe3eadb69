package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voxanne/voxanne/internal/testbin"
	"github.com/voxanne/voxanne/internal/testdb"
)

// ownFlags are the flags each command takes besides the settings, as the
// README and docs name them.
var ownFlags = map[string][]string{
	"serve":   {"demo"},
	"token":   {"ttl"},
	"webhook": {"url", "new-id"},
}

// --help on every command and subcommand, wherever it stands, answers 0 on
// stdout with the command's usage and every flag it takes: its own and each
// setting's.
func TestHelpListsEveryFlag(t *testing.T) {
	t.Parallel()
	var settingFlags []string
	for _, s := range settings {
		settingFlags = append(settingFlags, s.flag)
	}
	subcommands := map[string][][]string{
		"migrate": {{"up"}, {"down"}, {"down", "1"}, {"status"}},
		"keys":    {{"list"}, {"rotate"}, {"revoke"}, {"revoke", "some-kid"}},
		"token":   {{"service-role"}},
		"webhook": {{"send"}, {"send", "vapi"}, {"send", "vapi", "file.json"}},
		"serve":   {{"--demo"}},
	}
	for _, c := range commands {
		want := append([]string(nil), ownFlags[c.name]...)
		if c.flags != nil && ownFlags[c.name] == nil {
			// Commands added later (backup, restore): what they register.
			fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
			c.flags(fs)
			fs.VisitAll(func(f *flag.Flag) { want = append(want, f.Name) })
		}
		if c.settings {
			want = append(want, settingFlags...)
		}
		forms := [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}}
		for _, sub := range subcommands[c.name] {
			forms = append(forms, append(append([]string{c.name}, sub...), "--help"))
		}
		for _, args := range forms {
			var stdout, stderr strings.Builder
			code := run(args, &stdout, &stderr)
			out := stdout.String()
			if code != 0 || stderr.Len() != 0 || !strings.HasPrefix(out, "Usage: voxanne "+c.name) {
				t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, stderr.String())
				continue
			}
			for _, f := range want {
				if !strings.Contains(out, "\n  --"+f+" ") && !strings.Contains(out, "\n  --"+f+"\n") {
					t.Errorf("%v: --%s is not listed", args, f)
				}
			}
		}
	}
	var stdout, stderr strings.Builder
	if code := run([]string{"--help"}, &stdout, &stderr); code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	for _, c := range commands {
		if !strings.Contains(stdout.String(), "voxanne "+c.synopsis) {
			t.Errorf("--help does not list %s", c.name)
		}
	}
}

// Exit codes of the real binary: 0 success, 1 failure, 2 bad usage, each
// with one line saying why on stderr.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	dir := testdb.ServerDir(t)
	sample := filepath.Join("..", "..", "webhook", "testdata", "vapi-end-of-call-report.json")
	closed := "http://" + testbin.FreeAddr(t)
	env := []string{"VOXANNE_DATA_DIR=" + dir, "DATABASE_URL=", "VOXANNE_VAPI_SECRET=exit-code-secret-0123456789"}
	cases := []struct {
		args []string
		env  string
		code int
		out  string
	}{
		{[]string{"--help"}, "", 0, "Usage:"},
		{[]string{"help", "keys"}, "", 0, "Usage: voxanne keys"},
		{[]string{"version"}, "", 0, "voxanne "},
		{[]string{"--version"}, "", 0, "voxanne "},
		{nil, "", 2, "Usage:"},
		{[]string{"bogus"}, "", 2, `unknown command "bogus"`},
		{[]string{"version", "extra"}, "", 2, "unexpected argument"},
		{[]string{"serve", "--no-such-flag"}, "", 2, "no-such-flag"},
		{[]string{"serve", "extra"}, "", 2, `unexpected argument "extra"`},
		{[]string{"serve", "--jwt-exp", "soon"}, "", 1, "VOXANNE_JWT_EXP"},
		{[]string{"serve"}, "VOXANNE_REQUEST_TIMEOUT=0", 1, "VOXANNE_REQUEST_TIMEOUT"},
		{[]string{"migrate"}, "", 2, "migrate needs"},
		{[]string{"migrate", "sideways"}, "", 2, "unknown migrate action"},
		{[]string{"migrate", "down"}, "", 2, "number of migrations"},
		{[]string{"migrate", "down", "x"}, "", 2, "not a positive number"},
		{[]string{"keys"}, "", 2, "keys needs"},
		{[]string{"keys", "spin"}, "", 2, "unknown keys action"},
		{[]string{"keys", "revoke"}, "", 2, "KID"},
		{[]string{"token"}, "", 2, "service-role"},
		{[]string{"token", "anon"}, "", 2, "service-role"},
		{[]string{"token", "service-role", "--ttl", "soon"}, "", 2, "-ttl"},
		{[]string{"token", "service-role", "--ttl", "0s"}, "", 2, "--ttl"},
		{[]string{"webhook"}, "", 2, "webhook send"},
		{[]string{"webhook", "send", "vapi"}, "", 2, "webhook send"},
		{[]string{"webhook", "send", "fax", "x", "y"}, "", 2, "unknown webhook kind"},
		{[]string{"webhook", "send", "vapi", sample, "--bogus"}, "", 2, "bogus"},
		{[]string{"webhook", "send", "vapi", filepath.Join(dir, "missing.json")}, "", 1, "missing.json"},
		{[]string{"webhook", "send", "vapi", sample, "--url", closed}, "", 1, "send:"},
		{[]string{"webhook", "send", "twilio-sms", sample, "--url", closed}, "VOXANNE_TWILIO_AUTH_TOKEN=", 1, "VOXANNE_TWILIO_AUTH_TOKEN"},
	}
	for _, c := range cases {
		e := env
		if c.env != "" {
			e = append(append([]string(nil), env...), c.env)
		}
		code, stdout, stderr := runCLI(t, e, c.args...)
		out := stdout + stderr
		if code != c.code || !strings.Contains(out, c.out) {
			t.Errorf("%v: exit %d, output %q", c.args, code, out)
			continue
		}
		if c.code == 0 && stderr != "" {
			t.Errorf("%v: stderr %q", c.args, stderr)
		}
		if c.code == 1 && len(strings.Split(strings.TrimSpace(stderr), "\n")) != 1 {
			t.Errorf("%v: stderr is not one line: %q", c.args, stderr)
		}
	}
	// None of these started a cluster in the data directory.
	if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
		t.Error("a failed command started a cluster")
	}
}
